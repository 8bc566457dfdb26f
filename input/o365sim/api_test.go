package o365sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPIAuthOrder(t *testing.T) {
	e := newEnv(t, Config{SubscribedAtStart: []string{ContentTypeExchange}})
	good := e.token

	e.token = ""
	r := e.api(http.MethodGet, "subscriptions/list", nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.JSONEq(t, `{"Message":"Authorization has been denied for this request."}`, string(r.body))

	e.token = good[:len(good)-4] + "AAAA"
	assert.Equal(t, http.StatusUnauthorized, e.api(http.MethodGet, "subscriptions/list", nil).status, "bad signature")

	e.token = good
	r = e.do(http.MethodGet, e.srv.URL()+"/api/v1.0/not-a-guid/activity/feed/subscriptions/list", nil)
	assert.Equal(t, "AF20013", r.code())
	r = e.do(http.MethodGet, e.srv.URL()+"/api/v1.0/33333333-3333-3333-3333-333333333333/activity/feed/subscriptions/list", nil)
	assert.Equal(t, "AF20010", r.code())

	// A token without ActivityFeed.Read.
	noRead := newEnv(t, Config{Roles: []string{RoleReadDlp}})
	assert.Equal(t, "AF10001", noRead.api(http.MethodGet, "subscriptions/list", nil).code())

	// Expired token: the simulated clock moves past exp.
	e.clock.Add(time.Hour)
	assert.Equal(t, http.StatusUnauthorized, e.api(http.MethodGet, "subscriptions/list", nil).status)
}

func TestSubscriptions(t *testing.T) {
	e := newEnv(t, Config{})
	ct := ContentTypeSharePoint
	assert.Equal(t, "AF20022", e.api(http.MethodGet, "subscriptions/content", url.Values{"contentType": {ct}}).code())
	assert.Equal(t, "AF20020", e.start("Audit.Nope").code())

	r := e.start(ct)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.JSONEq(t, `{"contentType":"Audit.SharePoint","status":"enabled","webhook":null}`, string(r.body))

	r = e.start(ct)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "AF20024", r.code())

	r = e.do(http.MethodPost, e.srv.APIRoot()+"/subscriptions/start?contentType="+ct, strings.NewReader(`{"webhook":{"address":"http://insecure.example/hook"}}`))
	assert.Equal(t, "AF20021", r.code())

	r = e.api(http.MethodGet, "subscriptions/list", nil)
	assert.JSONEq(t, `[{"contentType":"Audit.SharePoint","status":"enabled","webhook":null}]`, string(r.body))

	require.Equal(t, http.StatusOK, e.api(http.MethodPost, "subscriptions/stop", url.Values{"contentType": {ct}}).status)
	assert.Equal(t, "AF20023", e.api(http.MethodGet, "subscriptions/content", url.Values{"contentType": {ct}}).code())
	r = e.api(http.MethodGet, "subscriptions/list", nil)
	assert.JSONEq(t, `[{"contentType":"Audit.SharePoint","status":"disabled","webhook":null}]`, string(r.body))

	e.srv.SetSubscription(ct, true)
	assert.Equal(t, http.StatusOK, e.api(http.MethodGet, "subscriptions/content", url.Values{"contentType": {ct}}).status)
	e.srv.SetSubscription(ct, false)
	assert.Equal(t, "AF20023", e.api(http.MethodGet, "subscriptions/content", url.Values{"contentType": {ct}}).code())
	require.Equal(t, http.StatusOK, e.start(ct).status, "start re-enables a disabled subscription")
}

