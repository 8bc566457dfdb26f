package o365sim

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of the simulated tenant and app registration.
const (
	// DefaultTenantID is the tenant GUID used when Config.TenantID is empty.
	DefaultTenantID = "6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13"
	// DefaultClientID is the app (client) ID used when Config.ClientID is empty.
	DefaultClientID = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	// DefaultClientSecret is the client secret used when Config.ClientSecret is empty.
	DefaultClientSecret = "o365sim~s3cr3t.V4lue_For-Tests"
	// Resource is the token audience of the Activity API (v1 resource).
	Resource = "https://manage.office.com"
	// Scope is the v2 scope MSAL asks for.
	Scope = Resource + "/.default"
	// RoleRead is the application permission every Activity API call needs.
	RoleRead = "ActivityFeed.Read"
	// RoleReadDlp lets DLP.All records carry the detected sensitive values.
	RoleReadDlp = "ActivityFeed.ReadDlp"
	// MaxHistory is how far back content can exist (and be listed): mgmt-api §5.
	MaxHistory = 7 * 24 * time.Hour
)

// Content types of the Management Activity API (mgmt-api §3.1).
const (
	ContentTypeAzureActiveDirectory = "Audit.AzureActiveDirectory"
	ContentTypeExchange             = "Audit.Exchange"
	ContentTypeSharePoint           = "Audit.SharePoint"
	ContentTypeGeneral              = "Audit.General"
	ContentTypeDLP                  = "DLP.All"
)

// ContentTypes lists every content type in documentation order.
var ContentTypes = []string{
	ContentTypeAzureActiveDirectory, ContentTypeExchange, ContentTypeSharePoint, ContentTypeGeneral, ContentTypeDLP,
}

// Config configures a Server. The zero value is a usable simulator.
type Config struct {
	// TenantID, ClientID and ClientSecret identify the tenant and the app
	// registration; they default to DefaultTenantID, DefaultClientID and
	// DefaultClientSecret.
	TenantID, ClientID, ClientSecret string
	// ClientCertificate, when set, is the registered certificate that
	// client-assertion JWTs must be signed with.
	ClientCertificate *x509.Certificate
	// Roles are the application permissions put in issued tokens (default
	// ActivityFeed.Read and ActivityFeed.ReadDlp). Drop RoleRead to get
	// AF10001, drop RoleReadDlp to get DLP records without detected values.
	Roles []string
	// Seed makes the synthetic tenant deterministic.
	Seed int64
	// Now is the clock (default time.Now). Content becomes listable as it
	// advances.
	Now func() time.Time
	// History is how long before New's Now content starts (default 24h,
	// max 7 days). Blobs keep being created every BlobInterval after that,
	// each becoming listable once Now reaches its contentCreated.
	History time.Duration
	// BlobInterval is the spacing of blobs of one content type (default 15m).
	BlobInterval time.Duration
	// RecordsPerBlob is the average number of records of a blob (default
	// 20); it varies deterministically per blob, some blobs hold 1 record.
	RecordsPerBlob int
	// DuplicatesEvery, when >= 2, makes every Nth blob of a content type
	// repeat up to 2 records of its predecessor (same Id), as the real feed
	// does (mgmt-api §3.6). ExpectedRecord.Duplicate marks the repeats.
	DuplicatesEvery int
	// HugeBlobRecords, when > 0, makes the oldest blob of HugeBlobContentType
	// hold that many records, streamed and never buffered (Audit.General
	// records average about 0.8 KB: 80,000 records is about 64 MB).
	HugeBlobRecords int
	// HugeBlobContentType is the content type of the huge blob (default
	// Audit.General).
	HugeBlobContentType string
	// PageSize is the number of items per subscriptions/content page
	// (default 50); longer listings carry a NextPageUri header.
	PageSize int
	// SubscribedAtStart lists the content types whose subscription is
	// enabled from the start (default none).
	SubscribedAtStart []string
	// ThrottleStatus is the HTTP status of AF429 responses: 403 (default, as
	// documented) or 429 (as seen in the field), mgmt-api §6.
	ThrottleStatus int
	// RequestsPerMinute is the per-tenant API request budget per minute
	// (default 2000, the documented baseline); negative means unlimited.
	RequestsPerMinute int
	// RetryAfter, when > 0, is sent as Retry-After (whole seconds, rounded
	// up) on throttle responses.
	RetryAfter time.Duration
	// TokenLifetime is the access token lifetime (expires_in, default
	// 3599s). MSAL refetches on every call below 5 minutes.
	TokenLifetime time.Duration
	// StartTimeTolerance is how much older than 7 days a listing start may
	// be before AF20055 (default 1h: beats saw about 7d+1h accepted).
	StartTimeTolerance time.Duration
}

// Server is a running (or runnable) simulator. Its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	origin  time.Time // contentCreated base of historic blob 0
	handler http.Handler
	tokKey  []byte // HMAC key of issued access tokens
	users   []user

	caPEM   []byte
	tlsCert tls.Certificate

	mu       sync.Mutex
	url      string
	srv      *http.Server
	ln       net.Listener
	subs     map[string]string // content type -> "enabled" | "disabled"
	added    []*blob           // AddBlob / late / duplicate blobs, in order of addition
	addedIdx map[string]*blob  // by content ID
	faults   []*faultState
	stats    Stats
	throttle throttleWindow
}

