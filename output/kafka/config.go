package kafka

import (
	"crypto/tls"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/klauspost/compress/zstd"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Field names match Redpanda Connect's kafka_franz output so that configs port unchanged.
const (
	kfFieldSeedBrokers      = "seed_brokers"
	kfFieldTopic            = "topic"
	kfFieldKey              = "key"
	kfFieldPartitioner      = "partitioner"
	kfFieldPartition        = "partition"
	kfFieldClientID         = "client_id"
	kfFieldIdempotentWrite  = "idempotent_write"
	kfFieldCompression      = "compression"
	kfFieldTimeout          = "timeout"
	kfFieldMaxMessageBytes  = "max_message_bytes"
	kfFieldMetadata         = "metadata"
	kfFieldTLS              = "tls"
	kfFieldSASL             = "sasl"
	kfFieldSASLMechanism    = "mechanism"
	kfFieldSASLUsername     = "username"
	kfFieldSASLPassword     = "password"
	kfFieldCreateTopics     = "create_topics"
	kfFieldCTEnabled        = "enabled"
	kfFieldCTPartitions     = "partitions"
	kfFieldCTReplication    = "replication_factor"
	kfFieldCTConfigs        = "configs"
	kfFieldMaxInFlight      = "max_in_flight"
	kfFieldBatching         = "batching"
	kfDefaultClientID       = "o365connect"
	kfDefaultMaxMessageSize = "1MB"
)

// Partitioner names accepted by the partitioner field.
const (
	partMurmur2     = "murmur2_hash"
	partRoundRobin  = "round_robin"
	partLeastBackup = "least_backup"
	partManual      = "manual"
)

// SASL mechanisms accepted by sasl[].mechanism.
const (
	// saslNone turns an entry off, as in Redpanda Connect, so that one
	// config can enable SASL from an environment variable.
	saslNone        = "none"
	saslPlain       = "PLAIN"
	saslScramSHA256 = "SCRAM-SHA-256"
	saslScramSHA512 = "SCRAM-SHA-512"
)

var (
	partitioners = []string{partMurmur2, partRoundRobin, partLeastBackup, partManual}
	compressions = map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		// zstd's fastest level: on audit JSON it compresses as well as the
		// default level (ratio 6.9 against 6.85) at 1.4 times the speed.
		"zstd": kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest)),
	}
	compressionNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	saslMechanisms   = []string{saslNone, saslPlain, saslScramSHA256, saslScramSHA512}
)

func franzOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Writes a batch of messages to Kafka brokers with franz-go and waits for the broker to acknowledge every record.").
		Description(`
Field names follow Redpanda Connect's `+"`kafka_franz`"+` output for the features implemented here, so a
configuration written for it ports unchanged.

Every record is produced with `+"`acks=all`"+` and, by default, with the idempotent producer, so a retried
batch cannot be duplicated by the client itself. A batch is acknowledged upstream only once the broker has
acknowledged every record of it; any failure (unreachable broker, record too large, topic missing, timeout)
fails the batch, which makes the input redeliver it. Messages can therefore be written more than once after
a failure (at-least-once delivery), never lost.

The `+"`topic`"+`, `+"`key`"+` and `+"`partition`"+` fields are interpolated per message, which lets one output
route each workload to its own topic. Message metadata selected by `+"`metadata`"+` becomes record headers.

With `+"`create_topics.enabled`"+`, the output creates its static topic at connect time and, for an
interpolated topic, each new topic name once before the first record is produced to it, so a cluster
with `+"`auto.create.topics.enable=false`"+` needs no manual step. Topics that already exist are left as they are.`).
		Fields(
			service.NewStringListField(kfFieldSeedBrokers).
				Description("A list of broker addresses to connect to. Entries containing commas are split into several addresses.").
				Examples([]string{"localhost:9092"}, []string{"foo:9092", "bar:9092"}, []string{"foo:9092,bar:9092"}),
			service.NewInterpolatedStringField(kfFieldTopic).
				Description("The topic to write each message to.").
				Examples("o365.audit", `o365.${! meta("workload").lowercase() }`),
			service.NewInterpolatedStringField(kfFieldKey).
				Description("An optional key for each record. Records with the same key go to the same partition with the `murmur2_hash` partitioner.").
				Example(`${! json("Id") }`).
				Optional(),
			service.NewStringAnnotatedEnumField(kfFieldPartitioner, map[string]string{
				partMurmur2:     "Kafka's default: murmur2 hash of the key, sticky batching for records without a key.",
				partRoundRobin:  "Spreads records over all partitions in turn.",
				partLeastBackup: "Chooses the partition with the fewest records buffered for it.",
				partManual:      "Uses the partition given by the `partition` field.",
			}).
				Description("The partitioning algorithm.").
				Default(partMurmur2).
				Advanced(),
			service.NewInterpolatedStringField(kfFieldPartition).
				Description("The partition to write each message to, as a number. Required with `partitioner: manual` and not allowed otherwise.").
				Example(`${! meta("partition") }`).
				Optional().
				Advanced(),
			service.NewStringField(kfFieldClientID).
				Description("The client ID the output presents to the brokers.").
				Default(kfDefaultClientID).
				Advanced(),
			service.NewBoolField(kfFieldIdempotentWrite).
				Description("Use the idempotent producer, which stops client retries from duplicating records. Needs the `IDEMPOTENT_WRITE` permission on the cluster (implied by `WRITE` on Kafka 3.0+). Turn off only for brokers that do not support it.").
				Default(true).
				Advanced(),
			service.NewStringEnumField(kfFieldCompression, compressionNames...).
				Description("The compression of produced record batches. When unset, franz-go's default (snappy) is used. `zstd` uses zstd's fastest level, which on audit records compresses about as well as its default level for less CPU.").
				Optional().
				Advanced(),
			service.NewDurationField(kfFieldTimeout).
				Description("The maximum time to wait for a record to be acknowledged, including retries while a broker is unreachable. A record not acknowledged within it fails its batch, which is then retried.").
				Default("10s").
				Advanced(),
			service.NewStringField(kfFieldMaxMessageBytes).
				Description("The largest record batch the output sends; a single record (value, key and headers) larger than this fails with an error naming its size. It should not exceed the broker's `message.max.bytes`.").
				Default(kfDefaultMaxMessageSize).
				Examples("100MB", "50mib").
				Advanced(),
			service.NewMetadataFilterField(kfFieldMetadata).
				Description("Which message metadata to write as record headers.").
				Optional(),
			service.NewTLSToggledField(kfFieldTLS),
			service.NewObjectListField(kfFieldSASL,
				service.NewStringEnumField(kfFieldSASLMechanism, saslMechanisms...).
					Description("The SASL mechanism."),
				service.NewStringField(kfFieldSASLUsername).
					Description("The user name.").
					Default(""),
				service.NewStringField(kfFieldSASLPassword).
					Description("The password.").
					Default("").
					Secret(),
			).
				Description("SASL authentication, tried in order until one succeeds. Usually a single entry.").
				Example([]any{map[string]any{"mechanism": saslScramSHA512, "username": "o365connect", "password": "${KAFKA_PASSWORD}"}}).
				Optional().
				Advanced(),
			service.NewObjectField(kfFieldCreateTopics,
				service.NewBoolField(kfFieldCTEnabled).
					Description("Create missing topics with the settings below.").
					Default(false),
				service.NewIntField(kfFieldCTPartitions).
					Description("The number of partitions of a created topic, or -1 for the broker's `num.partitions`.").
					Default(3),
				service.NewIntField(kfFieldCTReplication).
					Description("The replication factor of a created topic, or -1 for the broker's `default.replication.factor`.").
					Default(1),
				service.NewStringMapField(kfFieldCTConfigs).
					Description("Topic configs of a created topic.").
					Example(map[string]any{"retention.ms": "604800000", "min.insync.replicas": "2"}).
					Default(map[string]any{}),
			).
				Description("Creates topics that do not exist yet, for clusters with automatic topic creation disabled.").
				Advanced(),
			service.NewOutputMaxInFlightField().Default(10),
			service.NewBatchPolicyField(kfFieldBatching),
		).
		LintRule(`root = match {
  this.partitioner == "manual" && this.partition.or("") == "" => ["a partition must be set when the partitioner is manual"]
  this.partitioner != "manual" && this.partition.or("") != "" => ["a partition cannot be set unless the partitioner is manual"]
}`).
		Example("One topic per workload", "Routes each audit record to a topic named after its workload, keyed by record ID, with the workload copied into a header.", `
output:
  kafka_franz:
    seed_brokers: [ "kafka-1:9092", "kafka-2:9092" ]
    topic: 'o365.${! meta("workload").lowercase() }'
    key: '${! json("Id") }'
    compression: zstd
    metadata:
      include_prefixes: [ "workload", "content_" ]
    tls:
      enabled: true
    sasl:
      - mechanism: SCRAM-SHA-512
        username: o365connect
        password: "${KAFKA_PASSWORD}"
    create_topics:
      enabled: true
      partitions: 6
      replication_factor: 3
      configs:
        retention.ms: "1209600000"
    batching:
      count: 500
      period: 1s
`)
}

