package input

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input/o365api"
)

var cursorEpoch = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func blobItem(id string, created time.Time) o365api.ContentItem {
	return o365api.ContentItem{
		ContentType:       o365api.ContentTypeExchange,
		ContentID:         id,
		ContentURI:        "https://manage.office.com/api/v1.0/t/activity/feed/audit/" + id,
		ContentCreated:    created,
		ContentExpiration: created.Add(7 * 24 * time.Hour),
	}
}

func TestCursorOutOfOrderAcksCompleteOnlyWithContiguousPrefix(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	require.True(t, cur.admit(blobItem("b1", cursorEpoch)))
	require.False(t, cur.admit(blobItem("b1", cursorEpoch)), "a pending blob is not admitted twice")

	assert.False(t, cur.finishFetch("b1", 30), "nothing acknowledged yet")
	assert.False(t, cur.ack("b1", recordRange{20, 30}))
	assert.False(t, cur.ack("b1", recordRange{10, 20}))

	snap := cur.snapshot()
	require.Len(t, snap.Pending, 1)
	assert.Equal(t, 0, snap.Pending[0].AckedRecords, "acks beyond a gap are not persisted")

	assert.True(t, cur.ack("b1", recordRange{0, 10}), "closing the gap completes the blob")
	snap = cur.snapshot()
	assert.Empty(t, snap.Pending)
	assert.Contains(t, snap.Delivered, "b1")
	assert.False(t, cur.admit(blobItem("b1", cursorEpoch)), "a delivered blob is not admitted again")
}

func TestCursorCompletesWhenFetchEndsAfterLastAck(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	require.True(t, cur.admit(blobItem("b1", cursorEpoch)))
	assert.False(t, cur.ack("b1", recordRange{0, 5}), "the record count is unknown until the fetch ends")
	assert.True(t, cur.finishFetch("b1", 5))
}

func TestCursorEmptyBlobCompletesAtFetchEnd(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	require.True(t, cur.admit(blobItem("empty", cursorEpoch)))
	assert.True(t, cur.finishFetch("empty", 0))
}

func TestCursorUnackedWorkSurvivesRestart(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	require.True(t, cur.admit(blobItem("done", cursorEpoch)))
	require.True(t, cur.admit(blobItem("half", cursorEpoch.Add(time.Minute))))
	require.True(t, cur.admit(blobItem("none", cursorEpoch.Add(2*time.Minute))))
	cur.markListed(cursorEpoch.Add(time.Hour))

	require.False(t, cur.finishFetch("done", 2))
	require.True(t, cur.ack("done", recordRange{0, 2}))
	require.False(t, cur.ack("half", recordRange{0, 7}))

	restarted := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	jobs := restarted.restore(cur.snapshot())

	require.Len(t, jobs, 2)
	assert.Equal(t, "half", jobs[0].item.ContentID)
	assert.Equal(t, 7, jobs[0].from, "resumes after the acknowledged prefix")
	assert.Equal(t, -1, jobs[0].to)
	assert.Equal(t, "none", jobs[1].item.ContentID)
	assert.Equal(t, 0, jobs[1].from)

	assert.False(t, restarted.admit(blobItem("done", cursorEpoch)), "acknowledged blobs are not emitted again")
	assert.False(t, restarted.admit(blobItem("half", cursorEpoch.Add(time.Minute))), "restored pending blobs are not queued twice")
	assert.Equal(t, cursorEpoch.Add(time.Hour), restarted.listedThroughTime())
	assert.Equal(t, cursorEpoch, restarted.listFrom(time.Time{}), "re-lists the look-back before listed_through")
}

func TestCursorForgetsDeliveredBeyondLookback(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	old := blobItem("old", cursorEpoch)
	recent := blobItem("recent", cursorEpoch.Add(5*time.Hour))
	for _, it := range []o365api.ContentItem{old, recent} {
		require.True(t, cur.admit(it))
		require.True(t, cur.finishFetch(it.ContentID, 0))
	}
	cur.markListed(cursorEpoch.Add(6 * time.Hour))

	snap := cur.snapshot()
	assert.NotContains(t, snap.Delivered, "old", "older than listed_through - lookback - margin: never listed again")
	assert.Contains(t, snap.Delivered, "recent")
}

func TestCursorDropCountsAsDelivered(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	require.True(t, cur.admit(blobItem("gone", cursorEpoch)))
	cur.drop("gone")
	assert.Zero(t, cur.pendingCount())
	assert.False(t, cur.admit(blobItem("gone", cursorEpoch)))
}

func TestCursorFirstRunStartsAtBackfill(t *testing.T) {
	cur := newContentCursor(o365api.ContentTypeExchange, time.Hour)
	assert.Equal(t, cursorEpoch, cur.listFrom(cursorEpoch))
}

func TestCursorDeadLetterCompletesABlobOnlyWithItsEarlierRecords(t *testing.T) {
	c := newContentCursor("Audit.Exchange", time.Hour)
	item := o365api.ContentItem{ContentType: "Audit.Exchange", ContentID: "a", ContentCreated: time.Now()}
	require.True(t, c.admit(item))
	// Records 0-1 went out normally and are still in flight; the dead
	// letter stands for the rest of the blob from record 2.
	assert.False(t, c.deadLettered("a", recordRange{from: 2, to: -1}))
	assert.Equal(t, 1, c.pendingCount())
	assert.True(t, c.ack("a", recordRange{from: 0, to: 2}), "the blob completes with its last normal batch")
	assert.Zero(t, c.pendingCount())

	// A dead letter for a slice (a nacked batch that then failed) counts as
	// that range only.
	item.ContentID = "b"
	require.True(t, c.admit(item))
	assert.False(t, c.finishFetch("b", 6))
	assert.False(t, c.deadLettered("b", recordRange{from: 2, to: 4}))
	assert.False(t, c.ack("b", recordRange{from: 0, to: 2}))
	assert.True(t, c.ack("b", recordRange{from: 4, to: 6}))
}
