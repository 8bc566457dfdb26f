package input

import (
	"sort"
	"sync"
	"time"

	"github.com/o365connect/o365connect/input/o365api"
)

// contentCursor is the in-memory position of one content type. It is the only
// source of truth while the input runs: the checkpoint store is written from
// it and read only once, at start-up (re-reading it while running would
// re-emit data, foundations.md trap 2).
//
// The invariants that make a restart lose nothing:
//   - every blob with contentCreated < listedThrough has been listed and is
//     either delivered (fully acknowledged, or gone from the API) or pending;
//   - a pending blob's ackedRecords is the contiguous prefix of its records
//     that downstream acknowledged, so a restart resumes after exactly that;
//   - a nack never moves anything forward.
type contentCursor struct {
	mu sync.Mutex

	contentType string
	lookback    time.Duration

	listedThrough time.Time
	pending       map[string]*pendingBlob
	delivered     map[string]time.Time // contentId → contentCreated
	newest        time.Time            // newest contentCreated fully delivered
}

// pendingBlob tracks the acknowledgement of one blob's records.
type pendingBlob struct {
	item o365api.ContentItem

	// ackedRecords is the contiguous acknowledged prefix; ackedRanges holds
	// acknowledged ranges beyond it (start → end), since acks come out of order.
	ackedRecords int
	ackedRanges  map[int]int

	// totalRecords is -1 until a fetch has read the blob to its end.
	totalRecords int
}

// recordRange is a half-open range [from, to) of record indexes in a blob.
type recordRange struct{ from, to int }

func newContentCursor(contentType string, lookback time.Duration) *contentCursor {
	return &contentCursor{
		contentType: contentType,
		lookback:    lookback,
		pending:     map[string]*pendingBlob{},
		delivered:   map[string]time.Time{},
	}
}

// restore loads a checkpoint and returns the pending blobs to fetch again,
// each with the record index to resume from.
func (c *contentCursor) restore(cp contentCheckpoint) []fetchJob {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listedThrough = cp.ListedThrough.UTC()
	for id, created := range cp.Delivered {
		c.delivered[id] = created.UTC()
	}
	jobs := make([]fetchJob, 0, len(cp.Pending))
	for _, p := range cp.Pending {
		item := o365api.ContentItem{
			ContentType:       c.contentType,
			ContentID:         p.ContentID,
			ContentURI:        p.ContentURI,
			ContentCreated:    p.ContentCreated.UTC(),
			ContentExpiration: p.ContentExpiration.UTC(),
		}
		c.pending[p.ContentID] = &pendingBlob{item: item, ackedRecords: p.AckedRecords, ackedRanges: map[int]int{}, totalRecords: -1}
		jobs = append(jobs, fetchJob{item: item, from: p.AckedRecords, to: -1})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].item.ContentCreated.Before(jobs[j].item.ContentCreated) })
	return jobs
}

// listFrom is where the next listing starts: the trailing look-back before
// listedThrough, because content can become listable late for a window that
// was already listed. On a first run it is the configured backfill start.
func (c *contentCursor) listFrom(firstRunStart time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listedThrough.IsZero() {
		return firstRunStart
	}
	return c.listedThrough.Add(-c.lookback)
}

// listedThroughTime is the end of the last window fully listed (zero before
// the first listing of a first run).
func (c *contentCursor) listedThroughTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listedThrough
}

// admit registers a listed blob as pending unless it is already delivered or
// pending, and reports whether it is new work.
func (c *contentCursor) admit(item o365api.ContentItem) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.delivered[item.ContentID]; ok {
		return false
	}
	if _, ok := c.pending[item.ContentID]; ok {
		return false
	}
	c.pending[item.ContentID] = &pendingBlob{item: item, ackedRanges: map[int]int{}, totalRecords: -1}
	return true
}

// markListed records that every blob created before end has been admitted.
func (c *contentCursor) markListed(end time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if end.After(c.listedThrough) {
		c.listedThrough = end.UTC()
	}
}

// ack records that downstream acknowledged records [r.from, r.to) of a blob
// and reports whether the blob is now fully delivered.
func (c *contentCursor) ack(contentID string, r recordRange) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pending[contentID]
	if !ok {
		return false
	}
	return c.ackLocked(p, r)
}

