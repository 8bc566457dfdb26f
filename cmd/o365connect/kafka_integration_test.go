//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/o365connect/o365connect/input/o365sim"
)

// These tests run the real binary on config/kafka.yaml against the simulator
// and the real Apache Kafka broker that `make test` starts
// (scripts/kafka/broker.sh). They fail, never skip, when it is not there.

func kafkaEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	require.NotEmpty(t, v, "%s is not set: run these tests through `make test` (or `make kafka-start` and `eval \"$(scripts/kafka/broker.sh env)\"`)", name)
	return v
}

// kafkaRun is one o365connect process running config/kafka.yaml.
type kafkaRun struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

func (r *kafkaRun) logs() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// startKafkaPipeline runs config/kafka.yaml with the given state folder and
// topic prefix; extra overrides any variable.
func startKafkaPipeline(t *testing.T, sim *o365sim.Server, stateDir, prefix string, extra map[string]string) *kafkaRun {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, sim.CACertPEM(), 0o600))
	repoRoot, err := filepath.Abs("../..")
	require.NoError(t, err)
	env := map[string]string{
		"O365_TENANT_ID":               sim.TenantID(),
		"O365_CLIENT_ID":               sim.ClientID(),
		"O365_CLIENT_SECRET":           sim.ClientSecret(),
		"O365_API_URL":                 sim.URL(),
		"O365_LOGIN_URL":               sim.URL(),
		"O365_TLS_CUSTOM":              "true",
		"O365_CA_FILE":                 caFile,
		"O365_POLL_INTERVAL":           "1s",
		"O365_MAX_REQUESTS_PER_MINUTE": "60000",
		"O365_BACKFILL":                "72h",
		"O365_STATE_DIR":               stateDir,
		"O365_HTTP_ADDRESS":            "127.0.0.1:0",
		"O365_LOG_LEVEL":               "INFO",
		"KAFKA_BROKERS":                kafkaEnv(t, "O365_KAFKA_BROKERS"),
		"KAFKA_TOPIC_PREFIX":           prefix,
		"KAFKA_TOPIC_PARTITIONS":       "2",
		"KAFKA_REPLICATION_FACTOR":     "1",
	}
	for k, v := range extra {
		env[k] = v
	}
	cmd := exec.Command(binaryPath, "run", filepath.Join(repoRoot, "config", "kafka.yaml"))
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logFile, err := os.CreateTemp(t.TempDir(), "pipeline-*.log")
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	run := &kafkaRun{cmd: cmd, logPath: logFile.Name(), exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(run.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-run.exited
		if t.Failed() {
			t.Logf("pipeline log (%s):\n%s", run.logPath, tail(run.logs(), 60))
		}
	})
	return run
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// topicCounter consumes every topic with a prefix and counts each record Id,
// checking on the way that records sit in their workload's topic, keyed by Id.
type topicCounter struct {
	t      *testing.T
	client *kgo.Client
	mu     sync.Mutex
	byID   map[string]int
	total  int
	wrong  []string
	cancel context.CancelFunc
	done   chan struct{}
}

func newTopicCounter(t *testing.T, prefix string) *topicCounter {
	t.Helper()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(kafkaEnv(t, "O365_KAFKA_BROKERS")),
		kgo.ConsumeRegex(), kgo.ConsumeTopics("^"+strings.ReplaceAll(prefix, ".", `\.`)+".*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.MetadataMaxAge(time.Second),
	)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := &topicCounter{t: t, client: client, byID: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, prefix)
	t.Cleanup(c.close)
	return c
}

func (c *topicCounter) run(ctx context.Context, prefix string) {
	defer close(c.done)
	for ctx.Err() == nil {
		fetches := c.client.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			var rec struct {
				ID       string `json:"Id"`
				Workload string `json:"Workload"`
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.total++
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				c.wrong = append(c.wrong, fmt.Sprintf("%s: not JSON: %v", r.Topic, err))
				return
			}
			c.byID[rec.ID]++
			wantTopic := prefix + strings.ReplaceAll(strings.ToLower(rec.Workload), " ", "_")
			if r.Topic != wantTopic || string(r.Key) != rec.ID {
				c.wrong = append(c.wrong, fmt.Sprintf("record %s in %s keyed %q, want %s keyed by its Id", rec.ID, r.Topic, r.Key, wantTopic))
			}
		})
	}
}

