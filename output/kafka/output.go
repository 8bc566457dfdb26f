package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// producerLinger trades a few milliseconds of latency for fuller produce requests; the audit log
// arrives in bursts of whole content blobs, so batches fill quickly anyway.
const producerLinger = 5 * time.Millisecond

// errNoTopic is the error of a message whose topic interpolates to an empty string.
var errNoTopic = errors.New("topic interpolated to an empty string")

// errHeadersChanged stops a metadata walk that finds more than the first walk counted, which
// only a concurrent writer to the message could cause.
var errHeadersChanged = errors.New("metadata changed while writing headers")

func init() {
	err := service.RegisterBatchOutput("kafka_franz", franzOutputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			var policy service.BatchPolicy
			maxInFlight, err := conf.FieldInt(kfFieldMaxInFlight)
			if err != nil {
				return nil, policy, 0, err
			}
			if maxInFlight < 1 {
				return nil, policy, 0, fmt.Errorf("%s: %d must be at least 1", kfFieldMaxInFlight, maxInFlight)
			}
			if policy, err = conf.FieldBatchPolicy(kfFieldBatching); err != nil {
				return nil, policy, 0, err
			}
			cfg, err := franzConfigFromParsed(conf)
			if err != nil {
				return nil, policy, 0, err
			}
			return newFranzOutput(cfg, mgr.Logger()), policy, maxInFlight, nil
		})
	if err != nil {
		panic(err)
	}
}

// franzOutput writes message batches to Kafka with franz-go, acknowledging a batch only once the
// broker has acknowledged every record of it.
type franzOutput struct {
	cfg *franzConfig
	log *service.Logger

	mu     sync.RWMutex
	client *kgo.Client
	admin  *kadm.Client

	// ensured holds the topic names already created (or found to exist) when create_topics is
	// on. It outlives reconnects: a topic does not disappear because our connection did.
	ensured sync.Map
}

// newFranzOutput returns an unconnected output for a validated configuration.
func newFranzOutput(cfg *franzConfig, log *service.Logger) *franzOutput {
	return &franzOutput{cfg: cfg, log: log}
}

// Connect creates the client, checks that the cluster answers (and accepts our credentials), and
// creates the static topic when create_topics is enabled.
func (o *franzOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.client != nil {
		return nil
	}

	opts, err := o.clientOpts()
	if err != nil {
		return err
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}

	// kgo.NewClient does not dial; without a ping, a wrong address or rejected SASL login would
	// only surface as a timeout on the first batch.
	pingCtx, cancel := context.WithTimeout(ctx, o.cfg.timeout)
	defer cancel()
	if err := client.Ping(pingCtx); err != nil {
		client.Close()
		return fmt.Errorf("connecting to %s %s%s: %w", kfFieldSeedBrokers, strings.Join(o.cfg.seedBrokers, ","), o.authSummary(), err)
	}
	admin := kadm.NewClient(client)

	if topic, static := o.cfg.topic.Static(); static && o.cfg.createTopics.enabled {
		if err := o.ensureTopics(pingCtx, admin, []string{topic}); err != nil {
			client.Close()
			return err
		}
	}

	o.client, o.admin = client, admin
	o.log.Debugf("kafka_franz connected to %s", strings.Join(o.cfg.seedBrokers, ","))
	return nil
}

