package o365api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testTenant    = "f28ab78a-d401-4060-8012-736e373933eb"
	testPublisher = "0b1e2f5a-6c3d-4e8f-9a0b-1c2d3e4f5a6b"
	testFeedPath  = "/api/v1.0/" + testTenant + "/activity/feed"
)

// countingTokens issues "token-1", "token-2", ...: a new one after each
// Invalidate of the current one.
type countingTokens struct {
	mu          sync.Mutex
	generation  int
	invalidated []string
}

func (s *countingTokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("token-%d", s.generation+1), nil
}

func (s *countingTokens) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, token)
	if token == fmt.Sprintf("token-%d", s.generation+1) {
		s.generation++
	}
}

// seenRequest is what a fake API server recorded of one request.
type seenRequest struct {
	Method        string
	Path          string // escaped, as sent
	Query         url.Values
	RawQuery      string
	Authorization string
}

// fakeAPI is an httptest server whose handler is given per test and which
// records every request.
type fakeAPI struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newFakeAPI(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, n int)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), RawQuery: r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization"),
		})
		n := len(f.seen)
		f.mu.Unlock()
		handler(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// newTestClient returns a client of srv with fast retries.
func newTestClient(t *testing.T, srv *fakeAPI, tokens TokenSource, edit ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		TenantID:       testTenant,
		PublisherID:    testPublisher,
		APIURL:         srv.URL,
		Tokens:         tokens,
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func writeAF(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, message))
}

// publisherCount counts PublisherIdentifier parameters, in any case.
func publisherCount(q url.Values) (count int, value string) {
	for k, vs := range q {
		if strings.EqualFold(k, "PublisherIdentifier") {
			count += len(vs)
			value = vs[0]
		}
	}
	return count, value
}

