//go:build integration

package kafka

// Integration tests against a real Apache Kafka broker, started by scripts/kafka/broker.sh:
//
//	scripts/kafka/broker.sh start && eval "$(scripts/kafka/broker.sh env)"
//	go test -race -tags integration -count=1 ./output/kafka/
//	scripts/kafka/broker.sh stop
//
// With the tag set, a missing O365_KAFKA_* variable or an unreachable broker fails the tests:
// a skipped integration test reads as a passed one in CI.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// zstdCodec is the compression attribute of a record batch compressed with zstd.
const zstdCodec = 4

// requireEnv returns the variable's value or fails the test, naming how to set it.
func requireEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: start a broker with scripts/kafka/broker.sh start and run eval \"$(scripts/kafka/broker.sh env)\"", name)
	}
	return v
}

// realBrokers returns the plaintext bootstrap addresses after checking that the broker answers.
func realBrokers(t *testing.T) []string {
	t.Helper()
	brokers := strings.Split(requireEnv(t, "O365_KAFKA_BROKERS"), ",")
	pingBrokers(t, brokers)
	return brokers
}

func pingBrokers(t *testing.T, brokers []string, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("kafka broker %v is unreachable: %v (is scripts/kafka/broker.sh running?)", brokers, err)
	}
}

// uniqueTopic makes every run write to fresh topics, so counts are exact on a reused broker.
func uniqueTopic(t *testing.T, name string) string {
	return fmt.Sprintf("it.%s.%d", name, time.Now().UnixNano())
}

func TestIntegrationProduceConsume(t *testing.T) {
	brokers := realBrokers(t)
	prefix := uniqueTopic(t, "audit")
	out := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: '%s.${! meta("workload").lowercase() }'
key: '${! json("Id") }'
compression: zstd
metadata: {include_prefixes: [workload, content_]}
create_topics: {enabled: true, partitions: 3}
`, quoteList(brokers), prefix))
	require.True(t, out.cfg.idempotentWrite)

	const n = 60
	batch := make(service.MessageBatch, n)
	for i := range batch {
		workload := []string{"Exchange", "SharePoint", "AzureActiveDirectory"}[i%3]
		batch[i] = testMessage(fmt.Sprintf(`{"Id":"id-%02d","Workload":%q}`, i, workload),
			"workload", workload, "content_id", fmt.Sprintf("blob-%d", i/10), "internal", "not-a-header")
	}
	require.NoError(t, out.WriteBatch(t.Context(), batch))

	topics := []string{prefix + ".exchange", prefix + ".sharepoint", prefix + ".azureactivedirectory"}
	recs := consumeN(t, brokers, n, topics)
	seen := map[string]bool{}
	for _, r := range recs {
		h := headerMap(r)
		assert.Equal(t, prefix+"."+strings.ToLower(h["workload"]), r.Topic)
		assert.Contains(t, string(r.Value), `"Id":"`+string(r.Key)+`"`)
		assert.Len(t, h, 2, "only workload and content_ metadata become headers")
		assert.Equal(t, uint8(zstdCodec), r.Attrs.CompressionType(), "zstd compression")
		assert.GreaterOrEqual(t, r.ProducerID, int64(0), "idempotent producer id set")
		assert.False(t, seen[string(r.Key)], "duplicate key %s", r.Key)
		seen[string(r.Key)] = true
	}
	assert.Len(t, seen, n)
}

func TestIntegrationCreateTopics(t *testing.T) {
	brokers := realBrokers(t)
	topic := uniqueTopic(t, "created")
	connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: %s
create_topics: {enabled: true, partitions: 4, replication_factor: 1, configs: {retention.ms: "3600000"}}
`, quoteList(brokers), topic))

	adm := adminFor(t, brokers)
	// A broker reports a new topic's partitions a moment after CreateTopics returns.
	var partitions int
	require.Eventually(t, func() bool {
		details, err := adm.ListTopics(t.Context(), topic)
		if err != nil || details.Error() != nil {
			return false
		}
		partitions = len(details[topic].Partitions)
		return true
	}, 10*time.Second, 100*time.Millisecond, "topic %s not listed", topic)
	assert.Equal(t, 4, partitions)

	configs, err := adm.DescribeTopicConfigs(t.Context(), topic)
	require.NoError(t, err)
	rc, err := configs.On(topic, nil)
	require.NoError(t, err)
	var retention string
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			retention = c.MaybeValue()
		}
	}
	assert.Equal(t, "3600000", retention)

	// A second output finds the topic existing and connects as well.
	connectedOutput(t, fmt.Sprintf("seed_brokers: %s\ntopic: %s\ncreate_topics: {enabled: true}\n", quoteList(brokers), topic))
}

