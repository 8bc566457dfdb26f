package o365api

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAFCodeActions(t *testing.T) {
	// Written out again, not derived from afCodeActions, so that a changed
	// row of the table has to change here too.
	want := map[string]Action{
		"AF10001": ActionFail,
		"AF20001": ActionFail, "AF20002": ActionFail, "AF20003": ActionFail,
		"AF20010": ActionFail, "AF20011": ActionFail, "AF20012": ActionFail, "AF20013": ActionFail,
		"AF20020": ActionFail, "AF20021": ActionFail,
		"AF20022": ActionResubscribe, "AF20023": ActionResubscribe,
		"AF20024": ActionAlreadyEnabled,
		"AF20030": ActionClampWindow, "AF20055": ActionClampWindow,
		"AF20031": ActionRelistWindow,
		"AF20050": ActionSkipContent, "AF20051": ActionSkipContent, "AF20052": ActionSkipContent,
		"AF20053": ActionFail, "AF20054": ActionFail,
		"AF429":   ActionThrottle,
		"AF50000": ActionRetry, "AF50005": ActionRetry, "AF50006": ActionRetry,
	}
	assert.Len(t, afCodeActions, len(want), "every code of the table is tested")
	for code, action := range want {
		// The code decides whatever the status: AF429 comes as 403 or 429,
		// AF20024 as 400, AF10001 possibly as 401.
		for _, status := range []int{400, 401, 403, 404, 429, 500, 503} {
			e := &APIError{Op: OpListContent, Status: status, Code: code}
			assert.Equal(t, action, e.Action(), "%s as HTTP %d", code, status)
		}
	}
}

func TestStatusFallbackActions(t *testing.T) {
	tests := []struct {
		op     string
		status int
		code   string
		want   Action
	}{
		{OpListContent, 401, "", ActionRefreshToken},
		{OpListContent, 408, "", ActionRetry},
		{OpListContent, 429, "", ActionThrottle},
		{OpListContent, 500, "", ActionRetry},
		{OpListContent, 502, "", ActionRetry},
		{OpListContent, 503, "", ActionRetry},
		{OpListContent, 504, "", ActionRetry},
		{OpListContent, 400, "", ActionFail},
		{OpListContent, 403, "", ActionFail},
		{OpListContent, 404, "", ActionFail},
		{OpFetchBlob, 404, "", ActionSkipContent},
		{OpListContent, 400, "AF99999", ActionFail},
		{OpListContent, 503, "AF99999", ActionRetry},
	}
	for _, tt := range tests {
		e := &APIError{Op: tt.op, Status: tt.status, Code: tt.code}
		assert.Equal(t, tt.want, e.Action(), "%s HTTP %d %q", tt.op, tt.status, tt.code)
	}
}

func TestActionNames(t *testing.T) {
	names := map[string]bool{}
	for a := ActionFail; a <= ActionRefreshToken; a++ {
		name := a.String()
		assert.NotContains(t, name, "action(", "%d has a name", a)
		assert.False(t, names[name], "%q is unique", name)
		names[name] = true
	}
	assert.Equal(t, "clamp_window", ActionClampWindow.String())
	assert.Equal(t, "action(99)", Action(99).String())
	assert.True(t, ActionThrottle.Retryable())
	assert.False(t, ActionResubscribe.Retryable())
}

