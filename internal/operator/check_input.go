package operator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/o365connect/o365connect/input"
	"github.com/o365connect/o365connect/input/o365api"
)

// Application permissions of the Office 365 Management APIs (management-api.md §2.1).
const (
	roleRead    = "ActivityFeed.Read"
	roleReadDlp = "ActivityFeed.ReadDlp"
)

// stepTimeout bounds each network step, so that an unreachable host fails
// the step instead of hanging the command.
const stepTimeout = 45 * time.Second

// turnAuditOnFix says how to turn unified audit logging on; both ways are
// Microsoft's documented ones and the service needs up to 60 minutes.
const turnAuditOnFix = "turn auditing on in Microsoft Purview (Audit > Start recording user and admin activity) " +
	"or in Exchange Online PowerShell with Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true " +
	"(Get-AdminAuditLogConfig | Format-List UnifiedAuditLogIngestionEnabled shows the current state); " +
	"it takes up to 60 minutes, then run the check again"

// CheckInput runs the API steps for one office365_activity input, in the
// order a pipeline needs them: token, permissions, subscriptions, unified
// audit log, then content per content type. A step whose prerequisite failed
// is reported as skipped.
func CheckInput(ctx context.Context, settings input.Settings, now time.Time) []StepResult {
	client, tokens, err := settings.NewClient(nil)
	if err != nil {
		return []StepResult{{Step: "token", Status: StatusFailed, Detail: "could not set up the Entra ID client",
			Cause: err.Error(), Fix: "correct the office365_activity settings named in the cause"}}
	}
	tokenResult, token := CheckToken(ctx, tokens, settings)
	results := []StepResult{tokenResult}
	if tokenResult.Status == StatusFailed {
		for _, step := range []string{"permissions", "subscriptions", "unified audit log", "content"} {
			results = append(results, StepResult{Step: step, Status: StatusSkipped, Detail: "needs a token"})
		}
		return results
	}
	permissions, canRead := CheckPermissions(token, settings)
	results = append(results, permissions)
	if !canRead {
		for _, step := range []string{"subscriptions", "unified audit log", "content"} {
			results = append(results, StepResult{Step: step, Status: StatusSkipped, Detail: "needs " + roleRead})
		}
		return results
	}
	subsResult, states := CheckSubscriptions(ctx, client, settings)
	results = append(results, subsResult)
	results = append(results, CheckAuditLog(ctx, client, settings.ContentTypes(), states, now))
	for _, ct := range settings.ContentTypes() {
		results = append(results, CheckContent(ctx, client, ct, states[ct], settings.StartSubscriptions(), now))
	}
	return results
}

// CheckToken gets an app-only token the way the input does. On failure it
// explains Entra ID's AADSTS code in plain words.
func CheckToken(ctx context.Context, tokens o365api.TokenSource, settings input.Settings) (StepResult, string) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	credential := "client secret"
	if settings.UsesCertificate() {
		credential = "certificate"
	}
	login := settings.Endpoints().LoginURL
	token, err := tokens.Token(ctx)
	if err != nil {
		cause, fix := explainTokenError(err, settings)
		return StepResult{Step: "token", Status: StatusFailed,
			Detail: fmt.Sprintf("%s refused or did not answer the token request (%s)", login, credential),
			Cause:  cause, Fix: fix}, ""
	}
	return StepResult{Step: "token", Status: StatusOK,
		Detail: fmt.Sprintf("app-only token issued by %s with the %s (cloud %s)", login, credential, settings.Cloud())}, token
}

// aadstsCode finds Entra ID's error code. MSAL surfaces the token endpoint's
// JSON body only inside its error text, with no typed code, so the text is
// the one place to read it from.
var aadstsCode = regexp.MustCompile(`AADSTS(\d+)`)