// saslConfig is one sasl[] entry.
type saslConfig struct {
	mechanism string
	username  string
	password  string
}

// createTopicsConfig is the create_topics block.
type createTopicsConfig struct {
	enabled           bool
	partitions        int32
	replicationFactor int16
	configs           map[string]*string
}

// franzConfig is the validated configuration of one kafka_franz output.
type franzConfig struct {
	seedBrokers []string
	topic       *service.InterpolatedString
	key         *service.InterpolatedString
	// topicMeta and keyMeta name the metadata key when topic or key is nothing but a reference
	// to one (`${! @topic }`), which WriteBatch then reads without running Bloblang.
	topicMeta, keyMeta string
	partitioner        string
	partition          *service.InterpolatedString
	clientID           string
	idempotentWrite    bool
	compression        *kgo.CompressionCodec
	timeout            time.Duration
	maxMessageBytes    int32
	metadata           *service.MetadataFilter
	tls                *tls.Config
	sasl               []saslConfig
	createTopics       createTopicsConfig
}

// metaRefPattern matches an interpolation that only reads one metadata key: `${! @name }` or
// `${! meta("name") }`.
var metaRefPattern = regexp.MustCompile(`^\$\{!\s*(?:@([A-Za-z0-9_.-]+)|meta\("([A-Za-z0-9_.-]+)"\))\s*\}$`)

// metaReference returns the metadata key an interpolated field reads, or "" when it is anything
// more than one metadata reference.
func metaReference(raw string) string {
	m := metaRefPattern.FindStringSubmatch(strings.TrimSpace(raw))
	if m == nil {
		return ""
	}
	return m[1] + m[2]
}

