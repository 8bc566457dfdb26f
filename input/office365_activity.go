package input

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/input/o365api"
)

const (
	oaFieldTenantID             = "tenant_id"
	oaFieldClientID             = "client_id"
	oaFieldClientSecret         = "client_secret"
	oaFieldCertificateFile      = "certificate_file"
	oaFieldCloud                = "cloud"
	oaFieldContentTypes         = "content_types"
	oaFieldStartSubscriptions   = "start_subscriptions"
	oaFieldPublisherID          = "publisher_id"
	oaFieldBackfill             = "backfill"
	oaFieldPollInterval         = "poll_interval"
	oaFieldMaxConcurrentFetches = "max_concurrent_fetches"
	oaFieldMaxRequestsPerMinute = "max_requests_per_minute"
	oaFieldCheckpointCache      = "checkpoint_cache"
	oaFieldAPIURL               = "api_url"
	oaFieldLoginURL             = "login_url"
	oaFieldTLS                  = "tls"
	oaFieldLookback             = "lookback"
	oaFieldMaxBatchRecords      = "max_batch_records"
	oaFieldMaxBatchBytes        = "max_batch_bytes"
	oaFieldBlobAttempts         = "blob_attempts"
	oaFieldDeadLetter           = "dead_letter"
	oaFieldDeadLetterMaxBytes   = "dead_letter_max_bytes"
	oaFieldDedupe               = "dedupe"
	oaFieldDedupeMaxEntries     = "dedupe_max_entries"
)

// Metadata keys set on every message.
const (
	MetaTenantID       = "o365_tenant_id"
	MetaContentType    = "o365_content_type"
	MetaContentID      = "o365_content_id"
	MetaContentCreated = "o365_content_created"
	MetaWorkload       = "o365_workload"
	MetaRecordType     = "o365_record_type"
	MetaOperation      = "o365_operation"
	MetaRecordID       = "o365_record_id"
	MetaCreationTime   = "o365_creation_time"
)

// Metadata keys of a dead-letter message (one per blob that could not be
// decoded or fetched safely), besides tenant, content type, content id and
// content created.
const (
	MetaDeadLetter           = "dead_letter"
	MetaDeadLetterError      = "o365_dead_letter_error"
	MetaDeadLetterContentURI = "o365_content_uri"
	MetaDeadLetterFromRecord = "o365_dead_letter_from_record"
	MetaDeadLetterTruncated  = "o365_dead_letter_truncated"
)