// New validates cfg, fills in defaults and builds a Server. Call Start to
// serve it on a TLS listener, or mount Handler yourself.
func New(cfg Config) (*Server, error) {
	if cfg.TenantID == "" {
		cfg.TenantID = DefaultTenantID
	}
	if !isGUID(cfg.TenantID) {
		return nil, fmt.Errorf("tenant ID %q is not a GUID", cfg.TenantID)
	}
	cfg.TenantID = strings.ToLower(cfg.TenantID)
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.Roles == nil {
		cfg.Roles = []string{RoleRead, RoleReadDlp}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.History == 0 {
		cfg.History = 24 * time.Hour
	}
	if cfg.History < 0 || cfg.History > MaxHistory {
		return nil, fmt.Errorf("history %s is not within (0, %s]", cfg.History, MaxHistory)
	}
	if cfg.BlobInterval == 0 {
		cfg.BlobInterval = 15 * time.Minute
	}
	if cfg.BlobInterval < time.Second {
		return nil, fmt.Errorf("blob interval %s is shorter than 1s", cfg.BlobInterval)
	}
	if cfg.RecordsPerBlob == 0 {
		cfg.RecordsPerBlob = 20
	}
	if cfg.RecordsPerBlob < 0 {
		return nil, fmt.Errorf("records per blob %d is negative", cfg.RecordsPerBlob)
	}
	if cfg.DuplicatesEvery == 1 || cfg.DuplicatesEvery < 0 {
		// Every blob repeating its predecessor would chain back to blob 0.
		return nil, fmt.Errorf("duplicates every %d: must be 0 (off) or >= 2", cfg.DuplicatesEvery)
	}
	if cfg.HugeBlobContentType == "" {
		cfg.HugeBlobContentType = ContentTypeGeneral
	}
	if ctIndex(cfg.HugeBlobContentType) < 0 {
		return nil, fmt.Errorf("huge blob content type %q is not one of %s", cfg.HugeBlobContentType, strings.Join(ContentTypes, ", "))
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 50
	}
	if cfg.PageSize < 0 {
		return nil, fmt.Errorf("page size %d is negative", cfg.PageSize)
	}
	switch cfg.ThrottleStatus {
	case 0:
		cfg.ThrottleStatus = http.StatusForbidden
	case http.StatusForbidden, http.StatusTooManyRequests:
	default:
		return nil, fmt.Errorf("throttle status %d is not 403 or 429", cfg.ThrottleStatus)
	}
	if cfg.RequestsPerMinute == 0 {
		cfg.RequestsPerMinute = 2000
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = 3599 * time.Second
	}
	if cfg.StartTimeTolerance == 0 {
		cfg.StartTimeTolerance = time.Hour
	}
	s := &Server{
		cfg:      cfg,
		subs:     map[string]string{},
		addedIdx: map[string]*blob{},
		tokKey:   make([]byte, 32),
	}
	for _, ct := range cfg.SubscribedAtStart {
		if ctIndex(ct) < 0 {
			return nil, fmt.Errorf("subscribed content type %q is not one of %s", ct, strings.Join(ContentTypes, ", "))
		}
		s.subs[ct] = subEnabled
	}
	// Whole milliseconds: contentCreated is rendered with millisecond precision.
	s.origin = cfg.Now().UTC().Add(-cfg.History).Truncate(time.Millisecond)
	if _, err := rand.Read(s.tokKey); err != nil {
		return nil, fmt.Errorf("generating token key: %w", err)
	}
	if err := s.generateServerCert(); err != nil {
		return nil, err
	}
	s.makeUsers()
	s.stats = newStats()
	s.handler = s.routes()
	return s, nil
}

// Start serves the simulator over TLS on addr, which must be a loopback
// address such as "127.0.0.1:0" ("" means that).
func (s *Server) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parsing listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen address %q is not a loopback address", addr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(tls.NewListener(ln, tlsCfg)) //nolint:errcheck // returns ErrServerClosed on Close
	return nil
}

// URL is the https base URL of the started listener, e.g.
// https://127.0.0.1:PORT. It serves both Entra ID (URL()+"/"+tenant) and the
// API (URL()+"/api/v1.0/"+tenant+"/activity/feed"). Empty before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// TenantID is the simulated tenant GUID.
func (s *Server) TenantID() string { return s.cfg.TenantID }

// ClientID is the registered app (client) ID.
func (s *Server) ClientID() string { return s.cfg.ClientID }

// ClientSecret is the registered client secret.
func (s *Server) ClientSecret() string { return s.cfg.ClientSecret }

// APIRoot is the Activity API root of the tenant:
// URL()+"/api/v1.0/{tenant}/activity/feed".
func (s *Server) APIRoot() string {
	return s.URL() + "/api/v1.0/" + s.cfg.TenantID + "/activity/feed"
}

// Authority is the MSAL authority of the tenant: URL()+"/"+tenant.
func (s *Server) Authority() string { return s.URL() + "/" + s.cfg.TenantID }

// Handler is the simulator's HTTP handler, for mounting on another server.
// Absolute URLs it emits then use the request's Host.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPClient returns a client that trusts CACertPEM.
func (s *Server) HTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		Timeout:   time.Minute,
	}
}

// Close stops the listener and closes open connections. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("closing server: %w", err)
	}
	return nil
}

// SetSubscription enables or disables the subscription of contentType, as a
// tenant admin would: listing and retrieval of a disabled one fail with
// AF20023.
func (s *Server) SetSubscription(contentType string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if enabled {
		s.subs[contentType] = subEnabled
	} else {
		s.subs[contentType] = subDisabled
	}
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func ctIndex(ct string) int {
	for i, c := range ContentTypes {
		if c == ct {
			return i
		}
	}
	return -1
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