func franzConfigFromParsed(conf *service.ParsedConfig) (*franzConfig, error) {
	var (
		cfg franzConfig
		err error
	)

	if !conf.Contains(kfFieldSeedBrokers) {
		return nil, fmt.Errorf("%s: at least one broker address is required", kfFieldSeedBrokers)
	}
	rawBrokers, err := conf.FieldStringList(kfFieldSeedBrokers)
	if err != nil {
		return nil, err
	}
	for _, entry := range rawBrokers {
		for addr := range strings.SplitSeq(entry, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				cfg.seedBrokers = append(cfg.seedBrokers, addr)
			}
		}
	}
	if len(cfg.seedBrokers) == 0 {
		return nil, fmt.Errorf("%s: at least one broker address is required", kfFieldSeedBrokers)
	}

	if cfg.topic, err = conf.FieldInterpolatedString(kfFieldTopic); err != nil {
		return nil, err
	}
	rawTopic, _ := conf.FieldString(kfFieldTopic)
	if strings.TrimSpace(rawTopic) == "" {
		return nil, fmt.Errorf("%s: must not be empty", kfFieldTopic)
	}
	cfg.topicMeta = metaReference(rawTopic)
	if conf.Contains(kfFieldKey) {
		if cfg.key, err = conf.FieldInterpolatedString(kfFieldKey); err != nil {
			return nil, err
		}
		raw, _ := conf.FieldString(kfFieldKey)
		cfg.keyMeta = metaReference(raw)
	}

	if cfg.partitioner, err = conf.FieldString(kfFieldPartitioner); err != nil {
		return nil, err
	}
	if !slices.Contains(partitioners, cfg.partitioner) {
		return nil, fmt.Errorf("%s: %q is not one of %s", kfFieldPartitioner, cfg.partitioner, strings.Join(partitioners, ", "))
	}
	hasPartition := conf.Contains(kfFieldPartition)
	if hasPartition {
		if cfg.partition, err = conf.FieldInterpolatedString(kfFieldPartition); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.partitioner == partManual && !hasPartition:
		return nil, fmt.Errorf("%s: required when %s is %s", kfFieldPartition, kfFieldPartitioner, partManual)
	case cfg.partitioner != partManual && hasPartition:
		return nil, fmt.Errorf("%s: only allowed when %s is %s, not %q", kfFieldPartition, kfFieldPartitioner, partManual, cfg.partitioner)
	}

	if cfg.clientID, err = conf.FieldString(kfFieldClientID); err != nil {
		return nil, err
	}
	if cfg.idempotentWrite, err = conf.FieldBool(kfFieldIdempotentWrite); err != nil {
		return nil, err
	}

	if conf.Contains(kfFieldCompression) {
		name, err := conf.FieldString(kfFieldCompression)
		if err != nil {
			return nil, err
		}
		codec, ok := compressions[name]
		if !ok {
			return nil, fmt.Errorf("%s: %q is not one of %s", kfFieldCompression, name, strings.Join(compressionNames, ", "))
		}
		cfg.compression = &codec
	}

	if cfg.timeout, err = conf.FieldDuration(kfFieldTimeout); err != nil {
		return nil, err
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("%s: %v must be positive", kfFieldTimeout, cfg.timeout)
	}

	rawMax, err := conf.FieldString(kfFieldMaxMessageBytes)
	if err != nil {
		return nil, err
	}
	maxBytes, err := humanize.ParseBytes(rawMax)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not a size such as 1MB: %w", kfFieldMaxMessageBytes, rawMax, err)
	}
	// franz-go refuses batch limits under 512 bytes (a record batch header alone is 61).
	if maxBytes < 512 || maxBytes > math.MaxInt32 {
		return nil, fmt.Errorf("%s: %q must be between 512B and 2GiB", kfFieldMaxMessageBytes, rawMax)
	}
	cfg.maxMessageBytes = int32(maxBytes)

	if conf.Contains(kfFieldMetadata) {
		if cfg.metadata, err = conf.FieldMetadataFilter(kfFieldMetadata); err != nil {
			return nil, err
		}
	}

	tlsConf, tlsEnabled, err := conf.FieldTLSToggled(kfFieldTLS)
	if err != nil {
		return nil, err
	}
	if tlsEnabled {
		cfg.tls = tlsConf
	}

	if cfg.sasl, err = saslFromParsed(conf); err != nil {
		return nil, err
	}
	if cfg.createTopics, err = createTopicsFromParsed(conf.Namespace(kfFieldCreateTopics)); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func saslFromParsed(conf *service.ParsedConfig) ([]saslConfig, error) {
	if !conf.Contains(kfFieldSASL) {
		return nil, nil
	}
	entries, err := conf.FieldObjectList(kfFieldSASL)
	if err != nil {
		return nil, err
	}
	out := make([]saslConfig, 0, len(entries))
	for i, e := range entries {
		var s saslConfig
		if s.mechanism, err = e.FieldString(kfFieldSASLMechanism); err != nil {
			return nil, err
		}
		if !slices.Contains(saslMechanisms, s.mechanism) {
			return nil, fmt.Errorf("%s[%d].%s: %q is not one of %s", kfFieldSASL, i, kfFieldSASLMechanism, s.mechanism, strings.Join(saslMechanisms, ", "))
		}
		if s.mechanism == saslNone {
			continue
		}
		if s.username, err = e.FieldString(kfFieldSASLUsername); err != nil {
			return nil, err
		}
		if s.password, err = e.FieldString(kfFieldSASLPassword); err != nil {
			return nil, err
		}
		if s.username == "" {
			return nil, fmt.Errorf("%s[%d].%s: required for %s", kfFieldSASL, i, kfFieldSASLUsername, s.mechanism)
		}
		out = append(out, s)
	}
	return out, nil
}

func createTopicsFromParsed(conf *service.ParsedConfig) (createTopicsConfig, error) {
	var ct createTopicsConfig
	var err error
	if ct.enabled, err = conf.FieldBool(kfFieldCTEnabled); err != nil {
		return ct, err
	}
	partitions, err := conf.FieldInt(kfFieldCTPartitions)
	if err != nil {
		return ct, err
	}
	if partitions == 0 || partitions < -1 || partitions > math.MaxInt32 {
		return ct, fmt.Errorf("%s.%s: %d must be positive or -1 for the broker default", kfFieldCreateTopics, kfFieldCTPartitions, partitions)
	}
	ct.partitions = int32(partitions)
	rf, err := conf.FieldInt(kfFieldCTReplication)
	if err != nil {
		return ct, err
	}
	if rf == 0 || rf < -1 || rf > math.MaxInt16 {
		return ct, fmt.Errorf("%s.%s: %d must be positive or -1 for the broker default", kfFieldCreateTopics, kfFieldCTReplication, rf)
	}
	ct.replicationFactor = int16(rf)
	configs, err := conf.FieldStringMap(kfFieldCTConfigs)
	if err != nil {
		return ct, err
	}
	if len(configs) > 0 {
		ct.configs = make(map[string]*string, len(configs))
		for k, v := range configs {
			ct.configs[k] = &v
		}
	}
	return ct, nil
}
