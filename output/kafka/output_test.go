package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name        string
		yaml        string
		errContains string
	}{
		{name: "minimal", yaml: `seed_brokers: [a:9092]
topic: t`},
		{name: "missing seed_brokers", yaml: `topic: t`, errContains: "seed_brokers"},
		{name: "empty seed_brokers", yaml: `seed_brokers: [" , "]
topic: t`, errContains: "seed_brokers: at least one"},
		{name: "unknown compression", yaml: `seed_brokers: [a:9092]
topic: t
compression: brotli`, errContains: `compression: "brotli" is not one of none, gzip, snappy, lz4, zstd`},
		{name: "bad partitioner", yaml: `seed_brokers: [a:9092]
topic: t
partitioner: random`, errContains: `partitioner: "random" is not one of murmur2_hash`},
		{name: "manual without partition", yaml: `seed_brokers: [a:9092]
topic: t
partitioner: manual`, errContains: "partition: required when partitioner is manual"},
		{name: "partition without manual", yaml: `seed_brokers: [a:9092]
topic: t
partition: "1"`, errContains: "partition: only allowed when partitioner is manual"},
		{name: "bad max_message_bytes", yaml: `seed_brokers: [a:9092]
topic: t
max_message_bytes: lots`, errContains: `max_message_bytes: "lots" is not a size`},
		{name: "bad sasl mechanism", yaml: `seed_brokers: [a:9092]
topic: t
sasl: [{mechanism: GSSAPI, username: u, password: p}]`, errContains: `sasl[0].mechanism: "GSSAPI" is not one of none, PLAIN`},
		{name: "sasl without username", yaml: `seed_brokers: [a:9092]
topic: t
sasl: [{mechanism: PLAIN, password: p}]`, errContains: "sasl[0].username: required"},
		{name: "zero partitions", yaml: `seed_brokers: [a:9092]
topic: t
create_topics: {enabled: true, partitions: 0}`, errContains: "create_topics.partitions: 0 must be positive or -1"},
		{name: "broker default replication", yaml: `seed_brokers: [a:9092]
topic: t
create_topics: {enabled: true, partitions: -1, replication_factor: -1}`},
		{name: "max_message_bytes too small", yaml: `seed_brokers: [a:9092]
topic: t
max_message_bytes: 100B`, errContains: `max_message_bytes: "100B" must be between 512B and 2GiB`},
		{name: "zero timeout", yaml: `seed_brokers: [a:9092]
topic: t
timeout: 0s`, errContains: "timeout: 0s must be positive"},
		{name: "bad interpolation", yaml: `seed_brokers: [a:9092]
topic: '${! meta( }'`, errContains: "topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.yaml)
			if tt.errContains == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.errContains)
		})
	}
}

func TestConfigSASLNoneIsSkipped(t *testing.T) {
	cfg, err := parseConfig(`seed_brokers: [a:9092]
topic: t
sasl: [{mechanism: none, username: "", password: ""}]`)
	require.NoError(t, err)
	assert.Empty(t, cfg.sasl, "a none entry (SASL chosen from the environment) configures no mechanism")
}

func TestConfigSeedBrokersCommaSeparated(t *testing.T) {
	cfg, err := parseConfig(`seed_brokers: ["a:1, b:2", "c:3"]
topic: t
max_message_bytes: 2MiB`)
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "b:2", "c:3"}, cfg.seedBrokers)
	assert.Equal(t, int32(2<<20), cfg.maxMessageBytes)
	assert.True(t, cfg.idempotentWrite, "idempotent_write defaults to true")
	assert.Equal(t, partMurmur2, cfg.partitioner)
}

func TestSpecLintsPartitionRule(t *testing.T) {
	env := service.NewEmptyEnvironment()
	require.NoError(t, env.RegisterBatchOutput("kafka_franz", franzOutputSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			return nil, service.BatchPolicy{}, 1, errors.New("unused")
		}))
	b := env.NewStreamBuilder()
	err := b.AddOutputYAML(`kafka_franz:
  seed_brokers: [a:9092]
  topic: t
  partitioner: manual`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a partition must be set when the partitioner is manual")
}

