package processor

import "testing"

// The topic sanitiser must turn any workload into a name Kafka accepts.
func FuzzRouteTopic(f *testing.F) {
	for _, s := range []string{"Exchange", "Dynamics 365", "", " ", ".", "..", "MicrosoftTeams", "ü", "\xff", string(make([]byte, 300))} {
		f.Add("o365.", s)
	}
	f.Add("", ".")
	f.Fuzz(func(t *testing.T, prefix, workload string) {
		if validatePrefix(prefix) != nil {
			return
		}
		r := newRouter(routeConfig{topicPrefix: prefix, topics: map[string]string{}, fallbackTopic: "o365.unknown"})
		topic, _ := r.topicFor(workload).(string)
		if err := validateTopic(topic); err != nil {
			t.Fatalf("workload %q with prefix %q gives %q: %v", workload, prefix, topic, err)
		}
	})
}

// validatePrefix mirrors the config checks on topic_prefix.
func validatePrefix(prefix string) error {
	if len(prefix) > kafkaMaxTopicLen-16 {
		return errPrefix
	}
	for _, r := range prefix {
		if !isTopicRune(r) {
			return errPrefix
		}
	}
	return nil
}

var errPrefix = errorString("invalid prefix")

type errorString string

func (e errorString) Error() string { return string(e) }