func TestNewValidatesConfig(t *testing.T) {
	tokens := &countingTokens{}
	tests := []struct {
		name        string
		cfg         Config
		errContains string
	}{
		{"valid", Config{TenantID: testTenant, APIURL: "https://manage.office.com", Tokens: tokens}, ""},
		{"trailing slash", Config{TenantID: testTenant, APIURL: "https://manage.office.com/", Tokens: tokens}, ""},
		{"domain as tenant", Config{TenantID: "contoso.onmicrosoft.com", APIURL: "https://manage.office.com", Tokens: tokens}, "not a GUID"},
		{"bad publisher", Config{TenantID: testTenant, PublisherID: "acme", APIURL: "https://manage.office.com", Tokens: tokens}, `publisher ID "acme"`},
		{"path in API URL", Config{TenantID: testTenant, APIURL: "https://manage.office.com/api/v1.0", Tokens: tokens}, "scheme and host only"},
		{"query in API URL", Config{TenantID: testTenant, APIURL: "https://manage.office.com?x=1", Tokens: tokens}, "scheme and host only"},
		{"no scheme", Config{TenantID: testTenant, APIURL: "manage.office.com", Tokens: tokens}, "scheme and host only"},
		{"ftp scheme", Config{TenantID: testTenant, APIURL: "ftp://manage.office.com", Tokens: tokens}, "scheme and host only"},
		{"no token source", Config{TenantID: testTenant, APIURL: "https://manage.office.com"}, "no token source"},
		{"negative attempts", Config{TenantID: testTenant, APIURL: "https://manage.office.com", Tokens: tokens, MaxAttempts: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.errContains != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errContains)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "https://manage.office.com/api/v1.0/"+testTenant+"/activity/feed", c.feedURL)
			assert.Equal(t, testTenant, c.publisherID, "PublisherID defaults to the tenant")
			assert.Equal(t, defaultMaxAttempts, c.maxAttempts)
			assert.Equal(t, defaultRetryBaseDelay, c.baseDelay)
			assert.Equal(t, defaultRetryMaxDelay, c.maxDelay)
			require.NotNil(t, c.httpClient)
			transport, ok := c.httpClient.Transport.(*http.Transport)
			require.True(t, ok)
			assert.Equal(t, defaultResponseHeaderTimeout, transport.ResponseHeaderTimeout)
			assert.Zero(t, c.httpClient.Timeout, "a whole-request timeout would cut streaming blobs")
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name string
		// respond answers request n (1-based).
		respond      func(w http.ResponseWriter, n int)
		maxAttempts  int
		wantRequests int
		wantErr      string // "" for success
		wantAuth     []string
		wantInvalid  []string
		wantRetryIn  time.Duration // RetryAfter parsed from the first response
	}{
		{
			name: "401 then success refreshes the token once",
			respond: func(w http.ResponseWriter, n int) {
				if n == 1 {
					writeJSON(w, http.StatusUnauthorized, `{"Message":"Authorization has been denied for this request."}`)
					return
				}
				writeJSON(w, http.StatusOK, `[]`)
			},
			wantRequests: 2,
			wantAuth:     []string{"Bearer token-1", "Bearer token-2"},
			wantInvalid:  []string{"token-1"},
		},
		{
			name: "503 twice then success",
			respond: func(w http.ResponseWriter, n int) {
				if n <= 2 {
					writeJSON(w, http.StatusServiceUnavailable, `Service Unavailable`)
					return
				}
				writeJSON(w, http.StatusOK, `[]`)
			},
			wantRequests: 3,
			wantAuth:     []string{"Bearer token-1", "Bearer token-1", "Bearer token-1"},
		},
		{
			name: "AF429 as 403 with Retry-After seconds",
			respond: func(w http.ResponseWriter, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", "7")
					writeAF(w, http.StatusForbidden, "AF429", "Too many requests. Method=ListSubscriptions, PublisherId="+testPublisher)
					return
				}
				writeJSON(w, http.StatusOK, `[]`)
			},
			wantRequests: 2,
			wantRetryIn:  7 * time.Second,
		},
		{
			name: "AF429 as 429 with Retry-After seconds",
			respond: func(w http.ResponseWriter, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", "3")
					writeAF(w, http.StatusTooManyRequests, "AF429", "Too many requests.")
					return
				}
				writeJSON(w, http.StatusOK, `[]`)
			},
			wantRequests: 2,
			wantRetryIn:  3 * time.Second,
		},
		{
			name: "AF50000 then success",
			respond: func(w http.ResponseWriter, n int) {
				if n == 1 {
					writeAF(w, http.StatusInternalServerError, "AF50000", "An internal error occurred. Retry the request.")
					return
				}
				writeJSON(w, http.StatusOK, `[]`)
			},
			wantRequests: 2,
		},
		{
			name: "transport error then success",
			respond: func(w http.ResponseWriter, n int) {
				if n == 1 {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
				writeJSON(w, http.StatusOK, `[]`)
			},
			wantRequests: 2,
		},
		{
			name:         "gives up after MaxAttempts",
			respond:      func(w http.ResponseWriter, _ int) { writeJSON(w, http.StatusBadGateway, `<html>bad gateway</html>`) },
			maxAttempts:  3,
			wantRequests: 3,
			wantErr:      "giving up after 3 attempts: list_subscriptions: HTTP 502: <html>bad gateway</html>",
		},
		{
			name: "401 every time gives up",
			respond: func(w http.ResponseWriter, _ int) {
				writeJSON(w, http.StatusUnauthorized, `{"Message":"Authorization has been denied for this request."}`)
			},
			maxAttempts:  2,
			wantRequests: 2,
			wantErr:      "giving up after 2 attempts: list_subscriptions: HTTP 401: Authorization has been denied",
			wantAuth:     []string{"Bearer token-1", "Bearer token-2"},
			wantInvalid:  []string{"token-1", "token-2"},
		},
		{
			name: "AF10001 fails at once even as 401",
			respond: func(w http.ResponseWriter, _ int) {
				writeAF(w, http.StatusUnauthorized, "AF10001", "The permission set () sent in the request does not include the expected permission.")
			},
			wantRequests: 1,
			wantErr:      "list_subscriptions: HTTP 401 AF10001: The permission set",
		},
		{
			name: "AF20022 is not retried",
			respond: func(w http.ResponseWriter, _ int) {
				writeAF(w, http.StatusBadRequest, "AF20022", "No subscription found for the specified content type")
			},
			wantRequests: 1,
			wantErr:      "HTTP 400 AF20022",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, n int) { tt.respond(w, n) })
			tokens := &countingTokens{}
			var events []RequestEvent
			var mu sync.Mutex
			c := newTestClient(t, srv, tokens, func(cfg *Config) {
				cfg.MaxAttempts = tt.maxAttempts
				cfg.Observe = func(e RequestEvent) {
					mu.Lock()
					defer mu.Unlock()
					events = append(events, e)
				}
			})

			_, err := c.ListSubscriptions(t.Context())

			seen := srv.requests()
			assert.Len(t, seen, tt.wantRequests)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				var apiErr *APIError
				assert.True(t, errors.As(err, &apiErr), "the last *APIError is reachable with errors.As")
			}
			if tt.wantAuth != nil {
				var auth []string
				for _, r := range seen {
					auth = append(auth, r.Authorization)
				}
				assert.Equal(t, tt.wantAuth, auth)
			}
			assert.Equal(t, tt.wantInvalid, tokens.invalidated)

			mu.Lock()
			defer mu.Unlock()
			assert.Len(t, events, tt.wantRequests, "Observe is called once per exchange")
			if tt.wantRetryIn > 0 {
				var apiErr *APIError
				require.True(t, errors.As(events[0].Err, &apiErr))
				assert.Equal(t, "AF429", events[0].Code)
				assert.Equal(t, ActionThrottle, apiErr.Action())
				assert.Equal(t, tt.wantRetryIn, apiErr.RetryAfter)
			}
		})
	}
}

