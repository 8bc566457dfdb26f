package o365api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Operation names, as they appear in APIError.Op and RequestEvent.Op.
const (
	OpStartSubscription = "start"
	OpStopSubscription  = "stop"
	OpListSubscriptions = "list_subscriptions"
	OpListContent       = "list_content"
	OpFetchBlob         = "fetch_blob"
)

// Config configures a Client for one tenant.
type Config struct {
	TenantID    string // the tenant's GUID (not its domain name)
	PublisherID string // PublisherIdentifier on every request; defaults to TenantID
	APIURL      string // scheme + host; the client appends /api/v1.0/{tenant}/activity/feed/...
	// HTTPClient defaults to one with a response-header timeout. A client
	// given here should not set Timeout: it would cut blobs mid-stream.
	HTTPClient *http.Client
	// Tokens supplies bearer tokens; failing to get one is returned at once,
	// not retried here.
	Tokens TokenSource
	// RequestsPerMinute paces every request of this client (the tenant's
	// budget, shared by its content types). 0 means no pacing.
	RequestsPerMinute int
	// MaxAttempts bounds attempts of one request for retryable failures
	// (throttling, 5xx, 408, timeouts, a 401 with a refreshed token). Default 5.
	MaxAttempts int
	// RetryBaseDelay is the first backoff delay between attempts; it doubles
	// per attempt up to RetryMaxDelay. Defaults 1s and 60s.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps the backoff delay and a server's Retry-After.
	RetryMaxDelay time.Duration
	// Observe, when set, is called once per HTTP response or transport error.
	Observe func(RequestEvent)
}

// RequestEvent describes one HTTP exchange, for metrics and logs.
type RequestEvent struct {
	Op       string // "start", "stop", "list_subscriptions", "list_content", "fetch_blob"
	Status   int    // 0 on a transport error
	Code     string // AF code from the body, if any
	Duration time.Duration
	Err      error
	// ServerDate is the response's Date header (zero when absent or on a
	// transport error): the API's clock, against which listing windows
	// must be valid whatever the local clock says.
	ServerDate time.Time
}

const (
	defaultMaxAttempts    = 5
	defaultRetryBaseDelay = time.Second
	defaultRetryMaxDelay  = time.Minute
	// defaultResponseHeaderTimeout bounds the wait for a response's headers
	// only: blob bodies stream for as long as the caller reads them, bounded
	// by the caller's context instead.
	defaultResponseHeaderTimeout = time.Minute
)

// Client calls the Activity API for one tenant. It is safe for concurrent use.
type Client struct {
	feedURL     string // {APIURL}/api/v1.0/{tenant}/activity/feed
	origin      string // canonical scheme://host:port of APIURL
	publisherID string
	httpClient  *http.Client
	tokens      TokenSource
	limiter     *rate.Limiter // nil: no pacing
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	observe     func(RequestEvent)
	now         func() time.Time
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// New validates cfg, fills in its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if !guidPattern.MatchString(cfg.TenantID) {
		return nil, fmt.Errorf("tenant ID %q is not a GUID (the API wants the tenant's ID, not its domain name)", cfg.TenantID)
	}
	if cfg.PublisherID == "" {
		cfg.PublisherID = cfg.TenantID
	}
	if !guidPattern.MatchString(cfg.PublisherID) {
		return nil, fmt.Errorf("publisher ID %q is not a GUID", cfg.PublisherID)
	}
	api, err := url.Parse(cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("parsing API URL: %w", err)
	}
	if (api.Scheme != "https" && api.Scheme != "http") || api.Host == "" || api.User != nil ||
		strings.Trim(api.Path, "/") != "" || api.RawQuery != "" || api.Fragment != "" {
		return nil, fmt.Errorf("API URL %q must be a scheme and host only, e.g. https://manage.office.com", cfg.APIURL)
	}
	if cfg.Tokens == nil {
		return nil, errors.New("no token source")
	}
	if cfg.RequestsPerMinute < 0 || cfg.MaxAttempts < 0 || cfg.RetryBaseDelay < 0 || cfg.RetryMaxDelay < 0 {
		return nil, errors.New("requests per minute, max attempts and retry delays must not be negative")
	}
	c := &Client{
		feedURL:     api.Scheme + "://" + api.Host + "/api/v1.0/" + cfg.TenantID + "/activity/feed",
		origin:      canonicalOrigin(api),
		publisherID: cfg.PublisherID,
		httpClient:  cfg.HTTPClient,
		tokens:      cfg.Tokens,
		maxAttempts: cmpOr(cfg.MaxAttempts, defaultMaxAttempts),
		baseDelay:   cmpOr(cfg.RetryBaseDelay, defaultRetryBaseDelay),
		maxDelay:    cmpOr(cfg.RetryMaxDelay, defaultRetryMaxDelay),
		observe:     cfg.Observe,
		now:         time.Now,
	}
	if c.httpClient == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.ResponseHeaderTimeout = defaultResponseHeaderTimeout
		c.httpClient = &http.Client{Transport: transport}
	}
	if cfg.RequestsPerMinute > 0 {
		// Burst 1 spaces requests evenly, as [BEATS] does, instead of
		// spending a minute's budget at once after an idle spell.
		c.limiter = rate.NewLimiter(rate.Limit(float64(cfg.RequestsPerMinute)/60), 1)
	}
	return c, nil
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// canonicalOrigin is scheme://host:port in lower case with the default port
// spelled out, so that https://Manage.office.com:443 matches https://manage.office.com.
func canonicalOrigin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// ErrForeignHost is wrapped by the error for a next-page URL or contentUri
// that names a host other than the API's: it was refused, and no request
// (so no token) went there.
var ErrForeignHost = errors.New("its host is not the API host")

