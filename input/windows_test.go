package input

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPlanWindows(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 30, 15, 500, time.UTC)
	nowSec := now.Truncate(time.Second)
	tests := []struct {
		name string
		from time.Time
		want []listWindow
	}{
		{
			name: "caught up: one short window",
			from: nowSec.Add(-2 * time.Hour),
			want: []listWindow{{nowSec.Add(-2 * time.Hour), nowSec}},
		},
		{
			name: "nothing to list when from is now",
			from: now,
			want: nil,
		},
		{
			name: "nothing to list when from is in the future",
			from: now.Add(time.Hour),
			want: nil,
		},
		{
			name: "two days: 23h windows back to back",
			from: nowSec.Add(-48 * time.Hour),
			want: []listWindow{
				{nowSec.Add(-48 * time.Hour), nowSec.Add(-25 * time.Hour)},
				{nowSec.Add(-25 * time.Hour), nowSec.Add(-2 * time.Hour)},
				{nowSec.Add(-2 * time.Hour), nowSec},
			},
		},
		{
			name: "older than retention is clamped",
			from: now.Add(-30 * 24 * time.Hour),
			want: func() []listWindow {
				var ws []listWindow
				for from := oldestListable(nowSec); from.Before(nowSec); from = from.Add(maxListWindow) {
					ws = append(ws, listWindow{from, minTime(from.Add(maxListWindow), nowSec)})
				}
				return ws
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planWindows(tt.from, now)
			assert.Equal(t, tt.want, got)
			for _, w := range got {
				assert.LessOrEqual(t, w.end.Sub(w.start), maxListWindow, "under the API's 24h limit")
				assert.False(t, w.start.Before(oldestListable(nowSec)), "within the 7-day retention")
				assert.False(t, w.end.After(now), "never into the future")
			}
		})
	}
}

func TestPlanWindowsWholeSeconds(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 30, 15, 999_000_000, time.UTC)
	from := time.Date(2026, 11, 22, 9, 0, 0, 250_000_000, time.Local)
	ws := planWindows(from, now)
	if assert.Len(t, ws, 1) {
		assert.Equal(t, time.UTC, ws[0].start.Location())
		assert.Zero(t, ws[0].start.Nanosecond())
		assert.Zero(t, ws[0].end.Nanosecond())
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