func TestWriteBatchInterpolatedTopicKeyHeaders(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "o365.exchange", "o365.sharepoint"))
	brokers := c.ListenAddrs()
	out := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: 'o365.${! meta("workload") }'
key: '${! json("Id") }'
compression: zstd
metadata:
  include_prefixes: [workload, content_]
`, quoteList(brokers)))

	batch := service.MessageBatch{
		testMessage(`{"Id":"1"}`, "workload", "exchange", "content_id", "c1", "secret_meta", "x"),
		testMessage(`{"Id":"2"}`, "workload", "sharepoint", "content_id", "c1"),
		testMessage(`{"Id":"3"}`, "workload", "exchange", "content_id", "c2"),
	}
	require.NoError(t, out.WriteBatch(t.Context(), batch))

	recs := consumeN(t, brokers, 3, []string{"o365.exchange", "o365.sharepoint"})
	byKey := map[string]*kgo.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = r
	}
	require.Len(t, byKey, 3)
	assert.Equal(t, "o365.exchange", byKey["1"].Topic)
	assert.Equal(t, `{"Id":"1"}`, string(byKey["1"].Value))
	assert.Equal(t, map[string]string{"workload": "exchange", "content_id": "c1"}, headerMap(byKey["1"]))
	assert.Equal(t, "o365.sharepoint", byKey["2"].Topic)
	assert.Equal(t, "o365.exchange", byKey["3"].Topic)
	assert.Equal(t, "c2", headerMap(byKey["3"])["content_id"])
}

func TestWriteBatchManualPartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(4, "manual"))
	brokers := c.ListenAddrs()
	out := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: manual
partitioner: manual
partition: '${! meta("p") }'
`, quoteList(brokers)))

	require.NoError(t, out.WriteBatch(t.Context(), service.MessageBatch{
		testMessage("a", "p", "2"), testMessage("b", "p", "3"),
	}))
	recs := consumeN(t, brokers, 2, []string{"manual"})
	for _, r := range recs {
		want := map[string]int32{"a": 2, "b": 3}[string(r.Value)]
		assert.Equal(t, want, r.Partition, "record %s", r.Value)
	}

	err := out.WriteBatch(t.Context(), service.MessageBatch{testMessage("c", "p", "x")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `partition: "x" is not a partition number`)
}

// produceErrorResponse answers a produce request with code for every partition in it.
func produceErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	preq := req.(*kmsg.ProduceRequest)
	resp := preq.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range preq.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func TestWriteBatchBrokerErrorFailsBatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "audit"))
	brokers := c.ListenAddrs()
	out := connectedOutput(t, fmt.Sprintf("seed_brokers: %s\ntopic: audit\n", quoteList(brokers)))

	// TOPIC_AUTHORIZATION_FAILED is not retriable, so the client fails the records at once.
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		return produceErrorResponse(req, kerr.TopicAuthorizationFailed.Code), nil, true
	})
	batch := service.MessageBatch{testMessage("a"), testMessage("b")}
	err := out.WriteBatch(t.Context(), batch)
	require.Error(t, err)
	assert.ErrorIs(t, err, kerr.TopicAuthorizationFailed)
	var bErr *service.BatchError
	require.ErrorAs(t, err, &bErr)
	assert.Equal(t, 2, bErr.IndexedErrors())

	// The control function handled one request only: a retry of the same batch now succeeds.
	require.NoError(t, out.WriteBatch(t.Context(), batch))
	consumeN(t, brokers, 2, []string{"audit"})
}

func TestWriteBatchMissingTopicTimesOut(t *testing.T) {
	t.Parallel()
	c := newCluster(t) // auto-creation is off by default in kfake
	out := connectedOutput(t, fmt.Sprintf("seed_brokers: %s\ntopic: nowhere\ntimeout: 1s\n", quoteList(c.ListenAddrs())))

	start := time.Now()
	err := out.WriteBatch(t.Context(), service.MessageBatch{testMessage("a")})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 15*time.Second, "the batch must fail within a bounded time")
	assert.Contains(t, err.Error(), "producing to nowhere")
}