// sameOriginURL parses raw, resolving it against base when relative, and
// refuses it unless it points at the API host: a URL from a response header
// or body must never receive the bearer token if it names another host.
func (c *Client) sameOriginURL(base *url.URL, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing URL %q: %w", raw, err)
	}
	if !u.IsAbs() && base != nil {
		u = base.ResolveReference(u)
		raw = u.String()
	}
	if canonicalOrigin(u) != c.origin {
		return "", fmt.Errorf("refusing URL %q: %w %s", raw, ErrForeignHost, c.origin)
	}
	return c.withPublisher(raw), nil
}

// withPublisher appends PublisherIdentifier to raw unless its query already
// has it with a value, in any case ([BEATS] sends publisherIdentifier). The
// rest of raw is kept byte for byte but for empty pairs: next-page URLs and
// contentUris are opaque (§3.6).
func (c *Client) withPublisher(raw string) string {
	beforeFragment, fragment, hasFragment := strings.Cut(raw, "#")
	path, query, _ := strings.Cut(beforeFragment, "?")
	var pairs []string
	for pair := range strings.SplitSeq(query, "&") {
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if unescaped, err := url.QueryUnescape(key); err == nil {
			key = unescaped
		}
		if !strings.EqualFold(key, "PublisherIdentifier") {
			pairs = append(pairs, pair)
			continue
		}
		if value != "" {
			return raw
		}
		// An empty one (found by FuzzNextPageURL) would put the request in
		// the shared throttling pool: it is replaced.
	}
	pairs = append(pairs, "PublisherIdentifier="+url.QueryEscape(c.publisherID))
	out := path + "?" + strings.Join(pairs, "&")
	if hasFragment {
		out += "#" + fragment
	}
	return out
}

// feedURLFor builds {feed}/{path}?{query} with PublisherIdentifier.
func (c *Client) feedURLFor(path string, query url.Values) string {
	if query == nil {
		query = url.Values{}
	}
	query.Set("PublisherIdentifier", c.publisherID)
	return c.feedURL + path + "?" + query.Encode()
}

// do sends one logical request, retrying what can be retried, and returns
// a 2xx response whose body the caller must close. Failures are an
// *APIError, a wrapped transport error or the context's error.
func (c *Client) do(ctx context.Context, op, method, target string) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return nil, fmt.Errorf("waiting for the request budget: %w", err)
			}
		}
		token, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("getting an access token: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return nil, fmt.Errorf("building request: %w", err)
		}
		resp, err := c.send(op, req, token)
		if err == nil {
			return resp, nil
		}

		var delay time.Duration
		var apiErr *APIError
		switch {
		case ctx.Err() != nil:
			if errors.Is(err, ctx.Err()) {
				return nil, err
			}
			return nil, fmt.Errorf("%w (last failure: %w)", ctx.Err(), err)
		case errors.As(err, &apiErr):
			switch apiErr.Action() {
			case ActionRefreshToken:
				// A 401 means the token, not the request, is bad: retry at
				// once with a new one.
				c.tokens.Invalidate(token)
			case ActionThrottle, ActionRetry:
				delay = apiErr.RetryAfter
				if delay <= 0 {
					delay = c.backoff(attempt)
				}
				delay = min(delay, c.maxDelay)
			default:
				return nil, apiErr
			}
		default: // transport error or timeout
			delay = c.backoff(attempt)
		}
		if attempt >= c.maxAttempts {
			return nil, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		if waitErr := sleep(ctx, delay); waitErr != nil {
			return nil, fmt.Errorf("waiting to retry: %w (last failure: %w)", waitErr, err)
		}
	}
}

// send makes one HTTP attempt with token.
func (c *Client) send(op string, req *http.Request, token string) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")

	started := c.now()
	resp, err := c.httpClient.Do(req)
	event := RequestEvent{Op: op, Duration: c.now().Sub(started)}
	if err != nil {
		event.Err = fmt.Errorf("%s: %w", op, err)
		c.emit(event)
		return nil, event.Err
	}
	event.Status = resp.StatusCode
	if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		event.ServerDate = date.UTC()
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		c.emit(event)
		return resp, nil
	}
	apiErr := newAPIError(op, resp, c.now())
	resp.Body.Close()
	event.Code, event.Err = apiErr.Code, apiErr
	c.emit(event)
	return nil, apiErr
}

func (c *Client) emit(e RequestEvent) {
	if c.observe != nil {
		c.observe(e)
	}
}

// backoff is the delay before attempt+1: base·2^(attempt-1), capped, with
// "equal jitter" (half fixed, half random) so that content types throttled
// together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseDelay
	for i := 1; i < attempt && d < c.maxDelay; i++ {
		d *= 2
	}
	d = min(d, c.maxDelay)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drainAndClose lets the connection be reused when a body was only partly read.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBodyBytes))
	body.Close()
}