func TestContentWindows(t *testing.T) {
	e := newEnv(t, Config{SubscribedAtStart: []string{ContentTypeGeneral}})
	now := e.clock.Now()
	f := func(t time.Time, layout string) string { return t.Format(layout) }
	const full = "2006-01-02T15:04:05"
	for _, tc := range []struct {
		name       string
		start, end string
		code       string
	}{
		{"only start", f(now.Add(-time.Hour), full), "", "AF20030"},
		{"only end", "", f(now, full), "AF20030"},
		{"end before start", f(now, full), f(now.Add(-time.Hour), full), "AF20055"},
		{"equal", f(now, full), f(now, full), "AF20055"},
		{"over 24h", f(now.Add(-25*time.Hour), full), f(now, full), "AF20055"},
		{"start 8 days ago", f(now.Add(-8*24*time.Hour), full), f(now.Add(-8*24*time.Hour+time.Hour), full), "AF20055"},
		{"garbage", "yesterday", f(now, full), "AF20002"},
		{"date only", f(now.Add(-24*time.Hour), "2006-01-02"), f(now, "2006-01-02"), ""},
		{"minutes", f(now.Add(-2*time.Hour), "2006-01-02T15:04"), f(now, "2006-01-02T15:04"), ""},
		{"seconds", f(now.Add(-2*time.Hour), full), f(now, full), ""},
		{"fraction and Z", f(now.Add(-2*time.Hour), "2006-01-02T15:04:05.000Z"), f(now, "2006-01-02T15:04:05.0000000Z"), ""},
		{"start 7 days ago", f(now.Add(-7*24*time.Hour), full), f(now.Add(-6*24*time.Hour), full), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"contentType": {ContentTypeGeneral}}
			if tc.start != "" {
				q.Set("startTime", tc.start)
			}
			if tc.end != "" {
				q.Set("endTime", tc.end)
			}
			r := e.api(http.MethodGet, "subscriptions/content", q)
			if tc.code == "" {
				assert.Equal(t, http.StatusOK, r.status, string(r.body))
				return
			}
			assert.Equal(t, http.StatusBadRequest, r.status)
			assert.Equal(t, tc.code, r.code())
		})
	}

	// Inclusive start, exclusive end on contentCreated; query names in any case.
	blobs := e.srv.Blobs(ContentTypeGeneral)
	require.Greater(t, len(blobs), 10)
	b := blobs[5]
	ts := b.ContentCreated.Format("2006-01-02T15:04:05.000Z")
	q := url.Values{"CONTENTTYPE": {ContentTypeGeneral}, "starttime": {ts}, "EndTime": {b.ContentCreated.Add(time.Hour).Format(full)}}
	items, _ := e.listAll(q)
	require.NotEmpty(t, items)
	assert.Equal(t, b.ContentID, items[0].ContentID, "start is inclusive")
	q = url.Values{"contentType": {ContentTypeGeneral}, "startTime": {b.ContentCreated.Add(-time.Hour).Format(full)}, "endTime": {ts}}
	items, _ = e.listAll(q)
	require.NotEmpty(t, items)
	assert.Equal(t, blobs[4].ContentID, items[len(items)-1].ContentID, "end is exclusive")
}