func TestWriteBatchRecordTooLarge(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "big"))
	brokers := c.ListenAddrs()
	out := connectedOutput(t, fmt.Sprintf("seed_brokers: %s\ntopic: big\nmax_message_bytes: 1KiB\n", quoteList(brokers)))

	batch := service.MessageBatch{testMessage("small"), testMessage(strings.Repeat("x", 2000))}
	indexer := batch.Index()
	err := out.WriteBatch(t.Context(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "record for topic big is 2000 bytes, larger than max_message_bytes 1024")
	var bErr *service.BatchError
	require.ErrorAs(t, err, &bErr)
	assert.Equal(t, 1, bErr.IndexedErrors(), "only the large message fails")
	bErr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, err error) bool {
		assert.Equal(t, i == 1, err != nil, "message %d", i)
		return true
	})
	consumeN(t, brokers, 1, []string{"big"})
}

// TestWriteBatchClusterGone guards against the hang where franz-go keeps records buffered forever
// while no broker is reachable: the batch must fail within timeout and the output must ask to be
// reconnected.
func TestWriteBatchClusterGone(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "gone"))
	out := connectedOutput(t, fmt.Sprintf("seed_brokers: %s\ntopic: gone\ntimeout: 1s\n", quoteList(c.ListenAddrs())))
	require.NoError(t, out.WriteBatch(t.Context(), service.MessageBatch{testMessage("a")}))
	c.Close()

	start := time.Now()
	err := out.WriteBatch(t.Context(), service.MessageBatch{testMessage("b"), testMessage("c")})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, err.Error(), "no acknowledgement within timeout 1s, reconnecting: 2 of 2 messages not written")
	var bErr *service.BatchError
	require.ErrorAs(t, err, &bErr)
	assert.Equal(t, 2, bErr.IndexedErrors())
	assert.ErrorIs(t, out.WriteBatch(t.Context(), service.MessageBatch{testMessage("d")}), service.ErrNotConnected)
	require.Error(t, out.Connect(t.Context()))
}

func TestCreateTopics(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	brokers := c.ListenAddrs()
	adm := adminFor(t, brokers)

	static := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: o365.static
create_topics: {enabled: true, partitions: 5, replication_factor: 1, configs: {retention.ms: "3600000"}}
`, quoteList(brokers)))
	details, err := adm.ListTopics(t.Context(), "o365.static")
	require.NoError(t, err)
	require.NoError(t, details.Error())
	assert.Len(t, details["o365.static"].Partitions, 5, "static topic created at Connect")
	require.NoError(t, static.Close(t.Context()))
	require.NoError(t, static.Close(t.Context()), "Close is idempotent")

	dynamic := connectedOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: 'o365.${! meta("workload") }'
create_topics: {enabled: true, partitions: 2}
`, quoteList(brokers)))
	batch := service.MessageBatch{
		testMessage("1", "workload", "teams"), testMessage("2", "workload", "yammer"), testMessage("3", "workload", "teams"),
	}
	require.NoError(t, dynamic.WriteBatch(t.Context(), batch))
	require.NoError(t, dynamic.WriteBatch(t.Context(), batch), "ensured topics are not recreated")

	details, err = adm.ListTopics(t.Context(), "o365.teams", "o365.yammer")
	require.NoError(t, err)
	require.NoError(t, details.Error())
	assert.Len(t, details["o365.teams"].Partitions, 2)
	assert.Len(t, details["o365.yammer"].Partitions, 2)
	consumeN(t, brokers, 6, []string{"o365.teams", "o365.yammer"})
}