func TestIntegrationWrongAddress(t *testing.T) {
	realBrokers(t)
	for _, addr := range []string{"127.0.0.1:1", "no-such-host.invalid:9092"} {
		t.Run(addr, func(t *testing.T) {
			out := newOutput(t, fmt.Sprintf("seed_brokers: [%q]\ntopic: t\ntimeout: 3s\n", addr))
			start := time.Now()
			err := out.Connect(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "connecting to seed_brokers "+addr)
			assert.Less(t, time.Since(start), 15*time.Second)
			t.Logf("Connect failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}

func TestIntegrationSASL(t *testing.T) {
	brokers := realBrokers(t)
	saslBrokers := strings.Split(requireEnv(t, "O365_KAFKA_SASL_BROKERS"), ",")
	user := requireEnv(t, "O365_KAFKA_SASL_USER")
	pass := requireEnv(t, "O365_KAFKA_SASL_PASSWORD")
	topic := uniqueTopic(t, "sasl")
	adm := adminFor(t, brokers)
	created, err := adm.CreateTopic(t.Context(), 1, 1, nil, topic)
	require.NoError(t, err)
	require.NoError(t, created.Err)

	for _, mech := range []string{saslPlain, saslScramSHA256, saslScramSHA512} {
		t.Run(mech+"/good", func(t *testing.T) {
			out := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: %s
sasl: [{mechanism: %s, username: %s, password: %q}]
`, quoteList(saslBrokers), topic, mech, user, pass))
			require.NoError(t, out.WriteBatch(t.Context(), service.MessageBatch{testMessage(mech)}))
		})
		t.Run(mech+"/wrong_password", func(t *testing.T) {
			const wrong = "definitely-wrong-password"
			out := newOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: %s
timeout: 5s
sasl: [{mechanism: %s, username: %s, password: %q}]
`, quoteList(saslBrokers), topic, mech, user, wrong))
			err := out.Connect(t.Context())
			require.Error(t, err)
			assert.ErrorIs(t, err, kerr.SaslAuthenticationFailed)
			assert.Contains(t, err.Error(), "with SASL "+mech+" as "+user)
			assert.NotContains(t, err.Error(), wrong)
			assert.ErrorIs(t, out.WriteBatch(t.Context(), service.MessageBatch{testMessage("must not land")}), service.ErrNotConnected)
			t.Logf("Connect error: %v", err)
		})
	}

	// Exactly the three good writes landed; the rejected outputs wrote nothing.
	recs := consumeN(t, saslBrokers, 3, []string{topic},
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	for _, r := range recs {
		assert.NotEqual(t, "must not land", string(r.Value))
	}
}

// TestIntegrationBrokerRestart stops the broker under a connected output: batches written while
// it is down must fail (so Benthos would nack and redeliver them), and once it is back the same
// batches must succeed, with every record consumed exactly once.
func TestIntegrationBrokerRestart(t *testing.T) {
	brokers := realBrokers(t)
	script := os.Getenv("O365_KAFKA_BROKER_SCRIPT")
	if script == "" {
		script = filepath.Join("..", "..", "scripts", "kafka", "broker.sh")
	}
	broker := func(action string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		outp, err := exec.CommandContext(ctx, script, action).CombinedOutput()
		require.NoError(t, err, "broker.sh %s: %s", action, outp)
		t.Logf("broker.sh %s took %v", action, time.Since(start).Round(time.Millisecond))
	}
	// Whatever happens below, leave a running broker for the tests that follow.
	t.Cleanup(func() { broker("start") })

	topic := uniqueTopic(t, "restart")
	out := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: %s
timeout: 3s
compression: zstd
create_topics: {enabled: true, partitions: 2}
`, quoteList(brokers), topic))

	makeBatch := func(name string, size int) service.MessageBatch {
		b := make(service.MessageBatch, size)
		for i := range b {
			b[i] = testMessage(fmt.Sprintf("%s-%03d", name, i))
		}
		return b
	}
	// write is what Benthos does with one batch: a WriteBatch, or a Connect first after the
	// output reported itself disconnected.
	write := func(b service.MessageBatch) error {
		err := out.WriteBatch(t.Context(), b)
		if errors.Is(err, service.ErrNotConnected) {
			if cerr := out.Connect(t.Context()); cerr != nil {
				return cerr
			}
			err = out.WriteBatch(t.Context(), b)
		}
		return err
	}
	before := makeBatch("before", 20)
	require.NoError(t, out.WriteBatch(t.Context(), before))

	broker("stop")
	var pending []service.MessageBatch
	for i := range 2 {
		b := makeBatch(fmt.Sprintf("down%d", i), 10)
		start := time.Now()
		err := write(b)
		require.Error(t, err, "a batch written while the broker is down must fail")
		assert.Less(t, time.Since(start), 30*time.Second)
		t.Logf("WriteBatch while down failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		pending = append(pending, b)
	}
	broker("start")

	// Redeliver the failed batches as Benthos would, until they succeed or the deadline passes.
	deadline := time.Now().Add(60 * time.Second)
	for _, b := range pending {
		for {
			err := write(b)
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "batch still failing after the broker restarted: %v", err)
			t.Logf("retrying after restart: %v", err)
			time.Sleep(500 * time.Millisecond)
		}
	}
	after := makeBatch("after", 20)
	require.NoError(t, write(after))

	recs := consumeN(t, brokers, 20+10+10+20, []string{topic})
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Value)]++
	}
	for _, b := range append([]service.MessageBatch{before, after}, pending...) {
		for _, m := range b {
			v, _ := m.AsBytes()
			assert.Equal(t, 1, seen[string(v)], "record %s", v)
		}
	}
}