// explainTokenError turns a token failure into a cause and a fix.
func explainTokenError(err error, settings input.Settings) (cause, fix string) {
	text := err.Error()
	otherClouds := "if tenant_id is right, the tenant may live in another Microsoft cloud: set cloud to the tenant's (commercial, gcc, gcc_high or dod)"
	m := aadstsCode.FindStringSubmatch(text)
	if m == nil {
		var netErr net.Error
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr), errors.As(err, &netErr), strings.Contains(text, "x509:"), strings.Contains(text, "connection refused"):
			return "Entra ID could not be reached at " + settings.Endpoints().LoginURL + ": " + text,
				"check the network path and proxy (HTTPS_PROXY) to the login host, login_url and cloud, and tls.root_cas_file when a proxy re-signs TLS"
		}
		return "the token request failed: " + text, "check login_url, cloud and the network path to Entra ID"
	}
	code, _ := strconv.Atoi(m[1])
	switch code {
	case 7000215:
		return "the client secret is wrong (AADSTS7000215)",
			"set client_secret to the secret's Value (not its Secret ID) from Entra ID > App registrations > the app > Certificates & secrets; create a new secret if it was lost"
	case 7000222:
		return "the client secret has expired (AADSTS7000222)",
			"create a new client secret under Entra ID > App registrations > the app > Certificates & secrets and set client_secret to its Value"
	case 700016:
		return "no app with client_id exists in this tenant (AADSTS700016)",
			"set client_id to the app's Application (client) ID; for an app registered in another tenant, have an admin of this tenant grant admin consent; " + otherClouds
	case 90002:
		return "Entra ID knows no tenant with this tenant_id (AADSTS90002)",
			"set tenant_id to the Directory (tenant) ID shown on the app's Overview page; " + otherClouds
	case 90038, 900382, 900384, 500011:
		return fmt.Sprintf("the tenant or the Office 365 Management APIs resource lives in another cloud than %s (AADSTS%d)", settings.Cloud(), code),
			"set cloud to the tenant's Microsoft cloud (commercial, gcc, gcc_high or dod) so that the login host, API host and token scope match it"
	case 700027, 700024, 50027, 700023:
		return fmt.Sprintf("the certificate is not accepted: it is not registered on the app, or the assertion signed with it is invalid (AADSTS%d)", code),
			"upload the certificate's public part (.cer/.pem) under Entra ID > App registrations > the app > Certificates & secrets, and check that certificate_file holds that certificate with its private key and that the host clock is right"
	case 7000216:
		return "the request carried no credential (AADSTS7000216)", "set client_secret or certificate_file"
	}
	return fmt.Sprintf("Entra ID refused the token request (AADSTS%d): %s", code, firstLine(text)),
		"look the code up in Microsoft's AADSTS error reference and correct the app registration or the settings it names"
}

// CheckPermissions decodes the token's roles claim (no signature check: the
// token came straight from Entra ID) and says which of ActivityFeed.Read and
// ActivityFeed.ReadDlp are granted. ReadDlp is required when DLP.All is
// collected: without it DLP records carry no detected sensitive values.
// canRead reports whether ActivityFeed.Read is granted, which every later
// step needs.
func CheckPermissions(token string, settings input.Settings) (result StepResult, canRead bool) {
	claims, err := decodeJWTClaims(token)
	if err != nil {
		return StepResult{Step: "permissions", Status: StatusFailed, Detail: "the token could not be read",
			Cause: err.Error(), Fix: "check that login_url points at Entra ID"}, false
	}
	read, readDlp := slices.Contains(claims.Roles, roleRead), slices.Contains(claims.Roles, roleReadDlp)
	granted := func(ok bool, role string) string {
		if ok {
			return role + " is granted"
		}
		return role + " is NOT granted"
	}
	detail := granted(read, roleRead) + ", " + granted(readDlp, roleReadDlp)
	grantFix := "in Entra ID > App registrations > the app > API permissions, add the application permission %s of Office 365 Management APIs, then Grant admin consent; a new token carries it within minutes"
	switch {
	case !read:
		cause := "every Activity API call needs " + roleRead + " (the API answers AF10001 without it)"
		if len(claims.Scopes) > 0 {
			cause += "; the token is a delegated one (scp claim), app-only tokens carry roles"
		}
		return StepResult{Step: "permissions", Status: StatusFailed, Detail: detail, Cause: cause, Fix: fmt.Sprintf(grantFix, roleRead)}, false
	case !readDlp && slices.Contains(settings.ContentTypes(), o365api.ContentTypeDLP):
		return StepResult{Step: "permissions", Status: StatusFailed, Detail: detail,
			Cause: "DLP.All is collected, and without " + roleReadDlp + " its records lack the detected sensitive information",
			Fix:   fmt.Sprintf(grantFix, roleReadDlp) + ", or remove DLP.All from content_types"}, true
	case !readDlp:
		return StepResult{Step: "permissions", Status: StatusOK, Detail: detail + " (needed only for DLP.All)"}, true
	}
	if aud := strings.TrimSuffix(claims.Audience, "/"); aud != "" && !strings.EqualFold(aud, settings.Endpoints().Resource) {
		return StepResult{Step: "permissions", Status: StatusFailed, Detail: detail,
			Cause: fmt.Sprintf("the token is for %s, not for the API at %s", aud, settings.Endpoints().Resource),
			Fix:   "set cloud to the tenant's Microsoft cloud so that the token scope matches the API host"}, true
	}
	return StepResult{Step: "permissions", Status: StatusOK, Detail: detail}, true
}