// deadLettered records that a dead-letter message standing for records
// [r.from, r.to) of a blob (r.to < 0: from r.from to its end) was
// acknowledged, and reports whether the blob is now fully delivered. For
// the cursor the blob then ends at r.from: the records before it were
// emitted normally and still need their own acks.
func (c *contentCursor) deadLettered(contentID string, r recordRange) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pending[contentID]
	if !ok {
		return false
	}
	if r.to < 0 {
		p.totalRecords = r.from
		return c.completeLocked(p)
	}
	return c.ackLocked(p, r)
}

func (c *contentCursor) ackLocked(p *pendingBlob, r recordRange) bool {
	if r.from <= p.ackedRecords {
		if r.to > p.ackedRecords {
			p.ackedRecords = r.to
		}
	} else if end, seen := p.ackedRanges[r.from]; !seen || r.to > end {
		p.ackedRanges[r.from] = r.to
	}
	for {
		advanced := false
		for from, to := range p.ackedRanges {
			if from <= p.ackedRecords {
				if to > p.ackedRecords {
					p.ackedRecords = to
				}
				delete(p.ackedRanges, from)
				advanced = true
			}
		}
		if !advanced {
			break
		}
	}
	return c.completeLocked(p)
}

// finishFetch records how many records a blob holds, once a fetch has read
// it to the end, and reports whether the blob is now fully delivered.
func (c *contentCursor) finishFetch(contentID string, total int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pending[contentID]
	if !ok {
		return false
	}
	p.totalRecords = total
	return c.completeLocked(p)
}

// drop removes a blob the API no longer serves (expired or gone). It counts
// as delivered so that a re-listing does not try it again.
func (c *contentCursor) drop(contentID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pending[contentID]; ok {
		delete(c.pending, contentID)
		c.delivered[contentID] = p.item.ContentCreated
	}
}

func (c *contentCursor) completeLocked(p *pendingBlob) bool {
	if p.totalRecords < 0 || p.ackedRecords < p.totalRecords {
		return false
	}
	delete(c.pending, p.item.ContentID)
	c.delivered[p.item.ContentID] = p.item.ContentCreated
	if p.item.ContentCreated.After(c.newest) {
		c.newest = p.item.ContentCreated
	}
	return true
}

// newestDelivered is the newest contentCreated fully delivered since start.
func (c *contentCursor) newestDelivered() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newest
}

// pendingCount is how many blobs are listed but not yet fully delivered.
func (c *contentCursor) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// snapshot is the state to persist. Delivered contentIds created before the
// earliest time a future listing can reach are forgotten, which keeps the
// stored state bounded by the look-back rather than growing forever.
func (c *contentCursor) snapshot() contentCheckpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	horizon := c.listedThrough.Add(-c.lookback - forgetMargin)
	for id, created := range c.delivered {
		if created.Before(horizon) {
			delete(c.delivered, id)
		}
	}
	cp := contentCheckpoint{
		Version:       checkpointVersion,
		ListedThrough: c.listedThrough,
		Delivered:     make(map[string]time.Time, len(c.delivered)),
		Pending:       make([]pendingCheckpoint, 0, len(c.pending)),
	}
	for id, created := range c.delivered {
		cp.Delivered[id] = created
	}
	for _, p := range c.pending {
		cp.Pending = append(cp.Pending, pendingCheckpoint{
			ContentID:         p.item.ContentID,
			ContentURI:        p.item.ContentURI,
			ContentCreated:    p.item.ContentCreated,
			ContentExpiration: p.item.ContentExpiration,
			AckedRecords:      p.ackedRecords,
		})
	}
	sort.Slice(cp.Pending, func(i, j int) bool { return cp.Pending[i].ContentCreated.Before(cp.Pending[j].ContentCreated) })
	return cp
}

// forgetMargin keeps delivered contentIds a little longer than the look-back
// strictly needs, so that a listing window rounded to whole seconds on the
// wire cannot reach a blob the cursor has just forgotten.
const forgetMargin = time.Hour