const (
	maxBackfill           = 168 * time.Hour
	minPollInterval       = time.Second
	maxConcurrentFetches  = 64
	maxRequestsPerMinute  = 60000
	defaultLookback       = 2 * time.Hour
	defaultMaxBatchRecord = 500
	defaultMaxBatchBytes  = 4 << 20
	// defaultDeadLetterMax stays under Kafka's default 1 MiB message limit
	// with room for headers.
	defaultDeadLetterMax = 900 << 10
)

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func office365ActivitySpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Streams the Microsoft 365 unified audit log from the Office 365 Management Activity API.").
		Description(`
Polls `+"`subscriptions/content`"+` for every configured content type, fetches each content blob
(up to `+"`max_concurrent_fetches`"+` at once, paced under `+"`max_requests_per_minute`"+` for the tenant)
and emits its audit records. One message is one audit record: its content is the record's
original JSON bytes, unchanged.

Blobs are decoded as a stream, so memory stays bounded whatever a blob's size: a blob is emitted as
one batch, or as several batches of at most `+"`max_batch_records`"+` records / `+"`max_batch_bytes`"+` bytes.

### Delivery and checkpoints

Delivery is at-least-once. The position of each content type is kept in memory and written to the
`+"`checkpoint_cache`"+` resource only for work that downstream has acknowledged; acknowledgements may
arrive in any order and only the acknowledged part is ever recorded. After a crash, a restart
re-delivers at most what was not yet acknowledged and skips nothing. Use the `+"`checkpoint_file`"+` cache,
which writes atomically; Benthos' `+"`file`"+` cache is not safe for this.

Listing walks windows of at most 23 hours (the API refuses 24), never older than the API's 7-day
retention and never into the future. Once caught up, every poll lists again the trailing
`+"`lookback`"+` because content can become listable late for a window already listed; blobs already
delivered are skipped by contentId.

### Errors

The AF error code is read from the body whatever the HTTP status. Throttling (AF429, as 403 or 429)
backs off and honours `+"`Retry-After`"+`; 401 refreshes the token; 5xx and timeouts back off
exponentially. An expired or deleted blob (AF20050, AF20051) is counted, logged and skipped. A
malformed or truncated blob is fetched again from the first record not yet emitted, and goes to the
dead-letter path when it keeps failing. When the local clock and the API's `+"`Date`"+` header differ by
more than a minute, listing windows follow the API's clock. A stale `+"`NextPageUri`"+` (AF20031) makes
the window be listed again from its start.

### Dead letters and duplicates

A blob whose body stays truncated or malformed after `+"`blob_attempts`"+` fetches, or whose contentUri
names a host other than the API's (refused at once: the bearer token never goes there), is emitted
as ONE dead-letter message: its content is the raw blob body as far as it could be read (at most
`+"`dead_letter_max_bytes`"+`), with the metadata `+"`dead_letter: true`"+`, `+"`o365_content_id`"+`,
`+"`o365_content_type`"+`, `+"`o365_content_uri`"+`, `+"`o365_content_created`"+`, `+"`o365_dead_letter_error`"+`,
`+"`o365_dead_letter_from_record`"+` (records before this index were emitted normally) and
`+"`o365_dead_letter_truncated`"+`. Once it is acknowledged the blob counts as delivered. Route it with
a `+"`switch`"+` on `+"`@dead_letter`"+`. With `+"`dead_letter: false`"+` such a blob is retried every poll
until it expires instead.

The same record (same `+"`Id`"+`) in several blobs is emitted once: Ids are kept as 16 bytes in hourly
buckets of `+"`CreationTime`"+`, forgotten after 8 days or, oldest first, past `+"`dedupe_max_entries`"+`.
Memory is about 25 MB per million Ids. The memory does not survive a restart.

### Metadata

- `+"`o365_tenant_id`"+`: the tenant GUID.
- `+"`o365_content_type`"+`: the content type the record was listed under, e.g. `+"`Audit.Exchange`"+`.
- `+"`o365_content_id`"+`: the contentId of the blob that held the record.
- `+"`o365_content_created`"+`: when the blob became available (RFC 3339, UTC).
- `+"`o365_workload`"+`: the record's `+"`Workload`"+`, e.g. `+"`Exchange`"+`, `+"`OneDrive`"+`.
- `+"`o365_record_type`"+`: the record's `+"`RecordType`"+` as sent, e.g. `+"`15`"+`.
- `+"`o365_operation`"+`: the record's `+"`Operation`"+`.
- `+"`o365_record_id`"+`: the record's `+"`Id`"+`, the key to deduplicate on.
- `+"`o365_creation_time`"+`: the record's `+"`CreationTime`"+` as RFC 3339 UTC (empty when unparseable).

### Metrics

`+"`o365_records_total{tenant_id,content_type,outcome}`"+` (emitted, acked, nacked),
`+"`o365_blobs_total{tenant_id,content_type,outcome}`"+` (delivered, skipped_gone, refetched, failed, dead_lettered),
`+"`o365_duplicates_dropped_total{tenant_id,content_type}`"+`, `+"`o365_dedupe_evicted_total{tenant_id}`"+`,
`+"`o365_api_requests_total{tenant_id,op,status,code}`"+`, `+"`o365_throttles_total{tenant_id,op}`"+`,
`+"`o365_blobs_pending{tenant_id,content_type}`"+`,
`+"`o365_newest_delivered_age_seconds{tenant_id,content_type}`"+` and
`+"`o365_checkpoint_writes_total{tenant_id,outcome}`"+`.
`).
		Fields(
			service.NewStringField(oaFieldTenantID).
				Description("The Entra ID tenant (directory) ID, a GUID.").
				Example("00000000-0000-0000-0000-000000000000"),
			service.NewStringField(oaFieldClientID).
				Description("The application (client) ID of the Entra app registration, a GUID.").
				Example("00000000-0000-0000-0000-000000000000"),
			service.NewStringField(oaFieldClientSecret).
				Description("A client secret of the app. Exactly one of `client_secret` and `certificate_file` must be set.").
				Secret().
				Default(""),
			service.NewStringField(oaFieldCertificateFile).
				Description("A PEM file holding the app's certificate and its unencrypted RSA private key. Exactly one of `client_secret` and `certificate_file` must be set.").
				Default(""),
			service.NewStringEnumField(oaFieldCloud, string(o365api.CloudCommercial), string(o365api.CloudGCC), string(o365api.CloudGCCHigh), string(o365api.CloudDoD)).
				Description("The Microsoft 365 cloud: sets the API host, the Entra ID host and the token scope together.").
				Default(string(o365api.CloudCommercial)),
			service.NewStringListField(oaFieldContentTypes).
				Description("The content types to collect.").
				Default(append([]any(nil), stringsToAny(o365api.AllContentTypes)...)),
			service.NewBoolField(oaFieldStartSubscriptions).
				Description("Start the subscription of every configured content type that is not enabled (at start-up, and again when the API reports it missing or disabled, at most once per 15 minutes per content type). When false, a missing subscription is an error naming the content type.").
				Default(true),
			service.NewStringField(oaFieldPublisherID).
				Description("The `PublisherIdentifier` sent on every request, which gives the requests their own throttling pool: the GUID of the tenant that runs this collector. Defaults to `tenant_id`.").
				Default(""),
			service.NewDurationField(oaFieldBackfill).
				Description("On a first run (no checkpoint), how far back to collect. At most 168h, the API's retention.").
				Default("24h"),
			service.NewDurationField(oaFieldPollInterval).
				Description("How often to list new content once caught up.").
				Default("1m"),
			service.NewIntField(oaFieldMaxConcurrentFetches).
				Description("How many blobs to fetch at once, across content types.").
				Default(8),
			service.NewIntField(oaFieldMaxRequestsPerMinute).
				Description("The request budget of this tenant, shared by all its content types. Stay under the tenant's API limit (2,000/min at baseline), leaving room for other readers of the audit log.").
				Default(1800),
			service.NewStringField(oaFieldCheckpointCache).
				Description("The name of a cache resource that stores the checkpoint. Use a `checkpoint_file` cache.").
				Default("o365_checkpoints"),
			service.NewStringField(oaFieldAPIURL).
				Description("Scheme and host replacing the cloud's API host, e.g. `https://127.0.0.1:8443`; the client appends `/api/v1.0/{tenant}/activity/feed/...`.").
				Advanced().
				Default(""),
			service.NewStringField(oaFieldLoginURL).
				Description("Scheme and host replacing the cloud's Entra ID host; the authority is `login_url + \"/\" + tenant_id`. Setting it turns MSAL's instance discovery off.").
				Advanced().
				Default(""),
			service.NewTLSToggledField(oaFieldTLS).
				Description("Custom TLS settings for both the API and the Entra ID hosts."),
			service.NewDurationField(oaFieldLookback).
				Description("How much of the already listed time every poll lists again, to catch content that becomes listable late.").
				Advanced().
				Default(defaultLookback.String()),
			service.NewIntField(oaFieldMaxBatchRecords).
				Description("The most records in one batch; a larger blob is emitted as several batches.").
				Advanced().
				Default(defaultMaxBatchRecord),
			service.NewIntField(oaFieldMaxBatchBytes).
				Description("The most record bytes in one batch; a larger blob is emitted as several batches.").
				Advanced().
				Default(defaultMaxBatchBytes),
			service.NewIntField(oaFieldBlobAttempts).
				Description("How many times a blob that fails (truncated, malformed, server errors) is fetched in a row. A blob whose body still fails goes to the dead-letter path (see `dead_letter`); one whose requests still fail (5xx, timeouts) is set aside until the next poll and stays in the checkpoint until delivered or expired.").
				Advanced().
				Default(5),
			service.NewBoolField(oaFieldDeadLetter).
				Description("Emit a blob that cannot be decoded after `blob_attempts` fetches, or whose contentUri names a foreign host, as one dead-letter message (metadata `dead_letter: true`) instead of retrying it until it expires.").
				Default(true),
			service.NewIntField(oaFieldDeadLetterMaxBytes).
				Description("The most bytes of a failed blob's body a dead-letter message carries.").
				Advanced().
				Default(defaultDeadLetterMax),
			service.NewBoolField(oaFieldDedupe).
				Description("Drop a record whose `Id` was already emitted from another blob in the last 8 days (the API repeats records by design). Dropped records are counted in `o365_duplicates_dropped_total`.").
				Default(true),
			service.NewIntField(oaFieldDedupeMaxEntries).
				Description("The most record Ids the deduplication remembers (about 25 bytes each); past it the oldest hour is forgotten early and counted in `o365_dedupe_evicted_total`.").
				Advanced().
				Default(defaultDedupeMaxEntries),
			service.NewAutoRetryNacksToggleField(),
		).
		LintRule(`root = match {
  this.client_secret.or("") == "" && this.certificate_file.or("") == "" => ["one of client_secret or certificate_file must be set"],
  this.client_secret.or("") != "" && this.certificate_file.or("") != "" => ["only one of client_secret or certificate_file may be set"],
}`).
		Example("Collect every content type", "Client-secret auth, checkpoints in a local folder.", `
input:
  office365_activity:
    tenant_id: ${O365_TENANT_ID}
    client_id: ${O365_CLIENT_ID}
    client_secret: ${O365_CLIENT_SECRET}
    checkpoint_cache: o365_checkpoints

cache_resources:
  - label: o365_checkpoints
    checkpoint_file:
      directory: ./state/checkpoints
`)
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func init() {
	service.MustRegisterBatchInput("office365_activity", office365ActivitySpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			cfg, err := office365ActivityConfigFromParsed(conf)
			if err != nil {
				return nil, err
			}
			in, err := newOffice365ActivityInput(cfg, mgr)
			if err != nil {
				return nil, err
			}
			return service.AutoRetryNacksBatchedToggled(conf, in)
		})
}

