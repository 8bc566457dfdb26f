package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	rtFieldTopicPrefix   = "topic_prefix"
	rtFieldTopics        = "topics"
	rtFieldFallbackTopic = "fallback_topic"
)

const (
	// rtMetaTopic is the metadata key the Kafka output reads its topic from.
	rtMetaTopic = "topic"
	// rtMetaWorkload is set by the office365_activity input for every record.
	rtMetaWorkload = "o365_workload"

	// kafkaMaxTopicLen is Kafka's limit on topic names (Topic.MAX_NAME_LENGTH).
	kafkaMaxTopicLen = 249
	// rtMaxCachedTopics bounds the workload-to-topic cache, so that a stream of
	// distinct made-up workloads cannot grow memory without limit.
	rtMaxCachedTopics = 1024
)

func routeSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Mapping").
		Summary("Sets the `topic` metadata key of each Office 365 audit record from its workload.").
		Description(`
Use it in front of the Kafka output (with `+"`topic: ${! @topic }`"+`) to write one topic per workload.

The workload comes from the `+"`o365_workload`"+` metadata key that the `+"`office365_activity`"+` input sets.
When that key is absent or empty the processor reads the record's top-level `+"`Workload`"+` field (matched
case-insensitively, as some producers spell it `+"`workload`"+`) and also sets `+"`o365_workload`"+` from it.

The topic is, in order of precedence:

1. The value in `+"`topics`"+` whose key equals the workload, compared case-insensitively.
2. `+"`topic_prefix`"+` followed by the workload lower-cased, with every character outside `+"`[a-z0-9._-]`"+`
   replaced by `+"`_`"+` and leading or trailing spaces removed: `+"`Exchange`"+` becomes `+"`o365.exchange`"+`,
   `+"`Dynamics 365`"+` becomes `+"`o365.dynamics_365`"+`. A name longer than Kafka's 249-character limit is cut
   and ends in `+"`_`"+` plus 8 hex digits of a hash of the full workload, so that two long workloads do not
   share a topic.
3. `+"`fallback_topic`"+` when the record has no workload or its content is not a JSON object.

Note that DLP records carry the workload of the service they were found in (for example `+"`Exchange`"+`),
so they are routed with that workload unless the pipeline routes on `+"`o365_content_type`"+` first.

### Metadata

- `+"`topic`"+`: always set.
- `+"`o365_workload`"+`: set from the record when it was absent.

The processor never fails a message and does not change its content.`).
		Field(service.NewStringField(rtFieldTopicPrefix).
			Description("Prepended to the sanitised workload to form the default topic. May be empty; may only contain `[a-zA-Z0-9._-]`.").
			Default("o365.")).
		Field(service.NewStringMapField(rtFieldTopics).
			Description("Topics for specific workloads, overriding the default name. Keys are workloads, compared case-insensitively; values must be valid Kafka topic names.").
			Example(map[string]any{"AzureActiveDirectory": "o365.entra", "Dynamics 365": "o365.dynamics"}).
			Default(map[string]any{})).
		Field(service.NewStringField(rtFieldFallbackTopic).
			Description("The topic for records without a workload and for content that is not a JSON object.").
			Default("o365.unknown")).
		Example("One topic per workload", "Routes each record to `audit.<workload>`, with Entra ID events under a shorter name.", `
pipeline:
  processors:
    - office365_route:
        topic_prefix: audit.
        topics:
          AzureActiveDirectory: audit.entra
        fallback_topic: audit.unknown
output:
  kafka_franz:
    topic: ${! @topic }
`)
}

func init() {
	service.MustRegisterProcessor("office365_route", routeSpec(),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.Processor, error) {
			cfg, err := routeConfigFromParsed(conf)
			if err != nil {
				return nil, err
			}
			return newRouter(cfg), nil
		})
}

type routeConfig struct {
	topicPrefix   string
	topics        map[string]string // keys lower-cased
	fallbackTopic string
}