func (c *topicCounter) close() {
	c.cancel()
	<-c.done
	c.client.Close()
}

func (c *topicCounter) counts() (unique, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID), c.total
}

func (c *topicCounter) waitUnique(t *testing.T, want int, timeout time.Duration, run *kafkaRun) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		unique, _ := c.counts()
		if unique >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records reached Kafka within %v", unique, want, timeout)
		}
		if run != nil {
			select {
			case <-run.exited:
				t.Fatalf("the pipeline exited early with %d of %d records in Kafka", unique, want)
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyExactly checks that every expected record is in Kafka and returns
// how many deliveries were duplicates.
func (c *topicCounter) verify(t *testing.T, sim *o365sim.Server) (duplicates int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Empty(t, c.wrong, "records in the wrong topic or with the wrong key")
	want := sim.ExpectedRecords()
	for _, exp := range want {
		assert.Positive(t, c.byID[exp.ID], "record %s of %s missing from Kafka", exp.ID, exp.ContentType)
	}
	assert.Len(t, c.byID, len(want), "no record that the tenant does not hold")
	return c.total - len(c.byID)
}

func bigSim(t *testing.T, seed int64, history time.Duration) *o365sim.Server {
	t.Helper()
	sim, err := o365sim.New(o365sim.Config{Seed: seed, History: history, BlobInterval: 10 * time.Minute, RequestsPerMinute: -1})
	require.NoError(t, err)
	require.NoError(t, sim.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func TestIntegrationKafkaEveryRecordInItsWorkloadTopicExactlyOnce(t *testing.T) {
	sim := bigSim(t, 101, 12*time.Hour)
	prefix := fmt.Sprintf("it%d.", time.Now().UnixNano())
	counter := newTopicCounter(t, prefix)
	run := startKafkaPipeline(t, sim, t.TempDir(), prefix, nil)

	want := len(sim.ExpectedRecords())
	counter.waitUnique(t, want, 2*time.Minute, run)
	time.Sleep(3 * time.Second) // more polls and look-back re-lists must not write again
	require.NoError(t, run.cmd.Process.Signal(syscall.SIGTERM))
	<-run.exited

	assert.Zero(t, counter.verify(t, sim), "a clean run writes every record exactly once")
	t.Logf("%d records in Kafka, exactly once", want)
}

func TestIntegrationKafkaSIGKILLMidRunLosesNothing(t *testing.T) {
	sim := bigSim(t, 102, 48*time.Hour)
	prefix := fmt.Sprintf("it%d.", time.Now().UnixNano())
	stateDir := t.TempDir()
	counter := newTopicCounter(t, prefix)
	want := len(sim.ExpectedRecords())

	first := startKafkaPipeline(t, sim, stateDir, prefix, nil)
	counter.waitUnique(t, want/3, 2*time.Minute, first)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	<-first.exited
	atKill, _ := counter.counts()
	require.Less(t, atKill, want, "the kill must land mid-run for this test to mean anything")

	second := startKafkaPipeline(t, sim, stateDir, prefix, nil)
	counter.waitUnique(t, want, 3*time.Minute, second)
	time.Sleep(2 * time.Second)

	duplicates := counter.verify(t, sim)
	t.Logf("SIGKILL after %d of %d records: restart re-delivered %d records (the unacknowledged tail), none missing", atKill, want, duplicates)
	// Restarting from scratch would repeat at least the third already written;
	// re-delivering only the unacknowledged tail stays far below that.
	assert.Less(t, duplicates, want/10, "a restart repeats only what was in flight at the kill")
}

func TestIntegrationKafkaBrokerOutageMidRunLosesNothing(t *testing.T) {
	script := kafkaEnv(t, "O365_KAFKA_BROKER_SCRIPT")
	sim := bigSim(t, 103, 48*time.Hour)
	prefix := fmt.Sprintf("it%d.", time.Now().UnixNano())
	counter := newTopicCounter(t, prefix)
	want := len(sim.ExpectedRecords())

	run := startKafkaPipeline(t, sim, t.TempDir(), prefix, map[string]string{"O365_LOG_LEVEL": "WARN"})
	counter.waitUnique(t, want/4, 2*time.Minute, run)

	stop := exec.Command(script, "stop")
	stop.Stdout, stop.Stderr = os.Stderr, os.Stderr
	require.NoError(t, stop.Run())
	atStop, _ := counter.counts()
	require.Less(t, atStop, want, "the outage must land mid-run for this test to mean anything")
	t.Cleanup(func() { _ = exec.Command(script, "start").Run() }) // leave a broker for the next test whatever happens
	time.Sleep(10 * time.Second)
	start := exec.Command(script, "start")
	start.Stdout, start.Stderr = os.Stderr, os.Stderr
	require.NoError(t, start.Run())

	counter.waitUnique(t, want, 4*time.Minute, run)
	duplicates := counter.verify(t, sim)
	t.Logf("broker down for 10 s after %d of %d records: all in Kafka after it came back, %d re-delivered", atStop, want, duplicates)
}

// checkpointsAcknowledgeNothing reads every checkpoint the run wrote and
// checks that no record was recorded as delivered.
func checkpointsAcknowledgeNothing(t *testing.T, stateDir string) {
	t.Helper()
	dir := filepath.Join(stateDir, "checkpoints")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		var cp struct {
			Delivered map[string]any `json:"delivered"`
			Pending   []struct {
				AckedRecords int `json:"acked_records"`
			} `json:"pending"`
		}
		require.NoError(t, json.Unmarshal(raw, &cp), "checkpoint %s", e.Name())
		assert.Empty(t, cp.Delivered, "checkpoint %s records delivered blobs", e.Name())
		for _, p := range cp.Pending {
			assert.Zero(t, p.AckedRecords, "checkpoint %s records acknowledged records", e.Name())
		}
	}
}

func TestIntegrationKafkaUnreachableOrRejectedAcknowledgesNothing(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		wantLogs string
	}{
		{
			name:     "wrong broker address",
			env:      map[string]string{"KAFKA_BROKERS": "127.0.0.1:1"},
			wantLogs: "127.0.0.1:1",
		},
		{
			name: "rejected SASL credentials",
			env: map[string]string{
				"KAFKA_BROKERS":        kafkaEnv(t, "O365_KAFKA_SASL_BROKERS"),
				"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
				"KAFKA_SASL_USERNAME":  kafkaEnv(t, "O365_KAFKA_SASL_USER"),
				"KAFKA_SASL_PASSWORD":  "definitely-wrong-password",
			},
			wantLogs: "SASL",
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := bigSim(t, int64(110+i), 2*time.Hour)
			stateDir := t.TempDir()
			run := startKafkaPipeline(t, sim, stateDir, fmt.Sprintf("it%d.", time.Now().UnixNano()), tc.env)

			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(run.logs(), tc.wantLogs) && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // give a broken build time to acknowledge something
			logs := run.logs()
			assert.Contains(t, logs, tc.wantLogs, "the log names the cause")
			assert.NotContains(t, logs, "definitely-wrong-password", "the password never reaches a log")
			require.NoError(t, run.cmd.Process.Signal(syscall.SIGTERM))
			select {
			case <-run.exited:
			case <-time.After(30 * time.Second):
				t.Error("the pipeline did not stop within 30 s of SIGTERM")
			}
			checkpointsAcknowledgeNothing(t, stateDir)
			assert.False(t, bytes.Contains([]byte(logs), []byte(sim.ClientSecret())), "the client secret never reaches a log")
		})
	}
}
