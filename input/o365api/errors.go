package o365api

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// APIError is a non-2xx answer of the Activity API. Callers find it with
// errors.As and decide what to do from Action, never from the message text.
type APIError struct {
	Op         string        // operation, one of the Op* constants
	Status     int           // HTTP status
	Code       string        // AF code from the body, e.g. "AF20022"; empty when the body had none
	Message    string        // the service's message, or the start of a non-JSON body
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
}

// Error describes the failure, e.g. "list_content: HTTP 403 AF429: Too many requests...".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": HTTP ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Action says what a caller should do about e: the AF code decides when the
// table knows it, whatever the HTTP status (AF429 arrives as 403 or 429);
// otherwise the status does.
func (e *APIError) Action() Action {
	if a, ok := afCodeActions[e.Code]; ok {
		return a
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		return ActionRefreshToken
	case e.Status == http.StatusTooManyRequests:
		return ActionThrottle
	case e.Status == http.StatusRequestTimeout || e.Status >= 500:
		return ActionRetry
	case e.Status == http.StatusNotFound && e.Op == OpFetchBlob:
		// [BEATS] treats a blob 404 without an AF code as gone and skips it.
		return ActionSkipContent
	default:
		return ActionFail
	}
}

// Hint is a plain-words fix for failures an operator can correct, or "" when
// there is nothing specific to say.
func (e *APIError) Hint() string {
	// Until unified audit logging is on, the service answers with
	// "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant <id>
	// does not exist." (management-api.md §2.1), under more than one code.
	if strings.Contains(e.Message, "DataServiceException") || tenantDoesNotExist.MatchString(e.Message) {
		return "unified audit logging looks turned off for this tenant: turn it on in Microsoft Purview (Audit) " +
			"or with Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true; it takes up to 60 minutes to apply"
	}
	if h, ok := afCodeHints[e.Code]; ok {
		return h
	}
	if e.Code == "" && e.Status == http.StatusUnauthorized {
		return "the access token was rejected: check that the app registration, tenant and cloud match the API host"
	}
	return ""
}

var tenantDoesNotExist = regexp.MustCompile(`(?i)tenant \S+ does not exist`)

// Action is what a caller should do about an APIError.
type Action int

// Actions, from the least to the most specific.
const (
	// ActionFail: the request cannot succeed as configured; stop and report.
	ActionFail Action = iota
	// ActionRetry: a transient server failure; retry after a backoff.
	ActionRetry
	// ActionThrottle: the tenant's request budget is used up; wait
	// (RetryAfter when set) before any further request.
	ActionThrottle
	// ActionResubscribe: the subscription is missing or disabled; start it
	// again, then retry.
	ActionResubscribe
	// ActionClampWindow: the time window was refused; shrink it to at most
	// 24 h, starting at most 7 days ago and before its end, then retry.
	ActionClampWindow
	// ActionSkipContent: this content blob is gone, expired or invalid; skip it.
	ActionSkipContent
	// ActionAlreadyEnabled: the subscription is already on; treat as success.
	ActionAlreadyEnabled
	// ActionRefreshToken: the token was rejected; get a new one and retry.
	ActionRefreshToken
	// ActionRelistWindow: the nextPage token has gone stale; following it
	// again cannot succeed, so list the window again from its first page.
	ActionRelistWindow
)

var actionNames = [...]string{
	ActionFail:           "fail",
	ActionRetry:          "retry",
	ActionThrottle:       "throttle",
	ActionResubscribe:    "resubscribe",
	ActionClampWindow:    "clamp_window",
	ActionSkipContent:    "skip_content",
	ActionAlreadyEnabled: "already_enabled",
	ActionRefreshToken:   "refresh_token",
	ActionRelistWindow:   "relist_window",
}

// String is the action's snake_case name, for logs and metric labels.
func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Retryable reports whether repeating the same request later may succeed.
func (a Action) Retryable() bool {
	return a == ActionRetry || a == ActionThrottle || a == ActionRefreshToken
}

