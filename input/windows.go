package input

import "time"

const (
	// maxListWindow stays under the API's 24 h limit on endTime - startTime
	// (AF20030/AF20055); field reports say an exact 24 h window is rejected
	// (management-api.md §12.6), so one hour of margin.
	maxListWindow = 23 * time.Hour

	// retention is how far back startTime may reach (AF20055 past 7 days).
	retention = 7 * 24 * time.Hour

	// retentionMargin keeps the oldest startTime clear of the 7-day limit
	// when the local clock runs a little behind the API's.
	retentionMargin = 30 * time.Minute
)

// listWindow is a half-open listing window [start, end), which is what the
// API filters contentCreated by, so back-to-back windows never overlap.
type listWindow struct{ start, end time.Time }

// oldestListable is the oldest startTime the API accepts at now.
func oldestListable(now time.Time) time.Time {
	return now.UTC().Add(-retention + retentionMargin)
}

// planWindows splits [from, now) into listing windows the API accepts: at
// most maxListWindow long, starting no earlier than oldestListable(now).
// Reporting what the clamp cuts off is the caller's job, since only it knows
// whether that range was already listed.
func planWindows(from, now time.Time) []listWindow {
	// The API takes whole seconds; truncating here keeps the window we
	// record as listed identical to the one the server applied.
	from, now = from.UTC().Truncate(time.Second), now.UTC().Truncate(time.Second)
	if oldest := oldestListable(now); from.Before(oldest) {
		from = oldest
	}
	var windows []listWindow
	for from.Before(now) {
		end := from.Add(maxListWindow)
		if end.After(now) {
			end = now
		}
		windows = append(windows, listWindow{start: from, end: end})
		from = end
	}
	return windows
}