func TestSASL(t *testing.T) {
	t.Parallel()
	c := newCluster(t,
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pass512"),
		kfake.SeedTopics(1, "secure"),
	)
	brokers := c.ListenAddrs()
	tests := []struct {
		mech, user, pass string
		ok               bool
	}{
		{"PLAIN", "plainuser", "plainpass", true},
		{"SCRAM-SHA-256", "scram256", "pass256", true},
		{"SCRAM-SHA-512", "scram512", "pass512", true},
		{"PLAIN", "plainuser", "wrong-password-123", false},
		{"SCRAM-SHA-256", "scram256", "wrong-password-123", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.mech, tt.ok), func(t *testing.T) {
			out := newOutput(t, fmt.Sprintf(`seed_brokers: %s
topic: secure
timeout: 5s
sasl: [{mechanism: %s, username: %s, password: %s}]
`, quoteList(brokers), tt.mech, tt.user, tt.pass))
			err := out.Connect(t.Context())
			if !tt.ok {
				require.Error(t, err)
				// kfake closes the connection on a failed login (real Kafka answers
				// SASL_AUTHENTICATION_FAILED, see the integration test), so the error must say
				// which login was tried.
				assert.Contains(t, err.Error(), fmt.Sprintf("connecting to seed_brokers %s with SASL %s as %s", brokers[0], tt.mech, tt.user))
				assert.NotContains(t, err.Error(), tt.pass, "the password never appears in errors")
				return
			}
			require.NoError(t, err)
			require.NoError(t, out.WriteBatch(t.Context(), service.MessageBatch{testMessage(tt.mech)}))
		})
	}
	consumeN(t, brokers, 3, []string{"secure"},
		kgo.SASL(scram.Auth{User: "scram256", Pass: "pass256"}.AsSha256Mechanism()))
}

func TestConnectUnreachableBroker(t *testing.T) {
	t.Parallel()
	out := newOutput(t, "seed_brokers: [127.0.0.1:1]\ntopic: t\ntimeout: 2s\n")
	require.ErrorIs(t, out.WriteBatch(t.Context(), service.MessageBatch{testMessage("a")}), service.ErrNotConnected)
	start := time.Now()
	err := out.Connect(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connecting to seed_brokers 127.0.0.1:1")
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestStreamBuilder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, kfake.SeedTopics(1, "o365.azureactivedirectory", "o365.exchange"))
	brokers := c.ListenAddrs()

	b := service.NewStreamBuilder()
	require.NoError(t, b.SetYAML(fmt.Sprintf(`
logger: {level: NONE}
input:
  generate:
    count: 6
    interval: ""
    mapping: |
      root.Id = counter().string()
      meta workload = if counter() %% 2 == 0 { "Exchange" } else { "AzureActiveDirectory" }
output:
  kafka_franz:
    seed_brokers: %s
    topic: 'o365.${! meta("workload").lowercase() }'
    key: '${! json("Id") }'
    metadata: {include_prefixes: [workload]}
    batching: {count: 3}
`, quoteList(brokers))))
	stream, err := b.Build()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, stream.Run(ctx))

	recs := consumeN(t, brokers, 6, []string{"o365.azureactivedirectory", "o365.exchange"})
	for _, r := range recs {
		assert.Equal(t, "o365."+strings.ToLower(headerMap(r)["workload"]), r.Topic)
	}
}

func TestMetaReference(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"${! @topic }", "topic"},
		{"${!@o365_record_id}", "o365_record_id"},
		{` ${! meta("kafka.key") } `, "kafka.key"},
		{"o365.${! @workload }", ""},
		{"${! @topic.lowercase() }", ""},
		{"${! @ }", ""},
		{"static", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, metaReference(tt.raw), tt.raw)
	}
}