func TestRetryWaitStopsWithContext(t *testing.T) {
	srv := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeJSON(w, http.StatusServiceUnavailable, ``)
	})
	ctx, cancel := context.WithCancel(t.Context())
	c := newTestClient(t, srv, &countingTokens{}, func(cfg *Config) {
		cfg.RetryBaseDelay = time.Hour
		cfg.RetryMaxDelay = time.Hour
		cfg.Observe = func(RequestEvent) { cancel() }
	})

	_, err := c.ListSubscriptions(ctx)

	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Len(t, srv.requests(), 1)
}

func TestPacingWaitsWithContext(t *testing.T) {
	srv := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, http.StatusOK, `[]`) })
	c := newTestClient(t, srv, &countingTokens{}, func(cfg *Config) { cfg.RequestsPerMinute = 1 })

	_, err := c.ListSubscriptions(t.Context())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = c.ListSubscriptions(ctx)

	require.Error(t, err, "one request a minute: the second cannot go within 50ms")
	assert.Contains(t, err.Error(), "request budget")
	assert.Len(t, srv.requests(), 1)
}

func TestSubscriptions(t *testing.T) {
	srv := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case testFeedPath + "/subscriptions/list":
			writeJSON(w, http.StatusOK, `[{"contentType":"Audit.SharePoint","status":"enabled","webhook":null},
				{"contentType":"Audit.Exchange","status":"disabled","webhook":{"status":"expired"}}]`)
		case testFeedPath + "/subscriptions/start":
			if r.URL.Query().Get("contentType") == ContentTypeExchange {
				writeAF(w, http.StatusBadRequest, "AF20024", "The subscription is already enabled. No property change.")
				return
			}
			writeJSON(w, http.StatusOK, `{"contentType":"Audit.General","status":"enabled","webhook":null}`)
		case testFeedPath + "/subscriptions/stop":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	})
	c := newTestClient(t, srv, &countingTokens{})
	ctx := t.Context()

	subs, err := c.ListSubscriptions(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Subscription{{ContentType: "Audit.SharePoint", Status: "enabled"}, {ContentType: "Audit.Exchange", Status: "disabled"}}, subs)

	sub, err := c.StartSubscription(ctx, ContentTypeGeneral)
	require.NoError(t, err)
	assert.Equal(t, Subscription{ContentType: ContentTypeGeneral, Status: "enabled"}, sub)

	sub, err = c.StartSubscription(ctx, ContentTypeExchange)
	require.NoError(t, err, "AF20024 (already enabled) is success")
	assert.Equal(t, Subscription{ContentType: ContentTypeExchange, Status: "enabled"}, sub)

	require.NoError(t, c.StopSubscription(ctx, ContentTypeDLP))

	seen := srv.requests()
	require.Len(t, seen, 4, "AF20024 is not retried")
	wantMethods := []string{http.MethodGet, http.MethodPost, http.MethodPost, http.MethodPost}
	wantTypes := []string{"", ContentTypeGeneral, ContentTypeExchange, ContentTypeDLP}
	for i, r := range seen {
		assert.Equal(t, wantMethods[i], r.Method, "request %d", i)
		assert.Equal(t, wantTypes[i], r.Query.Get("contentType"), "request %d", i)
		count, value := publisherCount(r.Query)
		assert.Equal(t, 1, count, "request %d", i)
		assert.Equal(t, testPublisher, value, "request %d", i)
	}
}

