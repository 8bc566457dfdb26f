//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/o365connect/o365connect/input/o365sim"
)

// Fault scenarios of the real binary on config/kafka.yaml and the real
// broker (docs/reliability.md).

func TestIntegrationKafkaRepeatedSIGKILLAtRandomPointsLosesNothing(t *testing.T) {
	sim := bigSim(t, 120, 24*time.Hour)
	prefix := fmt.Sprintf("it%d.", time.Now().UnixNano())
	stateDir := t.TempDir()
	counter := newTopicCounter(t, prefix)
	want := len(sim.ExpectedRecords())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 120))

	const kills = 4
	for i := range kills {
		run := startKafkaPipeline(t, sim, stateDir, prefix, map[string]string{"O365_LOG_LEVEL": "WARN"})
		// Kill once some progress was made, at a random moment after it:
		// mid-listing, mid-fetch, mid-produce or mid-checkpoint.
		before, _ := counter.counts()
		counter.waitUnique(t, min(before+1, want), time.Minute, run)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		require.NoError(t, run.cmd.Process.Signal(syscall.SIGKILL))
		<-run.exited
		unique, _ := counter.counts()
		t.Logf("kill %d: %d of %d records in Kafka", i+1, unique, want)
	}
	last := startKafkaPipeline(t, sim, stateDir, prefix, nil)
	counter.waitUnique(t, want, 2*time.Minute, last)
	time.Sleep(2 * time.Second)
	duplicates := counter.verify(t, sim)
	t.Logf("%d SIGKILLs: all %d records in Kafka, %d re-delivered (the unacknowledged tails)", kills, want, duplicates)
}

// deadLetterConsumer reads one topic and returns its records.
func readTopic(t *testing.T, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(kafkaEnv(t, "O365_KAFKA_BROKERS")),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		client.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestIntegrationKafkaForeignContentURIGoesToTheDeadLetterTopic(t *testing.T) {
	var foreignHits atomic.Int32
	foreign := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		foreignHits.Add(1)
	}))
	t.Cleanup(foreign.Close)

	sim := bigSim(t, 121, 2*time.Hour)
	bad := sim.AddForeignBlob(o365sim.ContentTypeExchange, time.Now().Add(-30*time.Minute), 3, foreign.URL)
	prefix := fmt.Sprintf("it%d.", time.Now().UnixNano())
	counter := newTopicCounter(t, prefix)
	run := startKafkaPipeline(t, sim, t.TempDir(), prefix, nil)

	var want []o365sim.ExpectedRecord
	for _, r := range sim.ExpectedRecords() {
		if r.ContentID != bad.ContentID {
			want = append(want, r)
		}
	}
	counter.waitUnique(t, len(want), 2*time.Minute, run)

	dls := readTopic(t, prefix+"deadletter", 1, 30*time.Second)
	require.Len(t, dls, 1, "one dead letter in %sdeadletter", prefix)
	headers := map[string]string{}
	for _, h := range dls[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	assert.Equal(t, "true", headers["dead_letter"])
	assert.Equal(t, bad.ContentID, headers["o365_content_id"])
	assert.Equal(t, o365sim.ContentTypeExchange, headers["o365_content_type"])
	assert.Contains(t, headers["o365_dead_letter_error"], "not the API host")
	assert.Zero(t, foreignHits.Load(), "the foreign host received no request (and so no token)")

	counter.mu.Lock()
	defer counter.mu.Unlock()
	for _, r := range want {
		assert.Equal(t, 1, counter.byID[r.ID], "record %s", r.ID)
	}
	for _, w := range counter.wrong {
		assert.Contains(t, w, prefix+"deadletter", "only the dead letter is outside a workload topic")
	}
}

func TestIntegrationNoSecretInLogsEchoOrMetrics(t *testing.T) {
	sim := bigSim(t, 122, 2*time.Hour)
	prefix := fmt.Sprintf("it%d.", time.Now().UnixNano())
	password := kafkaEnv(t, "O365_KAFKA_SASL_PASSWORD")
	httpAddr := freePort(t)
	env := map[string]string{
		"O365_LOG_LEVEL":       "DEBUG",
		"O365_HTTP_ADDRESS":    httpAddr,
		"KAFKA_BROKERS":        kafkaEnv(t, "O365_KAFKA_SASL_BROKERS"),
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
		"KAFKA_SASL_USERNAME":  kafkaEnv(t, "O365_KAFKA_SASL_USER"),
		"KAFKA_SASL_PASSWORD":  password,
	}
	// A token-endpoint failure and a 401 mid-run put auth errors in the log too.
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultInvalidClient})
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultUnauthorized, Op: o365sim.OpGetBlob})
	counter := newTopicCounter(t, prefix)
	run := startKafkaPipeline(t, sim, t.TempDir(), prefix, env)
	counter.waitUnique(t, len(sim.ExpectedRecords()), 2*time.Minute, run)

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, run.cmd.Process.Signal(syscall.SIGTERM))
	<-run.exited

	repoRoot, err := filepath.Abs("../..")
	require.NoError(t, err)
	echo := exec.Command(binaryPath, "echo", filepath.Join(repoRoot, "config", "kafka.yaml"))
	echo.Env = append(os.Environ(), "O365_TENANT_ID="+sim.TenantID(), "O365_CLIENT_ID="+sim.ClientID(),
		"O365_CLIENT_SECRET="+sim.ClientSecret(), "KAFKA_BROKERS=127.0.0.1:1", "KAFKA_SASL_PASSWORD="+password)
	echoOut, err := echo.CombinedOutput()
	require.NoError(t, err, "%s", echoOut)

	logs := run.logs()
	require.Contains(t, logs, "level=debug", "the run logged at debug level")
	require.Contains(t, logs, "invalid_client", "the auth failure was logged")
	for name, out := range map[string]string{"log": logs, "echo": string(echoOut), "metrics": string(metrics)} {
		assert.NotContains(t, out, sim.ClientSecret(), "client secret in %s", name)
		assert.NotContains(t, out, password, "SASL password in %s", name)
		// Access tokens are JWTs: base64url of {"alg"... starts with eyJ.
		assert.NotContains(t, out, "eyJ", "an access token in %s", name)
		assert.NotContains(t, strings.ToLower(out), "bearer ", "an Authorization header in %s", name)
	}
	assert.Contains(t, string(metrics), "o365_records_total", "the metrics endpoint was scraped")
}