func routeConfigFromParsed(conf *service.ParsedConfig) (routeConfig, error) {
	var cfg routeConfig
	var err error
	if cfg.topicPrefix, err = conf.FieldString(rtFieldTopicPrefix); err != nil {
		return cfg, err
	}
	if i := strings.IndexFunc(cfg.topicPrefix, func(r rune) bool { return !isTopicRune(r) }); i >= 0 {
		return cfg, fmt.Errorf("%s: %q contains %q; only [a-zA-Z0-9._-] are allowed", rtFieldTopicPrefix, cfg.topicPrefix, cfg.topicPrefix[i:i+1])
	}
	// Leave room for at least the hash suffix of a cut name.
	if len(cfg.topicPrefix) > kafkaMaxTopicLen-16 {
		return cfg, fmt.Errorf("%s: %q is %d characters long; at most %d are allowed", rtFieldTopicPrefix, cfg.topicPrefix, len(cfg.topicPrefix), kafkaMaxTopicLen-16)
	}

	if cfg.fallbackTopic, err = conf.FieldString(rtFieldFallbackTopic); err != nil {
		return cfg, err
	}
	if err := validateTopic(cfg.fallbackTopic); err != nil {
		return cfg, fmt.Errorf("%s: %w", rtFieldFallbackTopic, err)
	}

	raw, err := conf.FieldStringMap(rtFieldTopics)
	if err != nil {
		return cfg, err
	}
	cfg.topics = make(map[string]string, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic error messages
	seen := make(map[string]string, len(raw))
	for _, k := range keys {
		if err := validateTopic(raw[k]); err != nil {
			return cfg, fmt.Errorf("%s.%s: %w", rtFieldTopics, k, err)
		}
		lk := strings.ToLower(strings.TrimSpace(k))
		if lk == "" {
			return cfg, fmt.Errorf("%s: a key is empty; keys are workload names", rtFieldTopics)
		}
		if prev, dup := seen[lk]; dup {
			return cfg, fmt.Errorf("%s: keys %q and %q name the same workload (keys are case-insensitive)", rtFieldTopics, prev, k)
		}
		seen[lk] = k
		cfg.topics[lk] = raw[k]
	}
	return cfg, nil
}

// validateTopic applies Kafka's own rules (org.apache.kafka.common.internals.Topic.validate).
func validateTopic(t string) error {
	switch {
	case t == "":
		return errors.New("topic name is empty")
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a valid Kafka topic name", t)
	case len(t) > kafkaMaxTopicLen:
		return fmt.Errorf("%q is %d characters long; Kafka allows at most %d", t, len(t), kafkaMaxTopicLen)
	}
	if i := strings.IndexFunc(t, func(r rune) bool { return !isTopicRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(t[i:])
		return fmt.Errorf("%q contains %q; Kafka topic names may only contain [a-zA-Z0-9._-]", t, r)
	}
	return nil
}

func isTopicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

type router struct {
	cfg           routeConfig
	fallbackTopic any // boxed once: MetaSetMut would otherwise allocate per message

	mu    sync.RWMutex
	cache map[string]any // raw workload -> boxed topic
}

func newRouter(cfg routeConfig) *router {
	return &router{
		cfg:           cfg,
		fallbackTopic: cfg.fallbackTopic,
		cache:         make(map[string]any, 32),
	}
}

// Process sets the topic (and, when missing, the workload) metadata of msg.
func (r *router) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	workload, ok := msg.MetaGet(rtMetaWorkload)
	if !ok || workload == "" {
		workload = workloadFromRecord(msg)
		if workload != "" {
			msg.MetaSetMut(rtMetaWorkload, workload)
		}
	}
	msg.MetaSetMut(rtMetaTopic, r.topicFor(workload))
	return service.MessageBatch{msg}, nil
}

// Close does nothing.
func (r *router) Close(context.Context) error {
	return nil
}

func (r *router) topicFor(workload string) any {
	r.mu.RLock()
	t, ok := r.cache[workload]
	r.mu.RUnlock()
	if ok {
		return t
	}
	t = r.computeTopic(workload)
	r.mu.Lock()
	if len(r.cache) < rtMaxCachedTopics {
		r.cache[workload] = t
	}
	r.mu.Unlock()
	return t
}

func (r *router) computeTopic(workload string) any {
	w := strings.TrimSpace(workload)
	if w == "" {
		return r.fallbackTopic
	}
	lw := strings.ToLower(w)
	if t, ok := r.cfg.topics[lw]; ok {
		return t
	}
	return defaultTopic(r.cfg.topicPrefix, lw)
}

// defaultTopic builds prefix + sanitised workload, cut to Kafka's length limit. workload must be
// lower-cased and trimmed already.
func defaultTopic(prefix, workload string) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + len(workload))
	sb.WriteString(prefix)
	for _, c := range workload {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			sb.WriteRune(c)
		} else {
			sb.WriteByte('_')
		}
	}
	topic := sb.String()
	if len(topic) > kafkaMaxTopicLen {
		// Every byte is ASCII by now, so cutting at a byte offset is safe.
		h := fnv.New32a()
		_, _ = h.Write([]byte(workload))
		topic = fmt.Sprintf("%s_%08x", topic[:kafkaMaxTopicLen-9], h.Sum32())
	}
	// Only an empty prefix with a workload of "." or ".." gets here; Kafka refuses both names.
	if topic == "." || topic == ".." {
		topic = strings.Repeat("_", len(topic))
	}
	return topic
}

// workloadFromRecord reads only the top-level Workload field. It is the slow path: the input
// always sets o365_workload, so this runs only for records from elsewhere.
func workloadFromRecord(msg *service.Message) string {
	b, err := msg.AsBytes()
	if err != nil {
		return ""
	}
	var rec struct {
		Workload json.RawMessage
	}
	if json.Unmarshal(b, &rec) != nil {
		return ""
	}
	var w string
	if json.Unmarshal(rec.Workload, &w) != nil {
		return "" // absent, null or not a string
	}
	return strings.TrimSpace(w)
}
