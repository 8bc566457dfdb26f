package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/o365connect/o365connect/output/kafka"
)

// probeTopic is the name validated (never created) to learn whether the
// credentials may create topics when the topic depends on the record.
const probeTopic = "o365connect-check-probe"

// maxKafkaWait bounds each Kafka step: franz-go keeps redialling an
// unreachable broker until its context ends.
const maxKafkaWait = 15 * time.Second

// CheckKafka checks one kafka_franz output: that its brokers answer and
// accept the credentials, that its topics exist or may be created, and,
// where the broker reports it (KIP-430 authorized operations), that the
// credentials may write to them. It writes nothing: a produce test would put
// a record into a production topic.
func CheckKafka(ctx context.Context, out FoundKafkaOutput) []StepResult {
	prefix := "kafka"
	if out.Path != "output" {
		prefix = "kafka (" + out.Path + ")"
	}
	s := out.Settings
	brokers := strings.Join(s.SeedBrokers(), ",")
	client, err := s.NewClient(kgo.RetryTimeout(maxKafkaWait))
	if err != nil {
		return []StepResult{{Step: prefix + " connection", Status: StatusFailed, Detail: "could not create the client", Cause: err.Error(),
			Fix: "correct the kafka_franz settings named in the cause"}}
	}
	defer client.Close()
	admin := kadm.NewClient(client)

	wait := min(s.Timeout(), maxKafkaWait)
	pingCtx, cancel := context.WithTimeout(ctx, wait)
	err = client.Ping(pingCtx)
	cancel()
	if err != nil {
		return []StepResult{
			{Step: prefix + " connection", Status: StatusFailed, Detail: "no broker of " + brokers + " answered" + s.AuthSummary(),
				Cause: err.Error(),
				Fix:   "check seed_brokers (host:port of the Kafka listener this host can reach), firewalls, tls (enabled when the listener is TLS) and sasl credentials"},
			{Step: prefix + " topics", Status: StatusSkipped, Detail: "needs a connection"},
			{Step: prefix + " write permission", Status: StatusSkipped, Detail: "needs a connection"},
		}
	}
	results := []StepResult{{Step: prefix + " connection", Status: StatusOK, Detail: "connected to " + brokers + s.AuthSummary()}}

	topicCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	topicResult, writeTargets := checkTopics(topicCtx, admin, s)
	topicResult.Step = prefix + " topics"
	results = append(results, topicResult)
	writeResult := checkWritePermission(topicCtx, admin, writeTargets, s)
	writeResult.Step = prefix + " write permission"
	return append(results, writeResult)
}

// checkTopics returns the topic step and the existing topics whose write
// permission to check.
func checkTopics(ctx context.Context, admin *kadm.Client, s kafka.Settings) (StepResult, []string) {
	create, partitions, replication, configs := s.CreateTopics()
	topic, static := s.StaticTopic()
	if static {
		details, err := admin.ListTopics(ctx, topic)
		if err != nil {
			return StepResult{Status: StatusFailed, Detail: "listing topic " + topic + " failed", Cause: err.Error(),
				Fix: "grant the user DESCRIBE on the topic"}, nil
		}
		if d, ok := details[topic]; ok && d.Err == nil {
			return StepResult{Status: StatusOK, Detail: fmt.Sprintf("topic %s exists (%d partitions)", topic, len(d.Partitions))}, []string{topic}
		}
		if !create {
			return StepResult{Status: StatusFailed, Detail: "topic " + topic + " does not exist",
				Cause: "create_topics is off, and the broker does not know the topic",
				Fix:   "create the topic (kafka-topics.sh --create --topic " + topic + "), or set create_topics.enabled: true"}, nil
		}
		return validateCreate(ctx, admin, partitions, replication, configs, topic, "topic "+topic+" does not exist yet; the output may create it")
	}
	details, err := admin.ListTopics(ctx)
	if err != nil {
		return StepResult{Status: StatusFailed, Detail: "listing topics failed", Cause: err.Error(), Fix: "grant the user DESCRIBE on the topics"}, nil
	}
	existing := details.Names()
	if !create {
		return StepResult{Status: StatusWarn,
			Detail: fmt.Sprintf("the topic is chosen per record (%d topics exist); create_topics is off, so every routed topic must already exist: not verifiable before records arrive", len(existing))}, existing
	}
	result, _ := validateCreate(ctx, admin, partitions, replication, configs, probeTopic,
		fmt.Sprintf("the topic is chosen per record (%d topics exist); the credentials may create new ones (validated with %s, nothing created)", len(existing), probeTopic))
	return result, existing
}

