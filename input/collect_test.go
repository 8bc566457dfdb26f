package input

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
	_ "github.com/o365connect/o365connect/resources"
)

// simTenant starts a simulated tenant with a few hours of content.
func simTenant(t *testing.T, cfg o365sim.Config) *o365sim.Server {
	t.Helper()
	if cfg.History == 0 {
		cfg.History = 6 * time.Hour
	}
	if cfg.BlobInterval == 0 {
		cfg.BlobInterval = 30 * time.Minute
	}
	sim, err := o365sim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, sim.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// received collects what a pipeline delivered, keyed by record Id.
type received struct {
	mu      sync.Mutex
	records map[string][]map[string]string // Id → metadata of each delivery
	total   int
}

func newReceived() *received { return &received{records: map[string][]map[string]string{}} }

func (r *received) add(batch service.MessageBatch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, msg := range batch {
		meta := map[string]string{}
		_ = msg.MetaWalkMut(func(k string, v any) error {
			if s, ok := v.(string); ok {
				meta[k] = s
			}
			return nil
		})
		raw, _ := msg.AsBytes()
		meta["raw"] = string(raw)
		id := meta[MetaRecordID]
		r.records[id] = append(r.records[id], meta)
		r.total++
	}
}

func (r *received) counts() (unique, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records), r.total
}

// pipeline runs the input against sim with a checkpoint folder, handing
// every delivered batch to consume (an error there nacks the batch).
type pipeline struct {
	stream *service.Stream
	done   chan error
}

func startPipeline(t *testing.T, sim *o365sim.Server, stateDir, extraYAML string, consume func(context.Context, service.MessageBatch) error) *pipeline {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, sim.CACertPEM(), 0o600))

	builder := service.NewStreamBuilder()
	require.NoError(t, builder.SetLoggerYAML(`level: WARN`))
	require.NoError(t, builder.AddCacheYAML(`
label: o365_checkpoints
checkpoint_file:
  directory: `+stateDir))
	require.NoError(t, builder.AddInputYAML(`
office365_activity:
  tenant_id: `+sim.TenantID()+`
  client_id: `+sim.ClientID()+`
  client_secret: `+sim.ClientSecret()+`
  api_url: `+sim.URL()+`
  login_url: `+sim.URL()+`
  poll_interval: 1s
  lookback: 1h
  tls:
    enabled: true
    root_cas_file: `+caFile+`
`+indent(extraYAML)))
	require.NoError(t, builder.AddBatchConsumerFunc(consume))
	stream, err := builder.Build()
	require.NoError(t, err)

	p := &pipeline{stream: stream, done: make(chan error, 1)}
	go func() { p.done <- stream.Run(context.Background()) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func indent(yaml string) string {
	if yaml == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimSuffix(yaml, "\n"), "\n", "\n  ") + "\n"
}

