package input

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

const (
	// dedupeHorizon is how long a record Id is remembered. Blobs stay
	// listable for 7 days (management-api.md §5) and a repeat can only come
	// in a blob listed within that time; a day of margin covers records
	// whose CreationTime is older than the blob holding them.
	dedupeHorizon = 8 * 24 * time.Hour

	// dedupeBucket is the span of CreationTime one bucket covers: whole
	// buckets expire at once, so expiry costs nothing per record.
	dedupeBucket = time.Hour

	defaultDedupeMaxEntries = 1_000_000
)

// dedupeKey is a record Id in 16 bytes: the GUID itself when the Id is one
// (it always is in the documented schema), otherwise a hash of it.
type dedupeKey [16]byte

// dedupeEntry is one record to remember: its key and its bucket.
type dedupeEntry struct {
	key    dedupeKey
	bucket int64
}

func newDedupeEntry(id string, creation time.Time) dedupeEntry {
	return dedupeEntry{key: parseDedupeKey(id), bucket: creation.Unix() / int64(dedupeBucket/time.Second)}
}

func parseDedupeKey(id string) dedupeKey {
	var k dedupeKey
	if len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' {
		var hexDigits [32]byte
		copy(hexDigits[0:8], id[0:8])
		copy(hexDigits[8:12], id[9:13])
		copy(hexDigits[12:16], id[14:18])
		copy(hexDigits[16:20], id[19:23])
		copy(hexDigits[20:32], id[24:36])
		// Upper- and lower-case spellings of one GUID are one record.
		for i, c := range hexDigits {
			if c >= 'A' && c <= 'F' {
				hexDigits[i] = c + 'a' - 'A'
			}
		}
		if _, err := hex.Decode(k[:], hexDigits[:]); err == nil {
			return k
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:])
	return k
}

// deduper remembers the Ids of records emitted recently so that a record
// repeated in another blob (by design, management-api.md §3.6) is dropped.
// Memory is bounded twice: buckets older than dedupeHorizon are dropped
// whole, and past maxEntries the oldest bucket goes early (counted, since a
// repeat of an evicted record is then delivered again, never lost).
type deduper struct {
	maxEntries int

	mu        sync.Mutex
	buckets   map[int64]map[dedupeKey]struct{}
	entries   int
	lastSweep int64 // the expiry bucket of the last sweep
}

func newDeduper(maxEntries int) *deduper {
	return &deduper{maxEntries: maxEntries, buckets: map[int64]map[dedupeKey]struct{}{}}
}

// claim remembers e and reports whether it was new; false means the record
// is a repeat to drop. Checking and remembering are one step so that two
// blobs fetched at once cannot both pass the same Id. A claim whose record
// is then not handed downstream must be forgotten. evicted is how many Ids
// the size cap dropped early.
func (d *deduper) claim(e dedupeEntry, now time.Time) (claimed bool, evicted int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	expired := now.Add(-dedupeHorizon).Unix() / int64(dedupeBucket/time.Second)
	if expired != d.lastSweep {
		d.lastSweep = expired
		for b, ids := range d.buckets {
			if b < expired {
				d.entries -= len(ids)
				delete(d.buckets, b)
			}
		}
	}
	if e.bucket < expired {
		return true, 0 // no repeat of it can still be listed
	}
	ids := d.buckets[e.bucket]
	if ids == nil {
		ids = map[dedupeKey]struct{}{}
		d.buckets[e.bucket] = ids
	}
	if _, ok := ids[e.key]; ok {
		return false, 0
	}
	ids[e.key] = struct{}{}
	d.entries++
	for d.entries > d.maxEntries {
		oldest, first := int64(0), true
		for b := range d.buckets {
			if first || b < oldest {
				oldest, first = b, false
			}
		}
		evicted += len(d.buckets[oldest])
		d.entries -= len(d.buckets[oldest])
		delete(d.buckets, oldest)
	}
	return true, evicted
}

// forget drops claims again: their batch was nacked or never handed over,
// and the records must pass when fetched again rather than be taken for
// repeats of themselves.
func (d *deduper) forget(entries []dedupeEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range entries {
		ids := d.buckets[e.bucket]
		if _, ok := ids[e.key]; ok {
			delete(ids, e.key)
			d.entries--
		}
	}
}

// size is the number of remembered Ids.
func (d *deduper) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.entries
}