// office365ActivityConfig is the validated configuration of the input.
type office365ActivityConfig struct {
	TenantID             string
	ClientID             string
	ClientSecret         string
	CertificatePEM       []byte
	Endpoints            o365api.Endpoints
	CustomLoginURL       bool
	ContentTypes         []string
	StartSubscriptions   bool
	PublisherID          string
	Backfill             time.Duration
	PollInterval         time.Duration
	MaxConcurrentFetches int
	MaxRequestsPerMinute int
	CheckpointCache      string
	TLS                  *tls.Config
	Lookback             time.Duration
	MaxBatchRecords      int
	MaxBatchBytes        int
	BlobAttempts         int
	DeadLetter           bool
	DeadLetterMaxBytes   int
	Dedupe               bool
	DedupeMaxEntries     int
}

func office365ActivityConfigFromParsed(conf *service.ParsedConfig) (cfg office365ActivityConfig, err error) {
	if cfg.TenantID, err = guidField(conf, oaFieldTenantID); err != nil {
		return cfg, err
	}
	if cfg.ClientID, err = guidField(conf, oaFieldClientID); err != nil {
		return cfg, err
	}
	if cfg.ClientSecret, err = conf.FieldString(oaFieldClientSecret); err != nil {
		return cfg, err
	}
	certFile, err := conf.FieldString(oaFieldCertificateFile)
	if err != nil {
		return cfg, err
	}
	switch {
	case cfg.ClientSecret == "" && certFile == "":
		return cfg, fmt.Errorf("%s or %s: one of them must be set", oaFieldClientSecret, oaFieldCertificateFile)
	case cfg.ClientSecret != "" && certFile != "":
		return cfg, fmt.Errorf("%s and %s: set only one of them", oaFieldClientSecret, oaFieldCertificateFile)
	case certFile != "":
		if cfg.CertificatePEM, err = os.ReadFile(certFile); err != nil {
			return cfg, fmt.Errorf("%s: reading %q: %w", oaFieldCertificateFile, certFile, err)
		}
	}

	cloud, err := conf.FieldString(oaFieldCloud)
	if err != nil {
		return cfg, err
	}
	if cfg.Endpoints, err = o365api.CloudEndpoints(o365api.Cloud(cloud)); err != nil {
		return cfg, fmt.Errorf("%s: %w", oaFieldCloud, err)
	}
	if apiURL, err := hostURLField(conf, oaFieldAPIURL); err != nil {
		return cfg, err
	} else if apiURL != "" {
		cfg.Endpoints.APIURL = apiURL
	}
	if loginURL, err := hostURLField(conf, oaFieldLoginURL); err != nil {
		return cfg, err
	} else if loginURL != "" {
		cfg.Endpoints.LoginURL = loginURL
		cfg.CustomLoginURL = true
	}

	if cfg.ContentTypes, err = conf.FieldStringList(oaFieldContentTypes); err != nil {
		return cfg, err
	}
	if len(cfg.ContentTypes) == 0 {
		return cfg, fmt.Errorf("%s: at least one content type is needed, from %s", oaFieldContentTypes, strings.Join(o365api.AllContentTypes, ", "))
	}
	seen := map[string]bool{}
	for i, ct := range cfg.ContentTypes {
		if !o365api.IsContentType(ct) {
			return cfg, fmt.Errorf("%s[%d]: %q is not one of %s", oaFieldContentTypes, i, ct, strings.Join(o365api.AllContentTypes, ", "))
		}
		if seen[ct] {
			return cfg, fmt.Errorf("%s[%d]: %q is listed twice", oaFieldContentTypes, i, ct)
		}
		seen[ct] = true
	}

	if cfg.StartSubscriptions, err = conf.FieldBool(oaFieldStartSubscriptions); err != nil {
		return cfg, err
	}
	if cfg.PublisherID, err = conf.FieldString(oaFieldPublisherID); err != nil {
		return cfg, err
	}
	if cfg.PublisherID == "" {
		cfg.PublisherID = cfg.TenantID
	} else if !guidPattern.MatchString(cfg.PublisherID) {
		return cfg, fmt.Errorf("%s: %q is not a GUID", oaFieldPublisherID, cfg.PublisherID)
	}

	if cfg.Backfill, err = durationField(conf, oaFieldBackfill, time.Minute, maxBackfill); err != nil {
		return cfg, err
	}
	if cfg.PollInterval, err = durationField(conf, oaFieldPollInterval, minPollInterval, 24*time.Hour); err != nil {
		return cfg, err
	}
	if cfg.Lookback, err = durationField(conf, oaFieldLookback, 0, maxBackfill); err != nil {
		return cfg, err
	}
	if cfg.MaxConcurrentFetches, err = intField(conf, oaFieldMaxConcurrentFetches, 1, maxConcurrentFetches); err != nil {
		return cfg, err
	}
	if cfg.MaxRequestsPerMinute, err = intField(conf, oaFieldMaxRequestsPerMinute, 1, maxRequestsPerMinute); err != nil {
		return cfg, err
	}
	if cfg.MaxBatchRecords, err = intField(conf, oaFieldMaxBatchRecords, 1, 100000); err != nil {
		return cfg, err
	}
	if cfg.MaxBatchBytes, err = intField(conf, oaFieldMaxBatchBytes, 1024, 1<<30); err != nil {
		return cfg, err
	}
	if cfg.BlobAttempts, err = intField(conf, oaFieldBlobAttempts, 1, 100); err != nil {
		return cfg, err
	}
	if cfg.DeadLetter, err = conf.FieldBool(oaFieldDeadLetter); err != nil {
		return cfg, err
	}
	if cfg.DeadLetterMaxBytes, err = intField(conf, oaFieldDeadLetterMaxBytes, 0, 1<<30); err != nil {
		return cfg, err
	}
	if cfg.Dedupe, err = conf.FieldBool(oaFieldDedupe); err != nil {
		return cfg, err
	}
	if cfg.DedupeMaxEntries, err = intField(conf, oaFieldDedupeMaxEntries, 1000, 1<<30); err != nil {
		return cfg, err
	}
	if cfg.CheckpointCache, err = conf.FieldString(oaFieldCheckpointCache); err != nil {
		return cfg, err
	}
	if cfg.CheckpointCache == "" {
		return cfg, fmt.Errorf("%s: must name a cache resource", oaFieldCheckpointCache)
	}
	tlsConf, tlsEnabled, err := conf.FieldTLSToggled(oaFieldTLS)
	if err != nil {
		return cfg, err
	}
	if tlsEnabled {
		cfg.TLS = tlsConf
	}
	return cfg, nil
}

