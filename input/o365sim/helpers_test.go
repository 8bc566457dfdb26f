package o365sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a started simulator, a client trusting its CA and a token.
type env struct {
	t     *testing.T
	srv   *Server
	clock *fakeClock
	hc    *http.Client
	token string
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clock := newClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = srv.Close() })
	return &env{t: t, srv: srv, clock: clock, hc: srv.HTTPClient(), token: srv.AccessToken()}
}

type resp struct {
	status int
	header http.Header
	body   []byte
	err    error // body read error
}

func (r resp) code() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (e *env) do(method, rawURL string, body io.Reader) resp {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, rawURL, body)
	require.NoError(e.t, err)
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; utf-8")
	}
	res, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, rerr := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b, err: rerr}
}

func (e *env) api(method, op string, q url.Values) resp {
	e.t.Helper()
	u := e.srv.APIRoot() + "/" + op
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return e.do(method, u, nil)
}

func (e *env) start(ct string) resp {
	return e.api(http.MethodPost, "subscriptions/start", url.Values{"contentType": {ct}})
}

// listAll follows NextPageUri from a first listing and returns every item
// and the number of pages.
func (e *env) listAll(q url.Values) ([]contentJSON, int) {
	e.t.Helper()
	u := e.srv.APIRoot() + "/subscriptions/content?" + q.Encode()
	var all []contentJSON
	pages := 0
	for u != "" {
		r := e.do(http.MethodGet, u, nil)
		require.Equal(e.t, http.StatusOK, r.status, string(r.body))
		var items []contentJSON
		require.NoError(e.t, json.Unmarshal(r.body, &items))
		all = append(all, items...)
		pages++
		u = r.header.Get("NextPageUri")
		if u != "" {
			require.True(e.t, strings.HasPrefix(u, e.srv.URL()+"/api/v1.0/"), u)
		}
	}
	return all, pages
}

func (e *env) fetch(uri string) []map[string]any {
	e.t.Helper()
	r := e.do(http.MethodGet, uri, nil)
	require.Equal(e.t, http.StatusOK, r.status, string(r.body))
	require.NoError(e.t, r.err)
	var recs []map[string]any
	require.NoError(e.t, json.Unmarshal(r.body, &recs))
	return recs
}
