package o365api

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Content types of the Management Activity API.
const (
	ContentTypeAzureActiveDirectory = "Audit.AzureActiveDirectory"
	ContentTypeExchange             = "Audit.Exchange"
	ContentTypeSharePoint           = "Audit.SharePoint"
	ContentTypeGeneral              = "Audit.General"
	ContentTypeDLP                  = "DLP.All"
)

// AllContentTypes lists every content type, in the order the docs list them.
var AllContentTypes = []string{
	ContentTypeAzureActiveDirectory, ContentTypeExchange, ContentTypeSharePoint, ContentTypeGeneral, ContentTypeDLP,
}

// Cloud names a Microsoft 365 cloud whose hosts and token scope differ.
type Cloud string

// Clouds the API is offered in.
const (
	CloudCommercial Cloud = "commercial"
	CloudGCC        Cloud = "gcc"
	CloudGCCHigh    Cloud = "gcc_high"
	CloudDoD        Cloud = "dod"
)

// Endpoints are the hosts and token resource of one cloud.
type Endpoints struct {
	APIURL   string // scheme + host of the Activity API, e.g. https://manage.office.com
	LoginURL string // scheme + host of Entra ID, e.g. https://login.microsoftonline.com
	Resource string // token audience, e.g. https://manage.office.com
}

// Scope is the MSAL v2 scope for the resource: Resource + "/.default".
func (e Endpoints) Scope() string { return e.Resource + "/.default" }

// TokenSource hands out bearer tokens for the Activity API.
type TokenSource interface {
	// Token returns a valid access token, from cache when possible.
	Token(ctx context.Context) (string, error)
	// Invalidate tells the source that token was rejected (HTTP 401), so the
	// next Token call must fetch a new one rather than return it again.
	Invalidate(token string)
}

// Config configures a Client for one tenant.
type Config struct {
	TenantID    string
	PublisherID string // PublisherIdentifier on every request; defaults to TenantID
	APIURL      string // scheme + host; the client appends /api/v1.0/{tenant}/activity/feed/...
	HTTPClient  *http.Client
	Tokens      TokenSource
	// RequestsPerMinute paces every request of this client (the tenant's
	// budget, shared by its content types). 0 means no pacing.
	RequestsPerMinute int
	// MaxAttempts bounds attempts of one request for retryable failures
	// (throttling, 5xx, 408, timeouts, a 401 with a refreshed token). Default 5.
	MaxAttempts int
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
}

// Subscription is one entry of subscriptions/list.
type Subscription struct {
	ContentType string `json:"contentType"`
	Status      string `json:"status"`
}

// ContentItem is one available content blob from subscriptions/content.
type ContentItem struct {
	ContentType       string
	ContentID         string
	ContentURI        string
	ContentCreated    time.Time // UTC
	ContentExpiration time.Time // UTC
}

// Record is one audit record decoded from a blob. Raw is the record's
// original JSON bytes, unchanged; the other fields are read from it.
type Record struct {
	Raw          []byte
	ID           string
	RecordType   string // the raw JSON value as text, e.g. "15" (unknown values kept)
	Operation    string
	Workload     string
	CreationTime time.Time // UTC; zero when absent or unparseable
}

var (
	_ = (*Client).ListSubscriptions
	_ = (*Client).StartSubscription
	_ = (*Client).StopSubscription
	_ = (*Client).ListContent
	_ = (*Client).FetchBlob
	_ = NewRecordDecoder
	_ = (*RecordDecoder).Next
	_ = New
	_ = CloudEndpoints
	_ = NewMSALTokenSource
	_ = ParseTime
	_ = (*APIError).Action
	_ io.Reader
)

// The signatures the input relies on (implemented elsewhere in the package):
//
//	func CloudEndpoints(c Cloud) (Endpoints, error)
//	func New(cfg Config) (*Client, error)
//	func (c *Client) ListSubscriptions(ctx context.Context) ([]Subscription, error)
//	func (c *Client) StartSubscription(ctx context.Context, contentType string) (Subscription, error) // AF20024 is success
//	func (c *Client) StopSubscription(ctx context.Context, contentType string) error
//	// ListContent lists [start, end) and calls page once per page, following
//	// NextPageUri/NextPageUrl verbatim (re-adding PublisherIdentifier); it
//	// refuses a next-page URL on a host other than APIURL's.
//	func (c *Client) ListContent(ctx context.Context, contentType string, start, end time.Time, page func([]ContentItem) error) error
//	// FetchBlob GETs contentURI (adding PublisherIdentifier) and returns the
//	// body as a stream; it refuses a URI on a host other than APIURL's.
//	func (c *Client) FetchBlob(ctx context.Context, contentURI string) (io.ReadCloser, error)
//	func NewRecordDecoder(r io.Reader) *RecordDecoder
//	func (d *RecordDecoder) Next() (Record, error) // io.EOF after the last record
//	func ParseTime(s string) (time.Time, error)    // every API time shape, as UTC
//	type MSALConfig struct { TenantID, ClientID, LoginURL, Scope, ClientSecret string; CertificatePEM []byte; HTTPClient *http.Client; DisableInstanceDiscovery bool }
//	func NewMSALTokenSource(cfg MSALConfig) (TokenSource, error)
//	type APIError struct { Op string; Status int; Code, Message string; RetryAfter time.Duration }
//	func (e *APIError) Action() Action
//	type Action int // ActionFail, ActionRetry, ActionThrottle, ActionResubscribe, ActionClampWindow, ActionSkipContent, ActionAlreadyEnabled, ActionRefreshToken