func TestListContentFollowsPagesAndFetchesBlobs(t *testing.T) {
	var srv *fakeAPI
	item := func(id string) string {
		return fmt.Sprintf(`{"contentType":"Audit.Exchange","contentId":"%[1]s","contentUri":"%[2]s%[3]s/audit/%[1]s",`+
			`"contentCreated":"2024-03-01T10:00:00.123Z","contentExpiration":"2024-03-08T10:00:00.123Z"}`, id, srv.URL, testFeedPath)
	}
	srv = newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if strings.Contains(r.URL.Path, "/audit/") {
			writeJSON(w, http.StatusOK, `[{"Id":"r1"}]`)
			return
		}
		// The docs' sample next-page URL uses /api/v1/, not /api/v1.0/:
		// the client must follow it as given.
		nextBase := srv.URL + "/api/v1/" + testTenant + "/activity/feed/subscriptions/content?contentType=Audit.Exchange&startTime=2024-03-01T00:00:00&endTime=2024-03-01T23:00:00"
		switch r.URL.Query().Get("nextPage") {
		case "":
			w.Header().Set("NextPageUri", nextBase+"&nextPage=p2")
			writeJSON(w, http.StatusOK, "["+item("1$1$audit_exchange$Audit_Exchange$emea0026")+","+item("2$2$a$b")+"]")
		case "p2":
			// Already carries the parameter, in lower case: not added twice.
			w.Header().Set("NextPageUrl", nextBase+"&nextPage=p3&publisheridentifier="+testPublisher)
			writeJSON(w, http.StatusOK, "["+item("3$3$a$b")+"]")
		case "p3":
			writeJSON(w, http.StatusOK, `[]`)
		}
	})
	c := newTestClient(t, srv, &countingTokens{})
	ctx := t.Context()
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

	var pages [][]ContentItem
	err := c.ListContent(ctx, ContentTypeExchange, start, start.Add(23*time.Hour), func(items []ContentItem) error {
		pages = append(pages, items)
		return nil
	})
	require.NoError(t, err)

	require.Len(t, pages, 3)
	assert.Len(t, pages[0], 2)
	assert.Len(t, pages[1], 1)
	assert.Empty(t, pages[2])
	first := pages[0][0]
	assert.Equal(t, ContentItem{
		ContentType:       ContentTypeExchange,
		ContentID:         "1$1$audit_exchange$Audit_Exchange$emea0026",
		ContentURI:        srv.URL + testFeedPath + "/audit/1$1$audit_exchange$Audit_Exchange$emea0026",
		ContentCreated:    time.Date(2024, 3, 1, 10, 0, 0, 123e6, time.UTC),
		ContentExpiration: time.Date(2024, 3, 8, 10, 0, 0, 123e6, time.UTC),
	}, first)

	for _, page := range pages {
		for _, it := range page {
			body, err := c.FetchBlob(ctx, it.ContentURI)
			require.NoError(t, err)
			rec, err := NewRecordDecoder(body).Next()
			require.NoError(t, err)
			assert.Equal(t, "r1", rec.ID)
			require.NoError(t, body.Close())
		}
	}

	seen := srv.requests()
	require.Len(t, seen, 6)
	assert.Equal(t, []string{"", "p2", "p3"}, []string{seen[0].Query.Get("nextPage"), seen[1].Query.Get("nextPage"), seen[2].Query.Get("nextPage")})
	assert.Equal(t, "/api/v1/"+testTenant+"/activity/feed/subscriptions/content", seen[1].Path)
	assert.Equal(t, testFeedPath+"/audit/1$1$audit_exchange$Audit_Exchange$emea0026", seen[3].Path, "contentUri is used verbatim, '$' unescaped")
	for i, r := range seen {
		count, value := publisherCount(r.Query)
		assert.Equal(t, 1, count, "request %d (%s?%s) carries PublisherIdentifier once", i, r.Path, r.RawQuery)
		assert.Equal(t, testPublisher, value, "request %d", i)
		assert.Equal(t, "Bearer token-1", r.Authorization)
	}
}

