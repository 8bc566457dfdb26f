package o365sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFaults injects each request fault once, checks that it fires, then
// that the same request is answered correctly again.
func TestFaults(t *testing.T) {
	e := newEnv(t, Config{SubscribedAtStart: ContentTypes, PageSize: 10})
	list := url.Values{"contentType": {ContentTypeGeneral}, "PublisherIdentifier": {DefaultTenantID}}
	page1 := e.api(http.MethodGet, "subscriptions/content", list)
	require.Equal(t, http.StatusOK, page1.status)
	nextURI := page1.header.Get("NextPageUri")
	require.NotEmpty(t, nextURI)
	blobs := e.srv.Blobs(ContentTypeGeneral)
	var blobURI string
	for _, b := range blobs {
		if b.Records >= 4 {
			blobURI = b.ContentURI
			break
		}
	}
	require.NotEmpty(t, blobURI)
	listReq := func() resp { return e.do(http.MethodGet, e.srv.APIRoot()+"/subscriptions/content?"+list.Encode(), nil) }
	blobReq := func() resp { return e.do(http.MethodGet, blobURI, nil) }
	tokenReq := func() resp { return e.postToken(e.srv.TenantID(), "/oauth2/v2.0/token", form("scope", Scope)) }

	for _, tc := range []struct {
		name  string
		fault Fault
		req   func() resp
		check func(t *testing.T, r resp)
	}{
		{"throttle 429 with Retry-After", Fault{Kind: FaultThrottle, Op: OpListContent, Status: 429, RetryAfter: 1500 * time.Millisecond}, listReq, func(t *testing.T, r resp) {
			assert.Equal(t, 429, r.status)
			assert.Equal(t, "AF429", r.code())
			assert.Equal(t, "2", r.header.Get("Retry-After"))
			assert.Contains(t, string(r.body), "Method=ListContent, PublisherId="+DefaultTenantID)
		}},
		{"throttle default 403", Fault{Kind: FaultThrottle}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, 403, r.status)
			assert.Equal(t, "AF429", r.code())
			assert.Contains(t, string(r.body), "Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000")
		}},
		{"500 on list", Fault{Kind: FaultInternalError, Op: OpListContent, ContentType: ContentTypeGeneral}, listReq, func(t *testing.T, r resp) {
			assert.Equal(t, 500, r.status)
			assert.Equal(t, "AF50000", r.code())
		}},
		{"503 on blob", Fault{Kind: FaultUnavailable, Op: OpGetBlob}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, 503, r.status)
		}},
		{"408 status", Fault{Kind: FaultStatus, Status: 408, Code: "AF50005"}, listReq, func(t *testing.T, r resp) {
			assert.Equal(t, 408, r.status)
			assert.Equal(t, "AF50005", r.code())
		}},
		{"401 on blob", Fault{Kind: FaultUnauthorized, Op: OpGetBlob}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, 401, r.status)
		}},
		{"500 on token", Fault{Kind: FaultInternalError, Op: OpToken}, tokenReq, func(t *testing.T, r resp) {
			assert.Equal(t, 500, r.status)
		}},
		{"503 on token", Fault{Kind: FaultUnavailable, Op: OpToken}, tokenReq, func(t *testing.T, r resp) {
			assert.Equal(t, 503, r.status)
		}},
		{"invalid_client on token", Fault{Kind: FaultInvalidClient}, tokenReq, func(t *testing.T, r resp) {
			assert.Equal(t, 401, r.status)
			errName, desc := entraErr(t, r)
			assert.Equal(t, "invalid_client", errName)
			assert.Contains(t, desc, "AADSTS7000215")
		}},
		{"truncated blob", Fault{Kind: FaultTruncatedBody, After: 2}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, 200, r.status)
			require.Error(t, r.err, "the connection is dropped mid-body")
			var recs []json.RawMessage
			assert.Error(t, json.Unmarshal(r.body, &recs))
		}},
		{"malformed blob", Fault{Kind: FaultMalformedJSON}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, 200, r.status)
			require.NoError(t, r.err)
			var recs []json.RawMessage
			assert.Error(t, json.Unmarshal(r.body, &recs))
		}},
		{"blob expired", Fault{Kind: FaultBlobExpired}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, "AF20051", r.code())
		}},
		{"blob gone", Fault{Kind: FaultBlobGone}, blobReq, func(t *testing.T, r resp) {
			assert.Equal(t, 404, r.status)
			assert.Equal(t, "AF20050", r.code())
		}},
		{"subscription disabled", Fault{Kind: FaultSubscriptionDisabled}, listReq, func(t *testing.T, r resp) {
			assert.Equal(t, "AF20023", r.code())
		}},
		{"empty page", Fault{Kind: FaultEmptyPage}, listReq, func(t *testing.T, r resp) {
			assert.JSONEq(t, "[]", string(r.body))
			assert.Empty(t, r.header.Get("NextPageUri"))
		}},
		{"stale next page", Fault{Kind: FaultStaleNextPage}, func() resp { return e.do(http.MethodGet, nextURI, nil) }, func(t *testing.T, r resp) {
			assert.Equal(t, 400, r.status)
			assert.Equal(t, "AF20031", r.code())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault.Kind == FaultStaleNextPage {
				// A first page (no nextPage) does not consume the fault.
				e.srv.Inject(tc.fault)
				assert.Equal(t, http.StatusOK, listReq().status)
			} else {
				e.srv.Inject(tc.fault)
			}
			tc.check(t, tc.req())
			assert.Zero(t, e.srv.PendingFaults())
			r := tc.req()
			require.Equal(t, http.StatusOK, r.status, "correct again: %s", r.body)
			require.NoError(t, r.err)
		})
	}

	t.Run("content type and N shots", func(t *testing.T) {
		e.srv.Inject(Fault{Kind: FaultInternalError, ContentType: ContentTypeExchange, Times: 2})
		assert.Equal(t, http.StatusOK, listReq().status, "another content type is not affected")
		ex := url.Values{"contentType": {ContentTypeExchange}}
		assert.Equal(t, 500, e.api(http.MethodGet, "subscriptions/content", ex).status)
		assert.Equal(t, 500, e.api(http.MethodGet, "subscriptions/content", ex).status)
		assert.Equal(t, 200, e.api(http.MethodGet, "subscriptions/content", ex).status)
	})

	t.Run("invalid nextPage", func(t *testing.T) {
		q := url.Values{"contentType": {ContentTypeGeneral}, "nextPage": {"garbage"}}
		assert.Equal(t, "AF20031", e.api(http.MethodGet, "subscriptions/content", q).code())
	})

	t.Run("late blob", func(t *testing.T) {
		n := len(e.srv.ExpectedRecords(ContentTypeGeneral))
		items, _ := e.listAll(list)
		e.srv.Inject(Fault{Kind: FaultLateBlob, Records: 5, Created: e.clock.Now().Add(-5 * time.Hour)})
		after, _ := e.listAll(list)
		require.Len(t, after, len(items)+1)
		assert.Len(t, e.srv.ExpectedRecords(ContentTypeGeneral), n+5)
	})

	t.Run("duplicate records", func(t *testing.T) {
		src := e.srv.Blobs(ContentTypeExchange)[3]
		e.srv.Inject(Fault{Kind: FaultDuplicateRecords, ContentType: ContentTypeExchange, ContentID: src.ContentID, Records: 2})
		all := e.srv.Blobs(ContentTypeExchange)
		dup := all[len(all)-1]
		srcRecs, dupRecs := e.fetch(src.ContentURI), e.fetch(dup.ContentURI)
		require.Len(t, dupRecs, 3)
		assert.Equal(t, srcRecs[:2], dupRecs[:2], "the same records, same Id")
		var marked []string
		for _, r := range e.srv.ExpectedRecords(ContentTypeExchange) {
			if r.Duplicate {
				marked = append(marked, r.ID)
			}
		}
		assert.Equal(t, []string{srcRecs[0]["Id"].(string), srcRecs[1]["Id"].(string)}, marked)
	})
	assert.Positive(t, e.srv.Stats().FaultsFired)
}

