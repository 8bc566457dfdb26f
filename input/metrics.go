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
	}
}

func (m *inputMetrics) request(ev o365api.RequestEvent) {
	status := strconv.Itoa(ev.Status)
	if ev.Status == 0 {
		status = "error"
	}
	m.apiRequestsTotal.Incr(1, m.tenantID, ev.Op, status, ev.Code)
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

// pollDone refreshes the gauges of one content type after each poll.
func (m *inputMetrics) pollDone(contentType string, cur *contentCursor, now time.Time) {
	m.blobsPending.Set(int64(cur.pendingCount()), m.tenantID, contentType)
	if newest := cur.newestDelivered(); !newest.IsZero() {
		m.newestDeliveredAt.Set(int64(now.Sub(newest).Seconds()), m.tenantID, contentType)
	}
}
