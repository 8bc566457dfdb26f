package o365sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	subEnabled  = "enabled"
	subDisabled = "disabled"
	// maxWindow is the widest content window (mgmt-api §3.6); exactly 24h
	// is accepted here, although one field report saw it rejected.
	maxWindow = 24 * time.Hour
	// contentTimeLayout renders contentCreated/contentExpiration with
	// milliseconds and a Z, as the samples do (mgmt-api §3.6).
	contentTimeLayout = "2006-01-02T15:04:05.000Z"
	// pageTimeLayout keeps full precision in NextPageUri windows so the
	// next page repeats the window exactly.
	pageTimeLayout = "2006-01-02T15:04:05.9999999Z"
	zeroGUID       = "00000000-0000-0000-0000-000000000000"
)

// HTTP statuses of AF codes. Most are undocumented (mgmt-api §7); the
// documented or field-reported ones are noted.
var afStatus = map[string]int{
	"AF10001": http.StatusForbidden,
	"AF20001": http.StatusBadRequest,
	"AF20002": http.StatusBadRequest,
	"AF20003": http.StatusBadRequest,
	"AF20010": http.StatusForbidden,
	"AF20013": http.StatusBadRequest,
	"AF20020": http.StatusBadRequest,
	"AF20021": http.StatusBadRequest,
	"AF20022": http.StatusBadRequest, // beats test fixture
	"AF20023": http.StatusBadRequest, // 3P tests
	"AF20024": http.StatusBadRequest, // undocumented but widely reported
	"AF20030": http.StatusBadRequest,
	"AF20031": http.StatusBadRequest,
	"AF20050": http.StatusNotFound, // beats treats 404 as gone
	"AF20051": http.StatusBadRequest,
	"AF20052": http.StatusBadRequest,
	"AF20055": http.StatusBadRequest, // 3P
}

func writeAFError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeAF(w http.ResponseWriter, code, msg string) { writeAFError(w, afStatus[code], code, msg) }

// writeDenied is the ASP.NET answer to a missing or bad bearer token,
// sent before any AF check (mgmt-api §7).
func writeDenied(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/common/oauth2/authorize", error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"Message": "Authorization has been denied for this request."})
}

// apiReq is an authenticated Activity API request.
type apiReq struct {
	q         map[string]string // query, names lower-cased (mgmt-api §3.1: match case-insensitively)
	tenant    string
	publisher string
	claims    tokenClaims
	fault     *Fault
	base      string
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /{tenant}/oauth2/token", s.op(OpToken, s.handleToken))
	mux.Handle("POST /{tenant}/oauth2/v2.0/token", s.op(OpToken, s.handleToken))
	mux.Handle("GET /{tenant}/v2.0/.well-known/openid-configuration", s.op(OpOpenIDConfiguration, s.handleOpenIDConfig))
	mux.Handle("GET /{tenant}/.well-known/openid-configuration", s.op(OpOpenIDConfiguration, s.handleOpenIDConfig))
	const feed = "/api/{ver}/{tenant}/activity/feed/"
	mux.Handle("POST "+feed+"subscriptions/start", s.api(OpStartSubscription, s.handleStart))
	mux.Handle("POST "+feed+"subscriptions/stop", s.api(OpStopSubscription, s.handleStop))
	mux.Handle("GET "+feed+"subscriptions/list", s.api(OpListSubscriptions, s.handleList))
	mux.Handle("GET "+feed+"subscriptions/content", s.api(OpListContent, s.handleContent))
	mux.Handle("GET "+feed+"subscriptions/notifications", s.api(OpListNotifications, s.handleNotifications))
	mux.Handle("GET "+feed+"audit/{contentId}", s.api(OpGetBlob, s.handleBlob))
	mux.Handle("GET "+feed+"resources/dlpSensitiveTypes", s.api(OpDlpSensitiveTypes, s.handleSensitiveTypes))
	mux.Handle("/", s.op(OpUnknown, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"Message": "No HTTP resource was found that matches the request URI."})
	}))
	return mux
}

// baseURL is URL() once started, else derived from the request (Handler
// mounted elsewhere).
func (s *Server) baseURL(r *http.Request) string {
	if u := s.URL(); u != "" {
		return u
	}
	return "https://" + r.Host
}

