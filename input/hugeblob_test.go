package input

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
)

func TestCollectHugeBlobIsEmittedAsBoundedBatches(t *testing.T) {
	const hugeRecords = 3000
	sim := simTenant(t, o365sim.Config{Seed: 11, History: 2 * time.Hour, HugeBlobRecords: hugeRecords, HugeBlobContentType: o365api.ContentTypeGeneral})
	var hugeID string
	for _, b := range sim.Blobs(o365api.ContentTypeGeneral) {
		if b.Records == hugeRecords {
			hugeID = b.ContentID
		}
	}
	require.NotEmpty(t, hugeID, "the simulator holds a blob of %d records", hugeRecords)
	want := sim.ExpectedRecords()

	var (
		mu          sync.Mutex
		hugeBatches []int
	)
	got := newReceived()
	startPipeline(t, sim, t.TempDir(), "max_batch_records: 400\nmax_batch_bytes: 1048576\n", func(_ context.Context, b service.MessageBatch) error {
		if id, _ := b[0].MetaGet(MetaContentID); id == hugeID {
			mu.Lock()
			hugeBatches = append(hugeBatches, len(b))
			mu.Unlock()
		}
		got.add(b)
		return nil
	})
	waitFor(t, "every record", time.Minute, func() bool { u, _ := got.counts(); return u >= len(want) })

	mu.Lock()
	defer mu.Unlock()
	sum := 0
	for _, n := range hugeBatches {
		assert.LessOrEqual(t, n, 400, "no batch exceeds max_batch_records")
		sum += n
	}
	assert.Equal(t, hugeRecords, sum, "the huge blob arrives whole, across batches")
	assert.GreaterOrEqual(t, len(hugeBatches), hugeRecords/400, "a huge blob is split into several batches")
	_, total := got.counts()
	assert.Equal(t, len(want), total)
}