// afCodeActions is the one table of every AF code (management-api.md §7) and
// what the client does with it. HTTP statuses per code are mostly
// undocumented, so the code decides and the status is only a fallback.
var afCodeActions = map[string]Action{
	"AF10001": ActionFail,           // the token lacks the ActivityFeed.Read permission
	"AF20001": ActionFail,           // a required parameter is missing
	"AF20002": ActionFail,           // a parameter has the wrong type (int, datetime, guid)
	"AF20003": ActionFail,           // the webhook expiration is in the past
	"AF20010": ActionFail,           // the tenant in the URL is not the tenant of the token
	"AF20011": ActionFail,           // the tenant does not exist or was deleted
	"AF20012": ActionFail,           // the tenant is misconfigured
	"AF20013": ActionFail,           // the tenant in the URL is not a valid GUID
	"AF20020": ActionFail,           // the content type is not valid
	"AF20021": ActionFail,           // the webhook could not be validated
	"AF20022": ActionResubscribe,    // no subscription exists for the content type
	"AF20023": ActionResubscribe,    // the subscription was disabled by an admin
	"AF20024": ActionAlreadyEnabled, // undocumented: start on an enabled subscription, nothing changed (HTTP 400, §3.3)
	"AF20030": ActionClampWindow,    // start/end not both given, more than 24 h apart, or start over 7 days ago
	"AF20031": ActionRelistWindow,   // the nextPage token was refused: [BEATS] retries, but the same token stays stale
	"AF20050": ActionSkipContent,    // the content does not exist
	"AF20051": ActionSkipContent,    // the content has expired (older than 7 days)
	"AF20052": ActionSkipContent,    // the content ID in the URL is invalid
	"AF20053": ActionFail,           // more than one language in Accept-Language (friendly names only)
	"AF20054": ActionFail,           // Accept-Language is malformed (friendly names only)
	"AF20055": ActionClampWindow,    // like AF20030, plus start must be before end
	"AF429":   ActionThrottle,       // too many requests; documented as HTTP 403, 429 also seen (§6)
	"AF50000": ActionRetry,          // internal server error
	"AF50005": ActionRetry,          // undocumented internal error; [BEATS] retries
	"AF50006": ActionRetry,          // undocumented internal error; [BEATS] retries
}

// afCodeHints are operator-facing fixes for codes caused by configuration.
var afCodeHints = map[string]string{
	"AF10001": "grant the app registration the application permission ActivityFeed.Read of Office 365 Management APIs, then grant admin consent",
	"AF20010": "tenant_id does not match the tenant the token was issued for: use the same tenant for the API and for Entra ID",
	"AF20011": "the tenant does not exist or was deleted: check tenant_id and the cloud",
	"AF20013": "tenant_id must be the tenant's GUID, not its domain name",
	"AF20020": "the content type must be one of " + strings.Join(AllContentTypes, ", "),
	"AF20022": "no subscription exists for this content type: start it (it takes up to 12 hours before content appears)",
	"AF20023": "the subscription was disabled by an admin: starting it again re-enables it",
	"AF20030": "the time window must be at most 24 hours, start before its end and at most 7 days ago: check the host clock",
	"AF20051": "the content is older than 7 days and can no longer be retrieved",
	"AF20055": "the time window must be at most 24 hours, start before its end and at most 7 days ago: check the host clock",
	"AF429":   "the tenant's request budget is used up: lower the request rate, and set the PublisherIdentifier to your own tenant GUID so requests do not share the common pool",
}

const (
	// maxErrorBodyBytes bounds how much of an error body is read: an error
	// page from a proxy can be large and says nothing more past its start.
	maxErrorBodyBytes = 64 << 10
	// maxErrorMessageBytes bounds the message kept in an APIError.
	maxErrorMessageBytes = 512
)

// afCodePattern finds an AF code in a body that is not the documented JSON,
// e.g. the docs' own sample {'error':{'code':'AF429',...}} in single quotes.
var afCodePattern = regexp.MustCompile(`\bAF\d{3,5}\b`)

// newAPIError reads (a bounded prefix of) the body of a non-2xx response.
func newAPIError(op string, resp *http.Response, now time.Time) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	e := &APIError{Op: op, Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	e.Code, e.Message = parseErrorBody(body)
	return e
}

// parseErrorBody understands {"error":{"code":..,"message":..}} (the AF
// layer), {"Message":..} (ASP.NET's 401 before the AF layer) and any text.
func parseErrorBody(body []byte) (code, message string) {
	var doc struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"Message"`
	}
	if err := json.Unmarshal(body, &doc); err == nil {
		var inner struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var text string
		switch {
		case json.Unmarshal(doc.Error, &inner) == nil && (inner.Code != "" || inner.Message != ""):
			return inner.Code, truncateMessage(inner.Message)
		case json.Unmarshal(doc.Error, &text) == nil && text != "":
			return "", truncateMessage(text)
		case doc.Message != "":
			return "", truncateMessage(doc.Message)
		}
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	return afCodePattern.FindString(text), truncateMessage(text)
}

func truncateMessage(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxErrorMessageBytes {
		return s
	}
	cut := maxErrorMessageBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date. The API
// does not document the header (management-api.md §6); it is honoured when sent.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
