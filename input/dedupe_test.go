package input

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDedupeKeyParsesGUIDsWhateverTheirCase(t *testing.T) {
	a := parseDedupeKey("4A81A7C3-26FC-4AED-89C6-2E6039AB833B")
	b := parseDedupeKey("4a81a7c3-26fc-4aed-89c6-2e6039ab833b")
	assert.Equal(t, a, b)
	assert.Equal(t, dedupeKey{0x4a, 0x81, 0xa7, 0xc3, 0x26, 0xfc, 0x4a, 0xed, 0x89, 0xc6, 0x2e, 0x60, 0x39, 0xab, 0x83, 0x3b}, a)
	// Not a GUID: hashed, still distinct and stable.
	assert.Equal(t, parseDedupeKey("not-a-guid"), parseDedupeKey("not-a-guid"))
	assert.NotEqual(t, parseDedupeKey("not-a-guid"), parseDedupeKey("not-a-guie"))
	assert.NotEqual(t, a, parseDedupeKey("4a81a7c3-26fc-4aed-89c6-2e6039ab833z"))
}

func TestDeduperClaimsOnceForgetsAndExpires(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	d := newDeduper(1000)
	e := newDedupeEntry("4a81a7c3-26fc-4aed-89c6-2e6039ab833b", now.Add(-time.Hour))
	claimed, _ := d.claim(e, now)
	assert.True(t, claimed)
	claimed, _ = d.claim(e, now)
	assert.False(t, claimed, "a repeat is dropped")

	d.forget([]dedupeEntry{e})
	claimed, _ = d.claim(e, now)
	assert.True(t, claimed, "a forgotten claim (nacked batch) passes again")

	// Past the horizon its whole bucket is gone.
	later := now.Add(dedupeHorizon + 2*time.Hour)
	other := newDedupeEntry("00000000-0000-0000-0000-000000000001", later)
	_, _ = d.claim(other, later)
	assert.Equal(t, 1, d.size(), "the old bucket expired")
	// A record older than the horizon is never stored.
	claimed, _ = d.claim(e, later)
	assert.True(t, claimed)
	assert.Equal(t, 1, d.size())
}

func TestDeduperCapEvictsTheOldestBucketAndCountsIt(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	d := newDeduper(1000)
	evictedTotal := 0
	for i := range 1500 {
		// 500 Ids per hour: three buckets.
		created := now.Add(-3*time.Hour + time.Duration(i/500)*time.Hour)
		_, evicted := d.claim(newDedupeEntry(fmt.Sprintf("%08x-0000-0000-0000-000000000000", i), created), now)
		evictedTotal += evicted
	}
	assert.LessOrEqual(t, d.size(), 1000)
	assert.Equal(t, 1500-d.size(), evictedTotal, "every eviction is counted")
	claimed, _ := d.claim(newDedupeEntry(fmt.Sprintf("%08x-0000-0000-0000-000000000000", 1499), now.Add(-time.Hour)), now)
	assert.False(t, claimed, "the newest Ids are kept")
}