// WriteBatch produces every message of the batch and returns nil only when the broker has
// acknowledged all of them. Messages that failed are reported through a *service.BatchError.
func (o *franzOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.RLock()
	client, admin := o.client, o.admin
	o.mu.RUnlock()
	if client == nil {
		return service.ErrNotConnected
	}

	records, errs := o.buildRecords(batch)

	if o.cfg.createTopics.enabled {
		// Bounded like a produce: a create request to an unreachable cluster must fail the
		// batch within timeout rather than hold it.
		createCtx, cancel := context.WithTimeout(ctx, o.cfg.timeout)
		err := o.ensureTopics(createCtx, admin, recordTopics(records))
		cancel()
		if err != nil {
			return err
		}
	}

	produceCtx, cancel := context.WithTimeout(ctx, o.cfg.timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, rec := range records {
		if rec == nil {
			continue
		}
		wg.Add(1)
		client.Produce(produceCtx, rec, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errs[i] = o.produceError(r, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	select {
	case <-done:
	case <-produceCtx.Done():
		// franz-go evaluates record timeouts and contexts only when it writes a request or
		// reads a response, so with every broker down the records stay buffered and their
		// promises never run. Dropping the client fails them (ErrClientClosed) and makes the
		// next WriteBatch return ErrNotConnected, so Benthos reconnects with backoff and the
		// input redelivers this batch: at-least-once, never an endless wait.
		o.dropClient(client)
		<-done
	}
	note := ""
	if produceCtx.Err() != nil && ctx.Err() == nil {
		note = fmt.Sprintf("no acknowledgement within %s %s, reconnecting: ", kfFieldTimeout, o.cfg.timeout)
	}
	return batchError(batch, errs, note)
}

// Close closes the client; records still buffered fail their batch. Safe to call more than once.
func (o *franzOutput) Close(context.Context) error {
	o.mu.Lock()
	client := o.client
	o.client, o.admin = nil, nil
	o.mu.Unlock()
	if client != nil {
		client.Close()
	}
	return nil
}

// authSummary names the SASL mechanisms and users (never passwords) for connect errors: some
// brokers answer a rejected login by closing the connection, which alone reads as a bare EOF.
func (o *franzOutput) authSummary() string {
	if len(o.cfg.sasl) == 0 {
		return ""
	}
	parts := make([]string, len(o.cfg.sasl))
	for i, s := range o.cfg.sasl {
		parts[i] = s.mechanism + " as " + s.username
	}
	return " with SASL " + strings.Join(parts, ", ")
}

// dropClient closes client and, unless Close or another writer got there first, forgets it.
func (o *franzOutput) dropClient(client *kgo.Client) {
	o.mu.Lock()
	if o.client == client {
		o.client, o.admin = nil, nil
	}
	o.mu.Unlock()
	client.Close()
}

func (o *franzOutput) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.cfg.seedBrokers...),
		kgo.ClientID(o.cfg.clientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(producerLinger),
		kgo.ProducerBatchMaxBytes(o.cfg.maxMessageBytes),
		kgo.RecordDeliveryTimeout(o.cfg.timeout),
		kgo.WithLogger(kgoLogger{o.log}),
	}
	if !o.cfg.idempotentWrite {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.cfg.compression != nil {
		opts = append(opts, kgo.ProducerBatchCompression(*o.cfg.compression))
	}
	switch o.cfg.partitioner {
	case partRoundRobin:
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	case partLeastBackup:
		opts = append(opts, kgo.RecordPartitioner(kgo.LeastBackupPartitioner()))
	case partManual:
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	default:
		// A nil hasher is Kafka's murmur2, so keys land where Java producers put them.
		opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	}
	if o.cfg.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(o.cfg.tls))
	}
	if len(o.cfg.sasl) > 0 {
		mechs := make([]sasl.Mechanism, 0, len(o.cfg.sasl))
		for _, s := range o.cfg.sasl {
			switch s.mechanism {
			case saslPlain:
				mechs = append(mechs, plain.Auth{User: s.username, Pass: s.password}.AsMechanism())
			case saslScramSHA256:
				mechs = append(mechs, scram.Auth{User: s.username, Pass: s.password}.AsSha256Mechanism())
			case saslScramSHA512:
				mechs = append(mechs, scram.Auth{User: s.username, Pass: s.password}.AsSha512Mechanism())
			default:
				return nil, fmt.Errorf("%s: unsupported mechanism %q", kfFieldSASL, s.mechanism)
			}
		}
		opts = append(opts, kgo.SASL(mechs...))
	}
	return opts, nil
}

// buildRecords turns each message into a record. A message that cannot become a record leaves a
// nil record and its error at the same index, so the rest of the batch is still produced and
// only that message is reported failed. The records of a batch share one allocation.
func (o *franzOutput) buildRecords(batch service.MessageBatch) ([]*kgo.Record, []error) {
	records := make([]*kgo.Record, len(batch))
	errs := make([]error, len(batch))
	slab := make([]kgo.Record, len(batch))
	for i, msg := range batch {
		if errs[i] = o.buildRecord(msg, &slab[i]); errs[i] == nil {
			records[i] = &slab[i]
		}
	}
	return records, errs
}

func (o *franzOutput) buildRecord(msg *service.Message, rec *kgo.Record) error {
	topic, err := o.topic(msg)
	if err != nil {
		return fmt.Errorf("interpolating %s: %w", kfFieldTopic, err)
	}
	if topic == "" {
		return errNoTopic
	}
	value, err := msg.AsBytes()
	if err != nil {
		return fmt.Errorf("reading message: %w", err)
	}
	rec.Topic, rec.Value = topic, value
	size := len(value)

	// A key read straight from metadata is copied into the headers' buffer.
	var metaKey string
	if o.cfg.keyMeta != "" {
		metaKey, _ = msg.MetaGet(o.cfg.keyMeta)
	}
	if o.cfg.key != nil && metaKey == "" {
		key, err := o.cfg.key.TryBytes(msg)
		if err != nil {
			return fmt.Errorf("interpolating %s: %w", kfFieldKey, err)
		}
		if len(key) > 0 {
			rec.Key = key
			size += len(key)
		}
	}

	if o.cfg.partition != nil {
		raw, err := o.cfg.partition.TryString(msg)
		if err != nil {
			return fmt.Errorf("interpolating %s: %w", kfFieldPartition, err)
		}
		p, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 32)
		if err != nil || p < 0 {
			return fmt.Errorf("%s: %q is not a partition number", kfFieldPartition, raw)
		}
		rec.Partition = int32(p)
	}

	size += o.setKeyAndHeaders(msg, rec, metaKey)

	if size > int(o.cfg.maxMessageBytes) {
		return fmt.Errorf("record for topic %s is %d bytes, larger than %s %d", topic, size, kfFieldMaxMessageBytes, o.cfg.maxMessageBytes)
	}
	return nil
}