type jwtClaims struct {
	Roles    []string `json:"roles"`
	Audience string   `json:"aud"`
	Scopes   string   `json:"scp"`
}

// decodeJWTClaims reads a JWT's payload without verifying it.
func decodeJWTClaims(token string) (jwtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtClaims{}, fmt.Errorf("the access token is not a JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return jwtClaims{}, fmt.Errorf("decoding the access token's payload: %w", err)
	}
	var claims jwtClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return jwtClaims{}, fmt.Errorf("decoding the access token's claims: %w", err)
	}
	return claims, nil
}

// Subscription states as the check reports them.
const (
	subEnabled    = "enabled"
	subDisabled   = "disabled"
	subNotStarted = "not started"
)

// CheckSubscriptions lists the tenant's subscriptions and names the
// configured content types that are not enabled. That is a failure only
// when start_subscriptions is false: otherwise the input starts them.
func CheckSubscriptions(ctx context.Context, client *o365api.Client, settings input.Settings) (StepResult, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	states, err := subscriptionStates(ctx, client, settings.ContentTypes())
	if err != nil {
		cause, fix := explainAPIError(err)
		return StepResult{Step: "subscriptions", Status: StatusFailed, Detail: "listing subscriptions failed", Cause: cause, Fix: fix}, nil
	}
	var enabled, missing []string
	for _, ct := range settings.ContentTypes() {
		if states[ct] == subEnabled {
			enabled = append(enabled, ct)
		} else {
			missing = append(missing, ct+" ("+states[ct]+")")
		}
	}
	detail := "enabled: " + listOrNone(enabled)
	if len(missing) == 0 {
		return StepResult{Step: "subscriptions", Status: StatusOK, Detail: detail}, states
	}
	detail += "; not enabled: " + strings.Join(missing, ", ")
	if settings.StartSubscriptions() {
		return StepResult{Step: "subscriptions", Status: StatusWarn,
			Detail: detail + "; the pipeline starts them (start_subscriptions: true), and content can take up to 12 hours to appear"}, states
	}
	return StepResult{Step: "subscriptions", Status: StatusFailed, Detail: detail,
		Cause: "start_subscriptions is false, so the pipeline will not start them, and a content type without an enabled subscription cannot be listed (AF20022/AF20023)",
		Fix:   "run `o365connect subscriptions start -c CONFIG` once, or set start_subscriptions: true; a subscription that was disabled may mean unified audit logging was turned off"}, states
}

// subscriptionStates maps each content type to enabled, disabled or not started.
func subscriptionStates(ctx context.Context, client *o365api.Client, contentTypes []string) (map[string]string, error) {
	subs, err := client.ListSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	states := make(map[string]string, len(contentTypes))
	for _, ct := range contentTypes {
		states[ct] = subNotStarted
	}
	for _, s := range subs {
		if strings.EqualFold(s.Status, subEnabled) {
			states[s.ContentType] = subEnabled
		} else {
			states[s.ContentType] = subDisabled
		}
	}
	return states, nil
}

// auditOffSignature matches what the service answers while unified audit
// logging is off: "Microsoft.Office.Compliance.Audit.DataServiceException:
// Tenant <id> does not exist." (management-api.md §2.1), under more than one
// AF code, so the message is what identifies it.
var auditOffSignature = regexp.MustCompile(`(?i)DataServiceException|tenant \S+ does not exist\.?$`)

// CheckAuditLog probes listing for one content type: the answer tells
// whether unified audit logging is on for the tenant.
func CheckAuditLog(ctx context.Context, client *o365api.Client, contentTypes []string, states map[string]string, now time.Time) StepResult {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	probe := contentTypes[0]
	for _, ct := range contentTypes {
		if states[ct] == subEnabled {
			probe = ct
			break
		}
	}
	err := client.ListContent(ctx, probe, now.Add(-time.Hour), now, func([]o365api.ContentItem) error { return nil })
	if err == nil {
		return StepResult{Step: "unified audit log", Status: StatusOK, Detail: "on (listing " + probe + " answered)"}
	}
	var apiErr *o365api.APIError
	if !errors.As(err, &apiErr) {
		cause, fix := explainAPIError(err)
		return StepResult{Step: "unified audit log", Status: StatusFailed, Detail: "could not be probed", Cause: cause, Fix: fix}
	}
	switch {
	case auditOffSignature.MatchString(apiErr.Message) && apiErr.Code != "AF20011":
		return StepResult{Step: "unified audit log", Status: StatusFailed, Detail: "off",
			Cause: "the API answers \"" + apiErr.Message + "\", which is what it says while unified audit logging is off for the tenant",
			Fix:   turnAuditOnFix}
	case apiErr.Code == "AF20011":
		return StepResult{Step: "unified audit log", Status: StatusFailed, Detail: "the API does not know the tenant (AF20011)",
			Cause: "the tenant does not exist in this cloud, or unified audit logging has never been turned on for it",
			Fix:   "check tenant_id and cloud; if both are right, " + turnAuditOnFix}
	case apiErr.Code == "AF20023":
		return StepResult{Step: "unified audit log", Status: StatusFailed, Detail: "the subscription to " + probe + " is disabled (AF20023)",
			Cause: "a tenant admin disabled the subscription, or unified audit logging was turned off, which disables subscriptions",
			Fix:   "check that auditing is on; if it is off, " + turnAuditOnFix + "; then run `o365connect subscriptions start -c CONFIG`"}
	case apiErr.Code == "AF20022":
		return StepResult{Step: "unified audit log", Status: StatusWarn,
			Detail: "cannot tell until a subscription is started: the API answers AF20022 (no subscription) before it looks at the audit log"}
	}
	cause, fix := explainAPIError(err)
	return StepResult{Step: "unified audit log", Status: StatusFailed, Detail: "listing " + probe + " failed", Cause: cause, Fix: fix}
}