func TestNewAPIErrorParsesBodies(t *testing.T) {
	now := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		status      int
		header      http.Header
		body        string
		wantCode    string
		wantMessage string
		wantRetry   time.Duration
		wantError   string
	}{
		{
			name:        "AF429 as 403",
			status:      403,
			body:        `{"error":{"code":"AF429","message":"Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000"}}`,
			wantCode:    "AF429",
			wantMessage: "Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000",
			wantError:   "list_content: HTTP 403 AF429: Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000",
		},
		{
			name:        "AF429 as 429 with Retry-After seconds",
			status:      429,
			header:      http.Header{"Retry-After": {"30"}},
			body:        `{"error":{"code":"AF429","message":"Too many requests."}}`,
			wantCode:    "AF429",
			wantMessage: "Too many requests.",
			wantRetry:   30 * time.Second,
			wantError:   "list_content: HTTP 429 AF429: Too many requests.",
		},
		{
			name:      "Retry-After as an HTTP date",
			status:    503,
			header:    http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}},
			body:      ``,
			wantRetry: 90 * time.Second,
			wantError: "list_content: HTTP 503",
		},
		{
			name:   "Retry-After unreadable",
			status: 503,
			header: http.Header{"Retry-After": {"soon"}},
			body:   `upstream connect error`, wantMessage: "upstream connect error",
			wantError: "list_content: HTTP 503: upstream connect error",
		},
		{
			name:        "ASP.NET 401 before the AF layer",
			status:      401,
			body:        `{"Message":"Authorization has been denied for this request."}`,
			wantMessage: "Authorization has been denied for this request.",
			wantError:   "list_content: HTTP 401: Authorization has been denied for this request.",
		},
		{
			name:        "the docs' single-quoted sample",
			status:      403,
			body:        `{'error':{'code':'AF429','message':'Too many requests. Method=GetBlob'}}`,
			wantCode:    "AF429",
			wantMessage: `{'error':{'code':'AF429','message':'Too many requests. Method=GetBlob'}}`,
		},
		{
			name:        "HTML from a proxy, whitespace collapsed",
			status:      502,
			body:        "<html>\n  <body>Bad   Gateway</body>\n</html>",
			wantMessage: "<html> <body>Bad Gateway</body> </html>",
		},
		{
			name:        "error as a string",
			status:      400,
			body:        `{"error":"invalid_request"}`,
			wantMessage: "invalid_request",
		},
		{
			name:        "code outside the table",
			status:      400,
			body:        `{"error":{"code":"AF20099","message":"Something new."}}`,
			wantCode:    "AF20099",
			wantMessage: "Something new.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: tt.header, Body: io.NopCloser(strings.NewReader(tt.body))}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			e := newAPIError(OpListContent, resp, now)
			assert.Equal(t, tt.status, e.Status)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Equal(t, tt.wantMessage, e.Message)
			assert.Equal(t, tt.wantRetry, e.RetryAfter)
			if tt.wantError != "" {
				assert.Equal(t, tt.wantError, e.Error())
			}
		})
	}
}

func TestNewAPIErrorBoundsTheBody(t *testing.T) {
	huge := strings.Repeat("x", 10*maxErrorBodyBytes)
	body := &countingReader{r: strings.NewReader(huge)}
	resp := &http.Response{StatusCode: 500, Header: http.Header{}, Body: io.NopCloser(body)}

	e := newAPIError(OpFetchBlob, resp, time.Now())

	assert.LessOrEqual(t, body.n, maxErrorBodyBytes)
	assert.LessOrEqual(t, len(e.Message), maxErrorMessageBytes+len("…"))
	assert.True(t, strings.HasSuffix(e.Message, "…"))
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestHints(t *testing.T) {
	tests := []struct {
		name string
		err  APIError
		want string // substring; "" means no hint
	}{
		{"missing permission", APIError{Status: 401, Code: "AF10001"}, "ActivityFeed.Read"},
		{"audit logging off", APIError{Status: 400, Code: "AF20023", Message: "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant " + testTenant + " does not exist."}, "unified audit logging"},
		{"audit logging off without the exception name", APIError{Status: 500, Message: "Tenant " + testTenant + " does not exist."}, "unified audit logging"},
		{"disabled subscription", APIError{Status: 400, Code: "AF20023", Message: "The subscription was disabled by a tenant admin."}, "re-enables"},
		{"throttled", APIError{Status: 403, Code: "AF429"}, "PublisherIdentifier"},
		{"bare 401", APIError{Status: 401}, "token was rejected"},
		{"server error", APIError{Status: 500, Code: "AF50000"}, ""},
	}
	for _, tt := range tests {
		hint := tt.err.Hint()
		if tt.want == "" {
			assert.Empty(t, hint, tt.name)
			continue
		}
		require.NotEmpty(t, hint, tt.name)
		assert.Contains(t, hint, tt.want, tt.name)
	}
}