// validateCreate asks the broker to validate, not perform, a topic creation.
func validateCreate(ctx context.Context, admin *kadm.Client, partitions int32, replication int16, configs map[string]*string, topic, okDetail string) (StepResult, []string) {
	resps, err := admin.ValidateCreateTopics(ctx, partitions, replication, configs, topic)
	if err == nil {
		var r kadm.CreateTopicResponse
		if r, err = resps.On(topic, nil); err == nil {
			err = r.Err
			if err != nil && r.ErrMessage != "" {
				err = fmt.Errorf("%w (%s)", err, r.ErrMessage)
			}
		}
	}
	switch {
	case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
		return StepResult{Status: StatusOK, Detail: okDetail}, nil
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return StepResult{Status: StatusFailed, Detail: "the credentials may not create topics", Cause: err.Error(),
			Fix: "grant the user CREATE on the cluster or on the topic prefix, or create the topics beforehand and turn create_topics off"}, nil
	case errors.Is(err, kerr.InvalidReplicationFactor):
		return StepResult{Status: StatusFailed, Detail: "topic creation would fail", Cause: err.Error(),
			Fix: "set create_topics.replication_factor to at most the number of brokers"}, nil
	}
	return StepResult{Status: StatusFailed, Detail: "topic creation would fail", Cause: err.Error(),
		Fix: "correct create_topics (partitions, replication_factor, configs) or create the topics beforehand"}, nil
}

// checkWritePermission reads the operations the broker says the credentials
// may perform on each topic (Metadata with authorized operations, KIP-430).
// Brokers that do not report them leave the permission unverified.
func checkWritePermission(ctx context.Context, admin *kadm.Client, topics []string, s kafka.Settings) StepResult {
	if len(topics) == 0 {
		return StepResult{Status: StatusWarn, Detail: "not verified: no existing topic to ask about"}
	}
	details, err := admin.ListTopics(kadm.WithAuthorizedOps(ctx), topics...)
	if err != nil {
		return StepResult{Status: StatusWarn, Detail: "not verified: asking for authorized operations failed: " + err.Error()}
	}
	var reported, denied []string
	for _, name := range details.Names() {
		ops := details[name].AuthorizedOperations
		if len(ops) == 0 {
			continue
		}
		reported = append(reported, name)
		if !slices.Contains(ops, kmsg.ACLOperationWrite) && !slices.Contains(ops, kmsg.ACLOperationAll) {
			denied = append(denied, name)
		}
	}
	_, static := s.StaticTopic()
	switch {
	case len(reported) == 0:
		return StepResult{Status: StatusWarn,
			Detail: "not verified: the broker does not report authorized operations (KIP-430); the first write will show it"}
	case len(denied) > 0 && static:
		return StepResult{Status: StatusFailed, Detail: "the credentials may not write to " + denied[0],
			Cause: "the broker reports no WRITE permission on the topic for this user",
			Fix:   "grant the user WRITE (and DESCRIBE) on the topic, e.g. kafka-acls.sh --add --allow-principal User:<user> --operation Write --topic " + denied[0]}
	case len(denied) > 0:
		shown := denied[:min(len(denied), 5)]
		return StepResult{Status: StatusWarn,
			Detail: fmt.Sprintf("WRITE is allowed on %d of %d existing topics; not on %s (fine if the pipeline never routes there)", len(reported)-len(denied), len(reported), strings.Join(shown, ", "))}
	}
	return StepResult{Status: StatusOK, Detail: fmt.Sprintf("WRITE is allowed on %d topic(s), as reported by the broker", len(reported))}
}