func TestListContentRetriesTheSamePage(t *testing.T) {
	var srv *fakeAPI
	srv = newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Query().Get("nextPage") == "":
			w.Header().Set("NextPageUri", srv.URL+testFeedPath+"/subscriptions/content?contentType=Audit.General&nextPage=p2")
			writeJSON(w, http.StatusOK, `[]`)
		case n == 2:
			writeJSON(w, http.StatusServiceUnavailable, ``)
		default:
			writeJSON(w, http.StatusOK, `[]`)
		}
	})
	c := newTestClient(t, srv, &countingTokens{})

	pages := 0
	err := c.ListContent(t.Context(), ContentTypeGeneral, time.Time{}, time.Time{}, func([]ContentItem) error { pages++; return nil })

	require.NoError(t, err)
	assert.Equal(t, 2, pages)
	seen := srv.requests()
	require.Len(t, seen, 3)
	assert.Equal(t, seen[1].RawQuery, seen[2].RawQuery, "a retry re-requests the failed page only")
	assert.Equal(t, "p2", seen[2].Query.Get("nextPage"))
	for _, r := range seen {
		assert.False(t, r.Query.Has("startTime") || r.Query.Has("endTime"), "zero times send no window")
	}
}

func TestListContentTimeWindow(t *testing.T) {
	srv := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, http.StatusOK, `[]`) })
	c := newTestClient(t, srv, &countingTokens{})
	plusTwo := time.FixedZone("UTC+2", 2*60*60)
	noop := func([]ContentItem) error { return nil }

	start := time.Date(2024, 3, 1, 10, 0, 0, 500e6, plusTwo)
	end := time.Date(2024, 3, 2, 9, 30, 15, 0, plusTwo)
	require.NoError(t, c.ListContent(t.Context(), ContentTypeSharePoint, start, end, noop))

	err := c.ListContent(t.Context(), ContentTypeSharePoint, start, time.Time{}, noop)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listing content for Audit.SharePoint: start and end must both be set")

	seen := srv.requests()
	require.Len(t, seen, 1, "a half-open window is refused before any request")
	assert.Equal(t, testFeedPath+"/subscriptions/content", seen[0].Path)
	assert.Equal(t, "Audit.SharePoint", seen[0].Query.Get("contentType"))
	assert.Equal(t, "2024-03-01T08:00:00", seen[0].Query.Get("startTime"), "UTC, seconds, no zone")
	assert.Equal(t, "2024-03-02T07:30:15", seen[0].Query.Get("endTime"))
}

func TestListContentPageErrorStops(t *testing.T) {
	var srv *fakeAPI
	srv = newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("NextPageUri", srv.URL+testFeedPath+"/subscriptions/content?contentType=Audit.General&nextPage=p2")
		writeJSON(w, http.StatusOK, `[]`)
	})
	c := newTestClient(t, srv, &countingTokens{})
	stop := errors.New("checkpoint full")

	err := c.ListContent(t.Context(), ContentTypeGeneral, time.Time{}, time.Time{}, func([]ContentItem) error { return stop })

	assert.ErrorIs(t, err, stop)
	assert.Len(t, srv.requests(), 1)
}