// CheckContent lists the last hour of one content type and fetches the
// newest blob listed, reading it to its end.
func CheckContent(ctx context.Context, client *o365api.Client, contentType, state string, startSubscriptions bool, now time.Time) StepResult {
	step := "content " + contentType
	if state != subEnabled {
		if startSubscriptions {
			return StepResult{Step: step, Status: StatusWarn, Detail: "not listed: the subscription is " + state + " (the pipeline starts it)"}
		}
		return StepResult{Step: step, Status: StatusSkipped, Detail: "needs an enabled subscription"}
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var items []o365api.ContentItem
	err := client.ListContent(ctx, contentType, now.Add(-time.Hour), now, func(page []o365api.ContentItem) error {
		items = append(items, page...)
		return nil
	})
	if err != nil {
		cause, fix := explainAPIError(err)
		return StepResult{Step: step, Status: StatusFailed, Detail: "listing the last hour failed", Cause: cause, Fix: fix}
	}
	if len(items) == 0 {
		return StepResult{Step: step, Status: StatusOK,
			Detail: "no blobs in the last hour (normal for a quiet tenant, or up to 12 hours after a subscription starts)"}
	}
	newest := items[0]
	for _, it := range items[1:] {
		if it.ContentCreated.After(newest.ContentCreated) {
			newest = it
		}
	}
	records, err := countBlobRecords(ctx, client, newest)
	if err != nil {
		cause, fix := explainAPIError(err)
		return StepResult{Step: step, Status: StatusFailed,
			Detail: fmt.Sprintf("%d blobs in the last hour; fetching the newest failed", len(items)), Cause: cause, Fix: fix}
	}
	return StepResult{Step: step, Status: StatusOK,
		Detail: fmt.Sprintf("%d blobs in the last hour; fetched the newest (%d records, created %s)", len(items), records, newest.ContentCreated.UTC().Format(time.RFC3339))}
}

func countBlobRecords(ctx context.Context, client *o365api.Client, item o365api.ContentItem) (int, error) {
	body, err := client.FetchBlob(ctx, item.ContentURI)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	decoder := o365api.NewRecordDecoder(body)
	for n := 0; ; n++ {
		if _, err := decoder.Next(); errors.Is(err, io.EOF) {
			return n, nil
		} else if err != nil {
			return n, fmt.Errorf("decoding blob %s: %w", item.ContentID, err)
		}
	}
}

// explainAPIError turns an Activity API failure into a cause and a fix.
func explainAPIError(err error) (cause, fix string) {
	var apiErr *o365api.APIError
	if errors.As(err, &apiErr) {
		if auditOffSignature.MatchString(apiErr.Message) && apiErr.Code != "AF20011" {
			return "the API answers \"" + apiErr.Message + "\": unified audit logging is off for the tenant", turnAuditOnFix
		}
		if hint := apiErr.Hint(); hint != "" {
			return apiErr.Error(), hint
		}
		switch apiErr.Action() {
		case o365api.ActionThrottle:
			return apiErr.Error(), "the tenant's request budget is used up by this or another reader: wait a minute and check again, and lower max_requests_per_minute"
		case o365api.ActionRetry:
			return apiErr.Error(), "the service failed transiently: check again in a few minutes"
		}
		return apiErr.Error(), "correct the setting the message names"
	}
	text := err.Error()
	if strings.Contains(text, "getting an access token") {
		return text, "see the token step"
	}
	return text, "check the network path and proxy (HTTPS_PROXY) to the API host, api_url and cloud, and tls.root_cas_file when a proxy re-signs TLS"
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