// topic reads a topic that is only a metadata reference straight from the metadata, and
// interpolates anything else (or a missing key, which Bloblang renders as "null").
func (o *franzOutput) topic(msg *service.Message) (string, error) {
	if o.cfg.topicMeta != "" {
		if v, ok := msg.MetaGet(o.cfg.topicMeta); ok {
			return v, nil
		}
	}
	return o.cfg.topic.TryString(msg)
}

// setKeyAndHeaders sets key (when not empty) and the selected metadata as headers, all in one
// buffer: a record costs two allocations here however many headers it has. It returns their size.
func (o *franzOutput) setKeyAndHeaders(msg *service.Message, rec *kgo.Record, key string) int {
	n, size := 0, len(key)
	if !o.cfg.metadata.IsEmpty() {
		_ = o.cfg.metadata.Walk(msg, func(_, v string) error {
			n++
			size += len(v)
			return nil
		})
	}
	if size == 0 && n == 0 {
		return 0
	}
	buf := make([]byte, 0, size)
	total := 0
	if key != "" {
		buf = append(buf, key...)
		rec.Key = buf[:len(key):len(key)]
		total += len(key)
	}
	if n == 0 {
		return total
	}
	rec.Headers = make([]kgo.RecordHeader, 0, n)
	_ = o.cfg.metadata.Walk(msg, func(k, v string) error {
		if len(rec.Headers) == n || len(buf)+len(v) > cap(buf) {
			return errHeadersChanged
		}
		start := len(buf)
		buf = append(buf, v...)
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: buf[start:len(buf):len(buf)]})
		total += len(k) + len(v)
		return nil
	})
	return total
}

// ensureTopics creates the given topics unless already ensured. Concurrent writers may race to
// create the same topic; TOPIC_ALREADY_EXISTS is success for both.
func (o *franzOutput) ensureTopics(ctx context.Context, admin *kadm.Client, topics []string) error {
	var missing []string
	for _, t := range topics {
		if _, ok := o.ensured.Load(t); !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ct := o.cfg.createTopics
	resps, err := admin.CreateTopics(ctx, ct.partitions, ct.replicationFactor, ct.configs, missing...)
	if err != nil {
		return fmt.Errorf("creating topics %s: %w", strings.Join(missing, ","), err)
	}
	for _, r := range resps.Sorted() {
		switch {
		case r.Err == nil:
			o.log.Debugf("kafka_franz created topic %s", r.Topic)
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
		default:
			msg := ""
			if r.ErrMessage != "" {
				msg = " (" + r.ErrMessage + ")"
			}
			return fmt.Errorf("creating topic %s%s: %w", r.Topic, msg, r.Err)
		}
		o.ensured.Store(r.Topic, struct{}{})
	}
	return nil
}

func (o *franzOutput) produceError(r *kgo.Record, err error) error {
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return fmt.Errorf("producing to %s: record of %d bytes exceeds the %s %d or the broker's message.max.bytes: %w",
			r.Topic, len(r.Key)+len(r.Value), kfFieldMaxMessageBytes, o.cfg.maxMessageBytes, err)
	}
	return fmt.Errorf("producing to %s: %w", r.Topic, err)
}

// recordTopics returns the distinct topics of records, skipping the nil records of failed messages.
func recordTopics(records []*kgo.Record) []string {
	var topics []string
	for _, r := range records {
		if r != nil && !slices.Contains(topics, r.Topic) {
			topics = append(topics, r.Topic)
		}
	}
	return topics
}

// batchError returns nil when errs holds no error, and otherwise a BatchError that fails exactly
// the messages whose error is set, so that only those are retried or routed to a fallback. The
// note prefixes the headline: Benthos unwraps a BatchError from any wrapping, so context that
// must reach the logs has to live inside it.
func batchError(batch service.MessageBatch, errs []error, note string) error {
	var first error
	failed := 0
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if first == nil {
		return nil
	}
	bErr := service.NewBatchError(batch, fmt.Errorf("%s%d of %d messages not written: %w", note, failed, len(batch), first))
	for i, err := range errs {
		if err != nil {
			bErr = bErr.Failed(i, err)
		}
	}
	return bErr
}

// kgoLogger forwards franz-go's logs to Benthos one level lower: franz-go warns about events that
// are routine for a long-lived producer (idle connections closed by the broker, metadata
// refreshes), and normal operation must log nothing above debug.
type kgoLogger struct{ l *service.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if k.l == nil {
		return
	}
	l := k.l.With(keyvals...)
	switch level {
	case kgo.LogLevelError:
		l.Warn(msg)
	default:
		l.Debug(msg)
	}
}