// api wraps an Activity API handler with the checks every call gets, in
// the order the service applies them (mgmt-api §10): bearer token, tenant
// GUID (AF20013), tenant vs token (AF20010), roles (AF10001); then the
// per-tenant throttle and injected faults.
func (s *Server) api(op Op, h func(http.ResponseWriter, *http.Request, *apiReq)) http.Handler {
	return s.op(op, func(w http.ResponseWriter, r *http.Request) {
		q := map[string]string{}
		for k, vs := range r.URL.Query() {
			if lk := strings.ToLower(k); len(vs) > 0 {
				if _, dup := q[lk]; !dup {
					q[lk] = vs[0]
				}
			}
		}
		req := &apiReq{q: q, tenant: r.PathValue("tenant"), publisher: q["publisheridentifier"], base: s.baseURL(r)}
		if req.publisher == "" {
			s.mu.Lock()
			s.stats.WithoutPublisherID++
			s.mu.Unlock()
		}
		if v := r.PathValue("ver"); v != "v1.0" && v != "v1" {
			writeJSON(w, http.StatusNotFound, map[string]string{"Message": "No HTTP resource was found that matches the request URI."})
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, tok, _ := strings.Cut(auth, " ")
		claims, ok := s.verifyAccessToken(strings.TrimSpace(tok))
		if !strings.EqualFold(scheme, "Bearer") || !ok {
			writeDenied(w)
			return
		}
		req.claims = claims
		if !isGUID(req.tenant) {
			writeAF(w, "AF20013", fmt.Sprintf("The tenant ID passed in the URL (%s) is not a valid GUID.", req.tenant))
			return
		}
		if !strings.EqualFold(req.tenant, claims.tid) {
			writeAF(w, "AF20010", fmt.Sprintf("The tenant ID passed in the URL (%s) does not match the tenant ID passed in the access token (%s).", req.tenant, claims.tid))
			return
		}
		if !claims.roles[RoleRead] {
			writeAF(w, "AF10001", "The permission set () sent in the request does not include the expected permission ActivityFeed.Read.")
			return
		}
		if !s.allow(req.tenant) {
			s.throttled(w, op, req.publisher, nil)
			return
		}
		fr := faultReq{op: op, ct: q["contenttype"], nextPage: q["nextpage"] != ""}
		if op == OpGetBlob {
			fr.id = r.PathValue("contentId")
			if p, ok := parseContentID(fr.id); ok {
				fr.ct = ContentTypes[p.ctIdx]
			}
		}
		if f := s.takeFaultReq(fr); f != nil {
			switch f.Kind {
			case FaultThrottle:
				s.throttled(w, op, req.publisher, f)
				return
			case FaultSubscriptionDisabled:
				writeAF(w, "AF20023", "The subscription was disabled by a tenant admin.")
				return
			case FaultInternalError, FaultUnavailable, FaultUnauthorized, FaultStatus, FaultInvalidClient:
				s.writeGenericFault(w, f)
				return
			}
			req.fault = f
		}
		h(w, r, req)
	})
}

// allow counts one request against the tenant's per-minute budget (a fixed
// window on the simulated clock, mgmt-api §6).
func (s *Server) allow(string) bool {
	if s.cfg.RequestsPerMinute < 0 {
		return true
	}
	minute := s.now().Truncate(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.throttle.start.Equal(minute) {
		s.throttle = throttleWindow{start: minute}
	}
	s.throttle.count++
	return s.throttle.count <= s.cfg.RequestsPerMinute
}

// throttleWindow is the current minute of the request budget.
type throttleWindow struct {
	start time.Time
	count int
}

// throttled answers AF429. The documented status is 403; 429 is seen in the
// field (mgmt-api §6). The message says PublisherId, not PublisherIdentifier.
func (s *Server) throttled(w http.ResponseWriter, op Op, publisher string, f *Fault) {
	s.mu.Lock()
	s.stats.Throttled++
	s.mu.Unlock()
	if publisher == "" {
		publisher = zeroGUID
	}
	status := s.cfg.ThrottleStatus
	if f != nil {
		status = f.status(status)
	}
	s.writeRetryAfter(w, f)
	writeAFError(w, status, "AF429", fmt.Sprintf("Too many requests. Method=%s, PublisherId=%s", op, publisher))
}

// contentTypeParam validates contentType; ok is false once an error is
// written (AF20020 for an unknown one).
func contentTypeParam(w http.ResponseWriter, req *apiReq) (string, bool) {
	ct, present := req.q["contenttype"]
	if !present || ct == "" {
		writeAF(w, "AF20001", "A required parameter is missing: contentType.")
		return "", false
	}
	if ctIndex(ct) < 0 {
		writeAF(w, "AF20020", "The content type specified is not valid.")
		return "", false
	}
	return ct, true
}

// subscribed checks that ct may be listed and retrieved: AF20022 when never
// started, AF20023 when disabled (mgmt-api §3.5, §7).
func (s *Server) subscribed(w http.ResponseWriter, ct string) bool {
	s.mu.Lock()
	st := s.subs[ct]
	s.mu.Unlock()
	switch st {
	case subEnabled:
		return true
	case subDisabled:
		writeAF(w, "AF20023", "The subscription was disabled by a tenant admin.")
	default:
		writeAF(w, "AF20022", "No subscription found for the specified content type.")
	}
	return false
}

type subscriptionJSON struct {
	ContentType string          `json:"contentType"`
	Status      string          `json:"status"`
	Webhook     json.RawMessage `json:"webhook"`
}

// handleStart enables a subscription. Webhooks are accepted but never
// validated, so they stay null in responses, as an unvalidated webhook does
// (mgmt-api §3.5).
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request, req *apiReq) {
	ct, ok := contentTypeParam(w, req)
	if !ok {
		return
	}
	var body struct {
		Webhook *struct {
			Address    string  `json:"address"`
			AuthID     string  `json:"authId"`
			Expiration *string `json:"expiration"`
		} `json:"webhook"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			writeAF(w, "AF20002", "Invalid parameter type: webhook. Expected type: object.")
			return
		}
	}
	if wh := body.Webhook; wh != nil {
		if !strings.HasPrefix(strings.ToLower(wh.Address), "https://") {
			writeAF(w, "AF20021", fmt.Sprintf("The webhook endpoint {%s} could not be validated. The address must begin with HTTPS.", wh.Address))
			return
		}
		if wh.Expiration != nil && *wh.Expiration != "" {
			if t, err := parseAPITime(*wh.Expiration); err == nil && t.Before(s.now()) {
				writeAF(w, "AF20003", fmt.Sprintf("Expiration %s provided is set to past date and time.", *wh.Expiration))
				return
			}
		}
	}
	s.mu.Lock()
	already := s.subs[ct] == subEnabled
	if !already || body.Webhook != nil {
		s.subs[ct] = subEnabled
	}
	s.mu.Unlock()
	if already && body.Webhook == nil {
		// Undocumented AF20024: a start with nothing to change is an HTTP
		// 400 that clients must treat as success (mgmt-api §3.3).
		writeAF(w, "AF20024", "The subscription is already enabled. No property change.")
		return
	}
	writeJSON(w, http.StatusOK, subscriptionJSON{ContentType: ct, Status: subEnabled, Webhook: json.RawMessage("null")})
}

func (s *Server) handleStop(w http.ResponseWriter, _ *http.Request, req *apiReq) {
	ct, ok := contentTypeParam(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	_, known := s.subs[ct]
	if known {
		s.subs[ct] = subDisabled
	}
	s.mu.Unlock()
	if !known {
		writeAF(w, "AF20022", "No subscription found for the specified content type.")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleList(w http.ResponseWriter, _ *http.Request, _ *apiReq) {
	out := []subscriptionJSON{}
	s.mu.Lock()
	for _, ct := range ContentTypes {
		if st, ok := s.subs[ct]; ok {
			out = append(out, subscriptionJSON{ContentType: ct, Status: st, Webhook: json.RawMessage("null")})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// parseAPITime accepts the documented YYYY-MM-DD, YYYY-MM-DDTHH:MM and
// YYYY-MM-DDTHH:MM:SS forms plus what clients send in practice: a fraction
// and/or a trailing Z (mgmt-api §3.6). Times are UTC.
func parseAPITime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	s := strings.TrimSuffix(strings.TrimSuffix(v, "Z"), "z")
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a datetime", v)
}

// window reads and checks startTime/endTime (mgmt-api §3.6): both or
// neither (AF20030), start before end and at most 24h apart (AF20055),
// start at most 7 days (+ tolerance) ago (AF20055). Without times it is the
// last 24h.
func (s *Server) window(w http.ResponseWriter, req *apiReq) (start, end time.Time, ok bool) {
	now := s.now()
	st, hasS := req.q["starttime"]
	et, hasE := req.q["endtime"]
	if hasS != hasE {
		writeAF(w, "AF20030", "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.")
		return start, end, false
	}
	if !hasS {
		return now.Add(-maxWindow), now, true
	}
	var err error
	if start, err = parseAPITime(st); err != nil {
		writeAF(w, "AF20002", "Invalid parameter type: startTime. Expected type: datetime.")
		return start, end, false
	}
	if end, err = parseAPITime(et); err != nil {
		writeAF(w, "AF20002", "Invalid parameter type: endTime. Expected type: datetime.")
		return start, end, false
	}
	if !start.Before(end) || end.Sub(start) > maxWindow || start.Before(now.Add(-MaxHistory-s.cfg.StartTimeTolerance)) {
		writeAF(w, "AF20055", "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time prior to end time and start time no more than 7 days in the past.")
		return start, end, false
	}
	return start, end, true
}

type contentJSON struct {
	ContentType       string `json:"contentType"`
	ContentID         string `json:"contentId"`
	ContentURI        string `json:"contentUri"`
	ContentCreated    string `json:"contentCreated"`
	ContentExpiration string `json:"contentExpiration"`
}

// handleContent lists available content in [startTime, endTime) on
// contentCreated, in order of availability, PageSize items per page with
// an absolute NextPageUri header carrying the same window and nextPage.
func (s *Server) handleContent(w http.ResponseWriter, r *http.Request, req *apiReq) {
	ct, ok := contentTypeParam(w, req)
	if !ok || !s.subscribed(w, ct) {
		return
	}
	start, end, ok := s.window(w, req)
	if !ok {
		return
	}
	from := pos{avail: -1 << 63}
	if np, has := req.q["nextpage"]; has {
		p, ok := parsePageToken(np)
		if !ok || (req.fault != nil && req.fault.Kind == FaultStaleNextPage) {
			writeAF(w, "AF20031", fmt.Sprintf("Invalid nextPage Input: %s.", np))
			return
		}
		from = p
	}
	if req.fault != nil && req.fault.Kind == FaultEmptyPage {
		writeJSON(w, http.StatusOK, []contentJSON{})
		return
	}
	blobs := s.listable(ctIndex(ct), start, end, s.now(), from, s.cfg.PageSize+1)
	if len(blobs) > s.cfg.PageSize {
		next := blobs[s.cfg.PageSize].pos()
		v := url.Values{}
		v.Set("contentType", ct)
		v.Set("startTime", start.Format(pageTimeLayout))
		v.Set("endTime", end.Format(pageTimeLayout))
		v.Set("nextPage", formatPageToken(next))
		if req.publisher != "" {
			v.Set("PublisherIdentifier", req.publisher)
		}
		w.Header().Set("NextPageUri", req.base+"/api/v1.0/"+req.tenant+"/activity/feed/subscriptions/content?"+v.Encode())
		blobs = blobs[:s.cfg.PageSize]
	}
	if req.fault != nil && req.fault.Kind == FaultForeignNextPage {
		w.Header().Set("NextPageUri", req.fault.URL+"/api/v1.0/"+req.tenant+"/activity/feed/subscriptions/content?contentType="+
			url.QueryEscape(ct)+"&nextPage="+formatPageToken(pos{}))
	}
	out := make([]contentJSON, 0, len(blobs))
	for _, b := range blobs {
		ci := s.info(b, req.base)
		out = append(out, contentJSON{
			ContentType: ci.ContentType, ContentID: ci.ContentID, ContentURI: ci.ContentURI,
			ContentCreated:    ci.ContentCreated.Format(contentTimeLayout),
			ContentExpiration: ci.ContentExpiration.Format(contentTimeLayout),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// formatPageToken makes the opaque nextPage value, shaped like the doc
// sample's "2015101900R022885001761": availability instant R tie-breaker.
func formatPageToken(p pos) string {
	return strconv.FormatInt(p.avail, 10) + "R" + strconv.FormatInt(p.tie, 10)
}

func parsePageToken(v string) (pos, bool) {
	a, t, ok := strings.Cut(v, "R")
	if !ok {
		return pos{}, false
	}
	av, err1 := strconv.ParseInt(a, 10, 64)
	tv, err2 := strconv.ParseInt(t, 10, 64)
	if err1 != nil || err2 != nil || tv < 0 {
		return pos{}, false
	}
	return pos{av, tv}, true
}

// handleNotifications has the listing's checks; no webhook is ever
// notified here, so the history is always empty.
func (s *Server) handleNotifications(w http.ResponseWriter, _ *http.Request, req *apiReq) {
	ct, ok := contentTypeParam(w, req)
	if !ok || !s.subscribed(w, ct) {
		return
	}
	if _, _, ok := s.window(w, req); !ok {
		return
	}
	writeJSON(w, http.StatusOK, []contentJSON{})
}

func (s *Server) handleSensitiveTypes(w http.ResponseWriter, r *http.Request, _ *apiReq) {
	if strings.Contains(r.Header.Get("Accept-Language"), ",") {
		writeAF(w, "AF20053", "More than one language was specified in Accept-Language.")
		return
	}
	out := make([]map[string]string, 0, len(sensitiveTypes))
	for _, st := range sensitiveTypes {
		out = append(out, map[string]string{"id": st.id, "name": strings.ReplaceAll(st.name, " ", "")})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleBlob streams a content blob as a JSON array, one record at a time,
// so that a 64 MB blob costs one small buffer.
func (s *Server) handleBlob(w http.ResponseWriter, r *http.Request, req *apiReq) {
	id := r.PathValue("contentId")
	p, ok := parseContentID(id)
	if !ok {
		writeAF(w, "AF20052", fmt.Sprintf("Content ID %s in the URL is invalid.", id))
		return
	}
	if !s.subscribed(w, ContentTypes[p.ctIdx]) {
		return
	}
	now := s.now()
	f := req.fault
	if f != nil && f.Kind == FaultBlobGone {
		writeAF(w, "AF20050", fmt.Sprintf("The requested content %s does not exist.", id))
		return
	}
	b := s.lookup(p, id, now)
	if b == nil {
		writeAF(w, "AF20050", fmt.Sprintf("The requested content %s does not exist.", id))
		return
	}
	if expired(b, now) || (f != nil && f.Kind == FaultBlobExpired) {
		writeAF(w, "AF20051", fmt.Sprintf("Content requested with the key %s has already expired. Content older than 7 days cannot be retrieved.", id))
		return
	}
	total := b.total()
	cut := -1
	if f != nil && f.Kind == FaultTruncatedBody {
		cut = total / 2
		if f.After > 0 {
			cut = min(f.After, total-1)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	rec := &jw{b: make([]byte, 0, 4096)}
	dlp := req.claims.roles[RoleReadDlp]
	_ = bw.WriteByte('[')
	for j := range total {
		if j > 0 {
			_ = bw.WriteByte(',')
		}
		rec.reset()
		s.writeRecord(rec, b, j, dlp)
		if j == cut {
			_, _ = bw.Write(rec.b[:len(rec.b)/2])
			_ = bw.Flush()
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			// Aborting the handler closes the connection without the final
			// chunk, so the client sees an unexpected EOF mid-array.
			panic(http.ErrAbortHandler)
		}
		if f != nil && f.Kind == FaultMalformedJSON && j == 1 {
			_, _ = bw.WriteString(`{"Id": tru, "RecordType": ]`)
			break
		}
		if _, err := bw.Write(rec.b); err != nil {
			return // client went away
		}
	}
	if f != nil && f.Kind == FaultMalformedJSON && total == 1 {
		_, _ = bw.WriteString(`,{"Id": tru, "RecordType": ]`)
	}
	_ = bw.WriteByte(']')
	if err := bw.Flush(); err != nil {
		return
	}
	s.mu.Lock()
	s.stats.BlobsServed++
	s.stats.RecordsServed += int64(total)
	s.mu.Unlock()
}