func TestPaginationAndGroundTruth(t *testing.T) {
	e := newEnv(t, Config{Seed: 7, PageSize: 7, SubscribedAtStart: ContentTypes, DuplicatesEvery: 10})
	workloads := map[string][]string{
		ContentTypeAzureActiveDirectory: {"AzureActiveDirectory"},
		ContentTypeExchange:             {"Exchange"},
		ContentTypeSharePoint:           {"SharePoint", "OneDrive"},
		ContentTypeGeneral:              {"MicrosoftTeams", "PowerBI", "Yammer", "MicrosoftForms", "MicrosoftStream", "MicrosoftFlow", "SecurityComplianceCenter", "ThreatIntelligence", "CRM", "Copilot", "Dynamics 365"},
		ContentTypeDLP:                  {"Exchange", "SharePoint", "OneDrive"},
	}
	ipShapes := map[string]int{}
	got := map[string]int{} // record ID -> occurrences fetched over HTTP
	var fetched, big int
	for _, ct := range ContentTypes {
		items, pages := e.listAll(url.Values{"contentType": {ct}, "PublisherIdentifier": {DefaultTenantID}})
		require.Len(t, items, 96, "24h of 15-minute blobs")
		assert.Equal(t, 14, pages)
		for i, it := range items {
			assert.Contains(t, it.ContentID, "$")
			assert.Equal(t, e.srv.APIRoot()+"/audit/"+it.ContentID, it.ContentURI)
			if i > 0 {
				assert.Less(t, items[i-1].ContentCreated, it.ContentCreated, "listed in order of availability")
			}
			for _, rec := range e.fetch(it.ContentURI + "?PublisherIdentifier=" + DefaultTenantID) {
				fetched++
				got[rec["Id"].(string)]++
				assert.Contains(t, workloads[ct], rec["Workload"], ct)
				assert.IsType(t, float64(0), rec["RecordType"])
				ctime := rec["CreationTime"].(string)
				assert.Len(t, ctime, len("2006-01-02T15:04:05"), "no zone, no fraction")
				assert.Equal(t, float64(1), rec["Version"])
				if ip, ok := rec["ClientIP"]; !ok {
					ipShapes["absent"]++
				} else if ip == nil {
					ipShapes["null"]++
				} else {
					ipShapes[ipShape(ip.(string))]++
				}
				if ct == ContentTypeDLP {
					assert.Equal(t, "DlpRuleMatch", rec["Operation"])
					assert.Equal(t, "DlpAgent", rec["UserId"])
					assert.Equal(t, true, rec["SensitiveInfoDetectionIsIncluded"])
					assert.Contains(t, []float64{11, 13}, rec["RecordType"])
					pd := rec["PolicyDetails"].([]any)[0].(map[string]any)
					si := pd["Rules"].([]any)[0].(map[string]any)["ConditionsMatched"].(map[string]any)["SensitiveInformation"].([]any)[0].(map[string]any)
					assert.Contains(t, si, "SensitiveInformationDetections")
				}
				if b, _ := json.Marshal(rec); len(b) > 10<<10 {
					big++
				}
			}
		}
	}
	for _, shape := range []string{"v4", "v4:port", "[v4]:port", "[v4]", "v6", "[v6]:port", "[v6]", "::ffff:v4", "[::ffff:v4]:port", "absent", "null"} {
		assert.Positive(t, ipShapes[shape], "ClientIP shape %s", shape)
	}
	assert.Positive(t, big, "some records are 10 KB+")

	exp := e.srv.ExpectedRecords()
	assert.Len(t, exp, fetched)
	want := map[string]int{}
	dups := 0
	for _, r := range exp {
		want[r.ID]++
		if r.Duplicate {
			dups++
		}
	}
	assert.Equal(t, want, got, "ExpectedRecords is the union of all blobs fetched over HTTP")
	assert.Positive(t, dups)
	assert.Len(t, want, len(exp)-dups, "IDs are unique except the marked duplicates")
	assert.Equal(t, 0, e.srv.Stats().WithoutPublisherID)

	// Determinism: the same seed gives the same tenant, another seed not.
	same := newEnv(t, Config{Seed: 7, PageSize: 7, DuplicatesEvery: 10, Now: e.clock.Now})
	assert.Equal(t, exp, same.srv.ExpectedRecords())
	other := newEnv(t, Config{Seed: 8, Now: e.clock.Now})
	assert.NotEqual(t, exp[0].ID, other.srv.ExpectedRecords()[0].ID)
}

func ipShape(ip string) string {
	switch {
	case strings.HasPrefix(ip, "[::ffff:"):
		return "[::ffff:v4]:port"
	case strings.HasPrefix(ip, "::ffff:"):
		return "::ffff:v4"
	case strings.HasPrefix(ip, "[2001") && strings.Contains(ip, "]:"):
		return "[v6]:port"
	case strings.HasPrefix(ip, "[2001"):
		return "[v6]"
	case strings.HasPrefix(ip, "2001"):
		return "v6"
	case strings.HasPrefix(ip, "[") && strings.Contains(ip, "]:"):
		return "[v4]:port"
	case strings.HasPrefix(ip, "["):
		return "[v4]"
	case strings.Count(ip, ":") == 1 && !strings.HasPrefix(ip, "localhost"):
		return "v4:port"
	case strings.Count(ip, ".") == 3 && !strings.Contains(ip, ":"):
		return "v4"
	}
	return "other"
}