func TestForeignHostsAreRefused(t *testing.T) {
	foreign := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, http.StatusOK, `[]`) })
	foreignURL := foreign.URL + testFeedPath + "/subscriptions/content?contentType=Audit.General&nextPage=p2"
	srv := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("NextPageUri", foreignURL)
		writeJSON(w, http.StatusOK, `[]`)
	})
	c := newTestClient(t, srv, &countingTokens{})

	pages := 0
	err := c.ListContent(t.Context(), ContentTypeGeneral, time.Time{}, time.Time{}, func([]ContentItem) error { pages++; return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing URL")
	assert.Zero(t, pages, "a page is delivered only when its whole response is valid")

	for _, uri := range []string{
		foreign.URL + testFeedPath + "/audit/1$2",
		strings.Replace(srv.URL, "http://", "https://", 1) + testFeedPath + "/audit/1$2",
		"//" + strings.TrimPrefix(foreign.URL, "http://") + "/audit/1$2",
	} {
		body, err := c.FetchBlob(t.Context(), uri)
		assert.Nil(t, body)
		require.Error(t, err, uri)
		assert.Contains(t, err.Error(), "refusing URL")
	}

	assert.Empty(t, foreign.requests(), "the foreign host never sees a request (nor the token)")
	assert.Len(t, srv.requests(), 1)
}

func TestFetchBlobSkipsGoneContent(t *testing.T) {
	srv := newFakeAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeAF(w, http.StatusNotFound, "AF20051", "Content for key 1$2 has expired.")
	})
	c := newTestClient(t, srv, &countingTokens{})

	body, err := c.FetchBlob(t.Context(), srv.URL+testFeedPath+"/audit/1$2")

	assert.Nil(t, body)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, ActionSkipContent, apiErr.Action())
	assert.Equal(t, OpFetchBlob, apiErr.Op)
	assert.Len(t, srv.requests(), 1)
}

func TestWithPublisher(t *testing.T) {
	c := &Client{publisherID: testPublisher}
	const p = "PublisherIdentifier=" + testPublisher
	tests := []struct{ in, want string }{
		{"https://h/a/audit/1$2", "https://h/a/audit/1$2?" + p},
		{"https://h/a?x=1", "https://h/a?x=1&" + p},
		{"https://h/a?", "https://h/a?" + p},
		{"https://h/a?x=1&", "https://h/a?x=1&" + p},
		{"https://h/a?x=1&publisheridentifier=other", "https://h/a?x=1&publisheridentifier=other"},
		{"https://h/a?PUBLISHERIDENTIFIER=other", "https://h/a?PUBLISHERIDENTIFIER=other"},
		{"https://h/a?publisherIdentifierX=1", "https://h/a?publisherIdentifierX=1&" + p},
		{"https://h/a?nextPage=a%2Bb#frag", "https://h/a?nextPage=a%2Bb&" + p + "#frag"},
		// Found by FuzzNextPageURL: an empty value is no PublisherIdentifier.
		{"https://h/a?puBlisherIdentifier", "https://h/a?" + p},
		{"https://h/a?x=1&PublisherIdentifier=&y=2", "https://h/a?x=1&y=2&" + p},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, c.withPublisher(tt.in), tt.in)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c := &Client{baseDelay: time.Second, maxDelay: time.Minute}
	tests := []struct {
		attempt int
		full    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {50, time.Minute}}
	for _, tt := range tests {
		for range 20 {
			d := c.backoff(tt.attempt)
			assert.GreaterOrEqual(t, d, tt.full/2, "attempt %d", tt.attempt)
			assert.LessOrEqual(t, d, tt.full, "attempt %d", tt.attempt)
		}
	}
}

// TestObserveSeesTransportErrors checks the event of an exchange without a response.
func TestObserveSeesTransportErrors(t *testing.T) {
	srv := newFakeAPI(t, func(http.ResponseWriter, *http.Request, int) {})
	srv.Close() // nothing listens any more
	var events atomic.Int32
	var last atomic.Value
	c := newTestClient(t, srv, &countingTokens{}, func(cfg *Config) {
		cfg.MaxAttempts = 2
		cfg.Observe = func(e RequestEvent) {
			events.Add(1)
			last.Store(e)
		}
	})

	_, err := c.ListSubscriptions(t.Context())

	require.Error(t, err)
	assert.Contains(t, err.Error(), "listing subscriptions: giving up after 2 attempts: list_subscriptions:")
	assert.Equal(t, int32(2), events.Load())
	e := last.Load().(RequestEvent)
	assert.Equal(t, OpListSubscriptions, e.Op)
	assert.Zero(t, e.Status)
	assert.Error(t, e.Err)
}