func guidField(conf *service.ParsedConfig, name string) (string, error) {
	v, err := conf.FieldString(name)
	if err != nil {
		return "", err
	}
	if !guidPattern.MatchString(v) {
		return "", fmt.Errorf("%s: %q is not a GUID (expected the form 00000000-0000-0000-0000-000000000000)", name, v)
	}
	return strings.ToLower(v), nil
}

func hostURLField(conf *service.ParsedConfig, name string) (string, error) {
	v, err := conf.FieldString(name)
	if err != nil || v == "" {
		return "", err
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not a URL: %w", name, v, err)
	}
	// https only: a bearer token or a client secret never crosses the
	// network in clear, and MSAL refuses http:// authorities anyway.
	if u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return "", fmt.Errorf("%s: %q must be https:// and a host only, e.g. https://127.0.0.1:8443", name, v)
	}
	return u.Scheme + "://" + u.Host, nil
}

func durationField(conf *service.ParsedConfig, name string, lo, hi time.Duration) (time.Duration, error) {
	d, err := conf.FieldDuration(name)
	if err != nil {
		return 0, err
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s: %v is out of range, must be between %v and %v", name, d, lo, hi)
	}
	return d, nil
}

func intField(conf *service.ParsedConfig, name string, lo, hi int) (int, error) {
	n, err := conf.FieldInt(name)
	if err != nil {
		return 0, err
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s: %d is out of range, must be between %d and %d", name, n, lo, hi)
	}
	return n, nil
}

// httpClient is shared by the token source and the API client, so that one
// TLS configuration (and one proxy setting from the environment) covers both.
func (cfg office365ActivityConfig) httpClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = cfg.TLS
	transport.ResponseHeaderTimeout = 2 * time.Minute
	transport.MaxIdleConnsPerHost = cfg.MaxConcurrentFetches + len(cfg.ContentTypes)
	return &http.Client{Transport: transport}
}
