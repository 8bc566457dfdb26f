package kafka

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Settings is a validated kafka_franz configuration, for `o365connect check`.
// It is parsed by the output's own spec, so validation and defaults are the
// ones `o365connect run` applies.
type Settings struct {
	cfg *franzConfig
}

// ParseOutputYAML parses the fields of a kafka_franz output (the mapping under
// the `kafka_franz:` key, environment variables already interpolated).
func ParseOutputYAML(fieldsYAML string) (Settings, error) {
	conf, err := franzOutputSpec().ParseYAML(fieldsYAML, nil)
	if err != nil {
		return Settings{}, err
	}
	cfg, err := franzConfigFromParsed(conf)
	if err != nil {
		return Settings{}, err
	}
	return Settings{cfg: cfg}, nil
}

// SeedBrokers are the configured broker addresses.
func (s Settings) SeedBrokers() []string { return append([]string(nil), s.cfg.seedBrokers...) }

// StaticTopic is the topic when it does not depend on the message.
func (s Settings) StaticTopic() (topic string, static bool) { return s.cfg.topic.Static() }

// CreateTopics reports whether the output creates missing topics, and with
// which partition count and replication factor.
func (s Settings) CreateTopics() (enabled bool, partitions int32, replicationFactor int16, configs map[string]*string) {
	ct := s.cfg.createTopics
	return ct.enabled, ct.partitions, ct.replicationFactor, ct.configs
}

// Timeout is the output's request timeout.
func (s Settings) Timeout() time.Duration { return s.cfg.timeout }

// AuthSummary names the SASL mechanisms and users, never passwords; empty
// without SASL.
func (s Settings) AuthSummary() string { return newFranzOutput(s.cfg, nil).authSummary() }

// NewClient builds a franz-go client with the options the output uses. It
// does not dial until first used.
func (s Settings) NewClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := newFranzOutput(s.cfg, nil).clientOpts()
	if err != nil {
		return nil, err
	}
	client, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return client, nil
}
