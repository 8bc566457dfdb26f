package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchKafka reads what a benchmark run wrote, through the broker's own
// offsets and timestamps, never through the collector's word.
type benchKafka struct {
	brokers []string
	client  *kgo.Client
	admin   *kadm.Client
}

func newBenchKafka(brokers string) (*benchKafka, error) {
	seeds := strings.Split(brokers, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("reaching kafka at %s: %w", brokers, err)
	}
	return &benchKafka{brokers: seeds, client: cl, admin: kadm.NewClient(cl)}, nil
}

func (k *benchKafka) close() { k.client.Close() }

// topics lists the topics whose name starts with prefix.
func (k *benchKafka) topics(ctx context.Context, prefix string) ([]string, error) {
	all, err := k.admin.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var names []string
	for _, name := range all.Names() {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names, nil
}

// endOffsets returns the end offset of every partition of the prefix's
// topics, and their sum: the number of records written, as the topics are
// new and hold no transaction markers.
func (k *benchKafka) endOffsets(ctx context.Context, prefix string) (map[string]map[int32]int64, int64, error) {
	names, err := k.topics(ctx, prefix)
	if err != nil || len(names) == 0 {
		return nil, 0, err
	}
	listed, err := k.admin.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing end offsets: %w", err)
	}
	if err := listed.Error(); err != nil {
		return nil, 0, fmt.Errorf("listing end offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	var sum int64
	listed.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
		sum += o.Offset
	})
	return out, sum, nil
}

// useLogAppendTime makes the broker stamp each record with the time it
// appended it: with acks=all on one node, the time it acknowledged it.
func (k *benchKafka) useLogAppendTime(ctx context.Context, topics []string) error {
	resps, err := k.admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")},
	}, topics...)
	if err != nil {
		return fmt.Errorf("setting LogAppendTime: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("setting LogAppendTime on %s: %w", r.Name, r.Err)
		}
	}
	return nil
}

func (k *benchKafka) deleteTopics(ctx context.Context, prefix string) error {
	names, err := k.topics(ctx, prefix)
	if err != nil || len(names) == 0 {
		return err
	}
	if _, err := k.admin.DeleteTopics(ctx, names...); err != nil {
		return fmt.Errorf("deleting topics %s*: %w", prefix, err)
	}
	return nil
}

// blobArrivals consumes from the given offsets and keeps, per content ID
// (the o365_content_id header), how many records arrived and the newest
// broker timestamp among them.
type blobArrivals struct {
	mu     sync.Mutex
	count  map[string]int
	newest map[string]time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func (k *benchKafka) consumeFrom(offsets map[string]map[int32]int64) (*blobArrivals, error) {
	parts := map[string]map[int32]kgo.Offset{}
	for t, ps := range offsets {
		parts[t] = map[int32]kgo.Offset{}
		for p, o := range ps {
			parts[t][p] = kgo.NewOffset().At(o)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumePartitions(parts), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("creating consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &blobArrivals{count: map[string]int{}, newest: map[string]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			fetches.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key != "o365_content_id" {
						continue
					}
					id := string(h.Value)
					a.mu.Lock()
					a.count[id]++
					if r.Timestamp.After(a.newest[id]) {
						a.newest[id] = r.Timestamp
					}
					a.mu.Unlock()
				}
			})
		}
	}()
	return a, nil
}

func (a *blobArrivals) get(id string) (int, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.count[id], a.newest[id]
}

func (a *blobArrivals) stop() {
	a.cancel()
	<-a.done
}