func TestListabilityAndExpiry(t *testing.T) {
	e := newEnv(t, Config{SubscribedAtStart: []string{ContentTypeExchange}, BlobInterval: time.Hour})
	q := url.Values{"contentType": {ContentTypeExchange}}
	items, _ := e.listAll(q)
	n := len(items)
	require.Equal(t, 24, n)

	// Content created later becomes listable as the clock reaches it.
	e.clock.Add(2 * time.Hour)
	e.token = e.srv.AccessToken()
	items, _ = e.listAll(q)
	assert.Len(t, items, 24, "the 24h window slid by two blobs")
	assert.Len(t, e.srv.ExpectedRecords(ContentTypeExchange), countRecords(e.srv.Blobs(ContentTypeExchange)))
	assert.Len(t, e.srv.Blobs(ContentTypeExchange), 26)

	// Blobs expire 7 days after contentCreated (AF20051).
	uri := items[0].ContentURI
	e.clock.Add(7 * 24 * time.Hour)
	e.token = e.srv.AccessToken()
	assert.Equal(t, "AF20051", e.do(http.MethodGet, uri, nil).code())

	// Malformed and unknown content IDs.
	assert.Equal(t, "AF20052", e.do(http.MethodGet, e.srv.APIRoot()+"/audit/nope$nope", nil).code())
	id := items[0].ContentID
	suffix := strings.Split(id, "$")[0][17:]
	r := e.do(http.MethodGet, e.srv.APIRoot()+"/audit/"+strings.ReplaceAll(id, suffix, "0000099999"), nil)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "AF20050", r.code())
}

func countRecords(bs []ContentInfo) int {
	n := 0
	for _, b := range bs {
		n += b.Records
	}
	return n
}

func TestAddBlobIsLateListed(t *testing.T) {
	e := newEnv(t, Config{SubscribedAtStart: []string{ContentTypeAzureActiveDirectory}})
	now := e.clock.Now()
	q := url.Values{"contentType": {ContentTypeAzureActiveDirectory}, "startTime": {now.Add(-3 * time.Hour).Format("2006-01-02T15:04:05")}, "endTime": {now.Format("2006-01-02T15:04:05")}}
	before, _ := e.listAll(q)
	info := e.srv.AddBlob(ContentTypeAzureActiveDirectory, now.Add(-2*time.Hour), 3)
	after, _ := e.listAll(q)
	require.Len(t, after, len(before)+1)
	assert.Equal(t, info.ContentID, after[len(after)-1].ContentID, "late content is listed last: in order of availability")
	recs := e.fetch(info.ContentURI)
	assert.Len(t, recs, 3)
	exp := e.srv.ExpectedRecords(ContentTypeAzureActiveDirectory)
	assert.Equal(t, recs[2]["Id"], exp[len(exp)-1].ID)
}

func TestDLPWithoutReadDlp(t *testing.T) {
	e := newEnv(t, Config{Roles: []string{RoleRead}, SubscribedAtStart: []string{ContentTypeDLP}})
	items, _ := e.listAll(url.Values{"contentType": {ContentTypeDLP}})
	require.NotEmpty(t, items)
	recs := e.fetch(items[0].ContentURI)
	require.NotEmpty(t, recs)
	assert.Equal(t, false, recs[0]["SensitiveInfoDetectionIsIncluded"])
	b, _ := json.Marshal(recs)
	assert.NotContains(t, string(b), "DetectedValues")
}

func TestHugeBlobStreams(t *testing.T) {
	e := newEnv(t, Config{HugeBlobRecords: 3000, SubscribedAtStart: []string{ContentTypeGeneral}})
	blobs := e.srv.Blobs(ContentTypeGeneral)
	require.Equal(t, 3000, blobs[0].Records)
	r := e.do(http.MethodGet, blobs[0].ContentURI, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, r.header.Get("Content-Length"), "streamed, not buffered")
	var recs []json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &recs))
	assert.Len(t, recs, 3000)
	t.Logf("huge blob: %d records, %d bytes (%.0f B/record)", len(recs), len(r.body), float64(len(r.body))/3000)
}
