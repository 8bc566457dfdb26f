package input

import (
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/input/o365api"
)

// inputMetrics are the input's own series, labelled by tenant so that several
// inputs in one process stay apart.
type inputMetrics struct {
	tenantID string

	recordsTotal      *service.MetricCounter
	blobsTotal        *service.MetricCounter
	apiRequestsTotal  *service.MetricCounter
	throttlesTotal    *service.MetricCounter
	checkpointWrites  *service.MetricCounter
	unreachableTotal  *service.MetricCounter
	blobsPending      *service.MetricGauge
	newestDeliveredAt *service.MetricGauge

	apiErrorsTotal      *service.MetricCounter
	lastSuccessfulPoll  *service.MetricGauge
	newestContentCreate *service.MetricGauge
	lagSeconds          *service.MetricGauge

	duplicatesDropped *service.MetricCounter
	dedupeEvicted     *service.MetricCounter
}

func newInputMetrics(m *service.Metrics, tenantID string) *inputMetrics {
	return &inputMetrics{
		tenantID:          tenantID,
		recordsTotal:      m.NewCounter("o365_records_total", "tenant_id", "content_type", "outcome"),
		blobsTotal:        m.NewCounter("o365_blobs_total", "tenant_id", "content_type", "outcome"),
		apiRequestsTotal:  m.NewCounter("o365_api_requests_total", "tenant_id", "op", "status", "code"),
		throttlesTotal:    m.NewCounter("o365_throttles_total", "tenant_id", "op"),
		checkpointWrites:  m.NewCounter("o365_checkpoint_writes_total", "tenant_id", "outcome"),
		unreachableTotal:  m.NewCounter("o365_unreachable_seconds_total", "tenant_id", "content_type"),
		blobsPending:      m.NewGauge("o365_blobs_pending", "tenant_id", "content_type"),
		newestDeliveredAt: m.NewGauge("o365_newest_delivered_age_seconds", "tenant_id", "content_type"),

		apiErrorsTotal:      m.NewCounter("o365_api_errors_total", "tenant_id", "op", "code"),
		lastSuccessfulPoll:  m.NewGauge("o365_last_successful_poll_timestamp_seconds", "tenant_id", "content_type"),
		newestContentCreate: m.NewGauge("o365_newest_delivered_content_created_timestamp_seconds", "tenant_id", "content_type"),
		lagSeconds:          m.NewGauge("o365_lag_seconds", "tenant_id", "content_type"),

		duplicatesDropped: m.NewCounter("o365_duplicates_dropped_total", "tenant_id", "content_type"),
		dedupeEvicted:     m.NewCounter("o365_dedupe_evicted_total", "tenant_id"),
	}
}

// MetricNames are the names of every series the input registers, for the
// alert rules' test.
var MetricNames = []string{
	"o365_records_total", "o365_blobs_total", "o365_api_requests_total", "o365_throttles_total",
	"o365_checkpoint_writes_total", "o365_unreachable_seconds_total", "o365_blobs_pending",
	"o365_newest_delivered_age_seconds", "o365_api_errors_total", "o365_last_successful_poll_timestamp_seconds",
	"o365_newest_delivered_content_created_timestamp_seconds", "o365_lag_seconds",
	"o365_duplicates_dropped_total", "o365_dedupe_evicted_total",
}

func (m *inputMetrics) request(ev o365api.RequestEvent) {
	status := strconv.Itoa(ev.Status)
	if ev.Status == 0 {
		status = "error"
	}
	m.apiRequestsTotal.Incr(1, m.tenantID, ev.Op, status, ev.Code)
	if ev.Status < 200 || ev.Status > 299 {
		// An error without an AF code is named by its status, so that
		// gateway 503s and transport failures are counted too.
		code := ev.Code
		if code == "" {
			code = "HTTP_" + status
		}
		m.apiErrorsTotal.Incr(1, m.tenantID, ev.Op, code)
	}
	if ev.Code == "AF429" || ev.Status == 429 {
		m.throttlesTotal.Incr(1, m.tenantID, ev.Op)
	}
}

func (m *inputMetrics) records(contentType, outcome string, n int) {
	m.recordsTotal.Incr(int64(n), m.tenantID, contentType, outcome)
}

func (m *inputMetrics) blob(contentType, outcome string) {
	m.blobsTotal.Incr(1, m.tenantID, contentType, outcome)
}

func (m *inputMetrics) duplicates(contentType string, dropped, evicted int) {
	if dropped > 0 {
		m.duplicatesDropped.Incr(int64(dropped), m.tenantID, contentType)
	}
	if evicted > 0 {
		m.dedupeEvicted.Incr(int64(evicted), m.tenantID)
	}
}

func (m *inputMetrics) checkpointWritten(err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	m.checkpointWrites.Incr(1, m.tenantID, outcome)
}

func (m *inputMetrics) lostRange(contentType string, d time.Duration) {
	m.unreachableTotal.Incr(int64(d.Seconds()), m.tenantID, contentType)
}

// pollDone refreshes the gauges of one content type after each poll;
// succeeded says whether every window of the poll was listed.
func (m *inputMetrics) pollDone(contentType string, cur *contentCursor, now time.Time, succeeded bool) {
	if succeeded {
		m.lastSuccessfulPoll.Set(now.Unix(), m.tenantID, contentType)
	}
	m.blobsPending.Set(int64(cur.pendingCount()), m.tenantID, contentType)
	if newest := cur.newestDelivered(); !newest.IsZero() {
		m.newestDeliveredAt.Set(int64(now.Sub(newest).Seconds()), m.tenantID, contentType)
		m.newestContentCreate.Set(newest.Unix(), m.tenantID, contentType)
	}
	if lag, ok := cursorLag(cur, now); ok {
		m.lagSeconds.Set(int64(lag.Seconds()), m.tenantID, contentType)
	}
}

// cursorLag is how far collection trails now: the age of the oldest blob
// still pending, or, with nothing pending, of the end of the listed time.
// Content becomes listable 60-90 minutes after its events, so a healthy
// lag includes that delay only through the oldest pending blob.
func cursorLag(cur *contentCursor, now time.Time) (time.Duration, bool) {
	cur.mu.Lock()
	defer cur.mu.Unlock()
	var oldest time.Time
	for _, p := range cur.pending {
		if oldest.IsZero() || p.item.ContentCreated.Before(oldest) {
			oldest = p.item.ContentCreated
		}
	}
	if oldest.IsZero() {
		oldest = cur.listedThrough
	}
	if oldest.IsZero() {
		return 0, false
	}
	return max(now.Sub(oldest), 0), true
}