func TestThrottleLimit(t *testing.T) {
	e := newEnv(t, Config{RequestsPerMinute: 3, RetryAfter: 30 * time.Second})
	for range 3 {
		require.Equal(t, http.StatusOK, e.api(http.MethodGet, "subscriptions/list", nil).status)
	}
	r := e.api(http.MethodGet, "subscriptions/list", nil)
	assert.Equal(t, http.StatusForbidden, r.status)
	assert.Equal(t, "AF429", r.code())
	assert.Equal(t, "30", r.header.Get("Retry-After"))
	assert.Contains(t, string(r.body), "PublisherId=00000000-0000-0000-0000-000000000000")

	e.clock.Add(time.Minute)
	assert.Equal(t, http.StatusOK, e.api(http.MethodGet, "subscriptions/list", nil).status, "a new minute, a new budget")

	st := e.srv.Stats()
	assert.Equal(t, 1, st.Throttled)
	assert.Equal(t, 5, st.WithoutPublisherID)
	assert.Equal(t, 4, st.Count(OpListSubscriptions, http.StatusOK))
	assert.Equal(t, 1, st.Count(OpListSubscriptions, http.StatusForbidden))
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{TenantID: "nope"},
		{History: 8 * 24 * time.Hour},
		{ThrottleStatus: 500},
		{BlobInterval: time.Millisecond},
		{DuplicatesEvery: 1},
		{SubscribedAtStart: []string{"Audit.Nope"}},
	} {
		_, err := New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	srv, err := New(Config{})
	require.NoError(t, err)
	assert.Error(t, srv.Start("0.0.0.0:0"), "loopback only")
}