// TestBuildRecordMetadataFastPath checks that reading topic and key straight from metadata gives
// what interpolation gives, including a missing key (Bloblang's "null").
func TestBuildRecordMetadataFastPath(t *testing.T) {
	cfg, err := parseConfig("seed_brokers: [a:9092]\ntopic: ${! @topic }\nkey: ${! @id }\nmetadata: {include_prefixes: [o365_]}\n")
	require.NoError(t, err)
	require.Equal(t, "topic", cfg.topicMeta)
	require.Equal(t, "id", cfg.keyMeta)
	out := newFranzOutput(cfg, nil)

	with := service.NewMessage([]byte(`{}`))
	with.MetaSetMut("topic", "o365.exchange")
	with.MetaSetMut("id", "8b5e")
	with.MetaSetMut("o365_workload", "Exchange")
	with.MetaSetMut("o365_operation", "Send")
	without := service.NewMessage([]byte(`{}`))
	recs, errs := out.buildRecords(service.MessageBatch{with, without})

	require.NoError(t, errs[0])
	assert.Equal(t, "o365.exchange", recs[0].Topic)
	assert.Equal(t, "8b5e", string(recs[0].Key))
	headers := map[string]string{}
	for _, h := range recs[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	assert.Equal(t, map[string]string{"o365_workload": "Exchange", "o365_operation": "Send"}, headers)
	require.NoError(t, errs[1])
	assert.Equal(t, "null", recs[1].Topic, "as interpolation renders a missing key")
	assert.Equal(t, "null", string(recs[1].Key))
	assert.Empty(t, recs[1].Headers)
}

// BenchmarkBuildRecordsProduction builds records the way config/kafka.yaml configures the output:
// topic and key read from metadata, the input's o365_ metadata as headers.
func BenchmarkBuildRecordsProduction(b *testing.B) {
	cfg, err := parseConfig("seed_brokers: [a:9092]\ntopic: ${! @topic }\nkey: ${! @o365_record_id }\nmetadata: {include_prefixes: [o365_]}\n")
	require.NoError(b, err)
	out := newFranzOutput(cfg, nil)
	body := bytes.Repeat([]byte("x"), 1200)
	batch := make(service.MessageBatch, 100)
	for i := range batch {
		m := service.NewMessage(body)
		for k, v := range map[string]string{
			"o365_tenant_id": "6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13", "o365_content_type": "Audit.Exchange",
			"o365_content_id":      "20261101100000000$20261101110000000$audit_exchange$Audit_Exchange$emea0026",
			"o365_content_created": "2026-11-01T10:00:00Z", "o365_workload": "Exchange", "o365_record_type": "2",
			"o365_operation": "Send", "o365_creation_time": "2026-11-01T09:58:00Z", "topic": "o365.exchange",
		} {
			m.MetaSetMut(k, v)
		}
		m.MetaSetMut("o365_record_id", fmt.Sprintf("80c76bd2-9d81-4c57-a97a-%012d", i))
		batch[i] = m
	}
	b.SetBytes(int64(len(body) * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		recs, errs := out.buildRecords(batch)
		if errs[0] != nil || recs[99] == nil {
			b.Fatal(errs[0])
		}
	}
}

func BenchmarkBuildRecords(b *testing.B) {
	cfg, err := parseConfig(`seed_brokers: [a:9092]
topic: 'o365.${! meta("workload").lowercase() }'
key: '${! meta("id") }'
metadata: {include_prefixes: [workload, content_]}
`)
	require.NoError(b, err)
	out := newFranzOutput(cfg, nil)
	body := []byte(`{"CreationTime":"2026-11-01T10:00:00","Id":"8b5e","Operation":"UserLoggedIn","Workload":"AzureActiveDirectory","ClientIP":"203.0.113.9"}`)
	batch := make(service.MessageBatch, 100)
	for i := range batch {
		m := service.NewMessage(body)
		m.MetaSetMut("workload", "AzureActiveDirectory")
		m.MetaSetMut("id", fmt.Sprintf("id-%d", i))
		m.MetaSetMut("content_id", "20261101100000000$2026110111...")
		m.MetaSetMut("unrelated", "x")
		batch[i] = m
	}
	b.ReportAllocs()
	for b.Loop() {
		recs, errs := out.buildRecords(batch)
		if errs[0] != nil || recs[99] == nil {
			b.Fatal(errs[0])
		}
	}
}
