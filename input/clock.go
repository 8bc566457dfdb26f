package input

import (
	"sync"
	"time"
)

// maxClockSkew is how far the local clock may stray from the API's Date
// header before listing windows follow the API's clock. Date has whole
// seconds and arrives after some latency, so smaller differences are noise.
const maxClockSkew = time.Minute

// apiClock tracks the API's clock from the Date header of its responses.
// Windows planned on a local clock that runs ahead would be recorded as
// listed before their content exists (lost beyond the look-back); on one
// that runs behind they would start past the 7-day limit (AF20055).
type apiClock struct {
	mu     sync.Mutex
	offset time.Duration // API clock minus local clock; 0 within maxClockSkew
}

// observe compares a response's Date with the local time it arrived at and
// reports the new offset when it changed noticeably (for a log line).
func (c *apiClock) observe(serverDate, local time.Time) (offset time.Duration, changed bool) {
	if serverDate.IsZero() {
		return 0, false
	}
	diff := serverDate.Sub(local.Truncate(time.Second))
	if diff < maxClockSkew && diff > -maxClockSkew {
		diff = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := diff - c.offset; d < maxClockSkew && d > -maxClockSkew {
		return c.offset, false
	}
	c.offset = diff
	return diff, true
}

func (c *apiClock) get() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// apiNow is the current time on the API's clock, as far as it is known.
func (in *office365ActivityInput) apiNow() time.Time {
	return in.now().Add(in.clock.get())
}