func (p *pipeline) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.stream.Stop(ctx); err != nil && !strings.Contains(err.Error(), "not running") {
		t.Errorf("stopping the stream: %v", err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCollectEveryRecordExactlyOnceWithMetadata(t *testing.T) {
	sim := simTenant(t, o365sim.Config{Seed: 7})
	want := sim.ExpectedRecords()
	require.NotEmpty(t, want)

	got := newReceived()
	startPipeline(t, sim, t.TempDir(), "", func(_ context.Context, b service.MessageBatch) error {
		got.add(b)
		return nil
	})
	waitFor(t, "every record", time.Minute, func() bool { u, _ := got.counts(); return u >= len(want) })
	// Let a few more polls run: re-listing the look-back must not re-emit.
	time.Sleep(2500 * time.Millisecond)

	unique, total := got.counts()
	assert.Equal(t, len(want), unique)
	assert.Equal(t, len(want), total, "no record delivered twice")

	contentTypes := map[string]int{}
	for _, exp := range want {
		deliveries := got.records[exp.ID]
		require.Len(t, deliveries, 1, "record %s", exp.ID)
		meta := deliveries[0]
		assert.Equal(t, sim.TenantID(), meta[MetaTenantID])
		assert.Equal(t, exp.ContentType, meta[MetaContentType])
		assert.Equal(t, exp.ContentID, meta[MetaContentID])
		assert.Equal(t, exp.Workload, meta[MetaWorkload])
		assert.Equal(t, exp.Operation, meta[MetaOperation])
		assert.NotEmpty(t, meta[MetaRecordType])
		created, err := time.Parse(time.RFC3339, meta[MetaContentCreated])
		assert.NoError(t, err)
		assert.Equal(t, time.UTC, created.Location())
		creation, err := time.Parse(time.RFC3339, meta[MetaCreationTime])
		if assert.NoError(t, err) {
			assert.True(t, creation.Equal(exp.CreationTime), "CreationTime %s vs %s", creation, exp.CreationTime)
		}
		assert.Contains(t, meta["raw"], `"Id":"`+exp.ID+`"`, "content is the original record")
		contentTypes[exp.ContentType]++
	}
	assert.Len(t, contentTypes, len(o365api.AllContentTypes), "every content type flowed")
}

func TestCollectLateListedBlobIsDelivered(t *testing.T) {
	sim := simTenant(t, o365sim.Config{Seed: 8, History: 2 * time.Hour})
	got := newReceived()
	startPipeline(t, sim, t.TempDir(), "", func(_ context.Context, b service.MessageBatch) error {
		got.add(b)
		return nil
	})
	first := len(sim.ExpectedRecords())
	waitFor(t, "the initial backlog", time.Minute, func() bool { u, _ := got.counts(); return u >= first })

	// A blob created 20 minutes ago, in a window already listed, becomes
	// listable only now: the trailing look-back must find it.
	late := sim.AddBlob(o365api.ContentTypeSharePoint, time.Now().Add(-20*time.Minute), 5)
	all := sim.ExpectedRecords()
	require.Greater(t, len(all), first)
	waitFor(t, "the late blob", 30*time.Second, func() bool { u, _ := got.counts(); return u >= len(all) })

	got.mu.Lock()
	defer got.mu.Unlock()
	n := 0
	for _, deliveries := range got.records {
		if deliveries[0][MetaContentID] == late.ContentID {
			n++
		}
	}
	assert.Equal(t, 5, n)
	assert.Equal(t, len(all), got.total, "nothing delivered twice")
}

func TestCollectRestartResumesWithoutLossOrRepeat(t *testing.T) {
	sim := simTenant(t, o365sim.Config{Seed: 9})
	want := sim.ExpectedRecords()
	stateDir := t.TempDir()

	got := newReceived()
	var stopOnce sync.Once
	halfway := make(chan struct{})
	first := startPipeline(t, sim, stateDir, "max_concurrent_fetches: 2\n", func(_ context.Context, b service.MessageBatch) error {
		got.add(b)
		if u, _ := got.counts(); u >= len(want)/2 {
			stopOnce.Do(func() { close(halfway) })
		}
		return nil
	})
	<-halfway
	first.stop(t)
	afterFirst, _ := got.counts()
	require.Less(t, afterFirst, len(want), "the first run must stop part-way for this test to mean anything")

	startPipeline(t, sim, stateDir, "", func(_ context.Context, b service.MessageBatch) error {
		got.add(b)
		return nil
	})
	waitFor(t, "every record after the restart", time.Minute, func() bool { u, _ := got.counts(); return u >= len(want) })
	time.Sleep(1500 * time.Millisecond)

	unique, total := got.counts()
	assert.Equal(t, len(want), unique, "no record lost across the restart")
	assert.Equal(t, len(want), total, "a graceful stop persists every ack: nothing re-emitted")
}

func TestCollectNackedBatchesAreRedelivered(t *testing.T) {
	sim := simTenant(t, o365sim.Config{Seed: 10, History: 3 * time.Hour})
	want := sim.ExpectedRecords()
	got := newReceived()
	startPipeline(t, sim, t.TempDir(), "auto_replay_nacks: false\n", refuseEachOnce(got, MetaContentID))
	waitFor(t, "every record after the nacks", time.Minute, func() bool { u, _ := got.counts(); return u >= len(want) })
	unique, total := got.counts()
	assert.Equal(t, len(want), unique)
	assert.Equal(t, len(want), total)
}

func TestCollectNacksNeverReachTheCheckpoint(t *testing.T) {
	sim := simTenant(t, o365sim.Config{Seed: 12, History: 3 * time.Hour})
	want := sim.ExpectedRecords()
	stateDir := t.TempDir()
	got := newReceived()
	var accepting atomic.Bool
	var nacks atomic.Int64
	startPipeline(t, sim, stateDir, "auto_replay_nacks: false\n", func(_ context.Context, b service.MessageBatch) error {
		if !accepting.Load() {
			nacks.Add(1)
			return errors.New("downstream refused the batch")
		}
		got.add(b)
		return nil
	})
	waitFor(t, "batches refused downstream", 30*time.Second, func() bool { return nacks.Load() >= 20 })
	time.Sleep(1500 * time.Millisecond) // polls and listing windows get checkpointed meanwhile

	files, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	written := 0
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(stateDir, f.Name()))
		require.NoError(t, err)
		var cp contentCheckpoint
		if json.Unmarshal(raw, &cp) != nil || cp.Version != checkpointVersion {
			continue // a temp file of the cache, not a checkpoint
		}
		written++
		assert.Empty(t, cp.Delivered, "%s records a blob as delivered while every batch was nacked", f.Name())
		for _, p := range cp.Pending {
			assert.Zero(t, p.AckedRecords, "%s records acknowledged records of %s", f.Name(), p.ContentID)
		}
	}
	require.Positive(t, written, "checkpoints were written (listing progress), so their content was checked")

	accepting.Store(true)
	waitFor(t, "every record once downstream accepts", time.Minute, func() bool { u, _ := got.counts(); return u >= len(want) })
}

// refuseEachOnce returns a consumer that nacks the first batch it sees for
// each value of the metadata key metaKey, and collects every later batch.
func refuseEachOnce(got *received, metaKey string) func(context.Context, service.MessageBatch) error {
	var mu sync.Mutex
	refused := map[string]bool{}
	return func(_ context.Context, b service.MessageBatch) error {
		v, _ := b[0].MetaGet(metaKey)
		mu.Lock()
		first := !refused[v]
		refused[v] = true
		mu.Unlock()
		if first {
			return errors.New("downstream refused the batch")
		}
		got.add(b)
		return nil
	}
}
