package o365sim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Op names an operation the simulator serves. The Activity API ones double
// as the Method of AF429 messages ("Method=GetBlob", mgmt-api §6).
type Op string

// Operations, for Fault.Op and Stats.
const (
	OpToken               Op = "Token"
	OpOpenIDConfiguration Op = "OpenIDConfiguration"
	OpStartSubscription   Op = "StartSubscription"
	OpStopSubscription    Op = "StopSubscription"
	OpListSubscriptions   Op = "ListSubscriptions"
	OpListContent         Op = "ListContent"
	OpListNotifications   Op = "ListNotifications"
	OpGetBlob             Op = "GetBlob"
	OpDlpSensitiveTypes   Op = "DlpSensitiveTypes"
	OpUnknown             Op = "Unknown"
)

// FaultKind says what an injected Fault does.
type FaultKind int

// Fault kinds. Kinds marked "content" act at Inject time and shape the
// tenant's content; the others replace the answer to matching requests.
const (
	// FaultThrottle answers AF429 with Status (default Config.ThrottleStatus)
	// and, when RetryAfter > 0, a Retry-After header. On OpToken it is a 429
	// Entra error.
	FaultThrottle FaultKind = iota + 1
	// FaultInternalError answers 500 AF50000 (an Entra 500 on OpToken).
	FaultInternalError
	// FaultUnavailable answers 503 with a plain-text body, as a gateway does.
	FaultUnavailable
	// FaultUnauthorized answers 401 "Authorization has been denied for this
	// request." as for an expired token.
	FaultUnauthorized
	// FaultTruncatedBody (GetBlob) sends After complete records and half of
	// the next one, then drops the connection.
	FaultTruncatedBody
	// FaultMalformedJSON (GetBlob) answers 200 with a body that is not JSON.
	FaultMalformedJSON
	// FaultBlobExpired (GetBlob) answers AF20051 as for content older than 7 days.
	FaultBlobExpired
	// FaultBlobGone (GetBlob) answers 404 AF20050.
	FaultBlobGone
	// FaultStaleNextPage (ListContent) answers AF20031 to a request that
	// follows a NextPageUri.
	FaultStaleNextPage
	// FaultSubscriptionDisabled answers AF20023 without changing the
	// subscription (use SetSubscription for a lasting change).
	FaultSubscriptionDisabled
	// FaultEmptyPage (ListContent) answers 200 [] with no NextPageUri.
	FaultEmptyPage
	// FaultInvalidClient (OpToken) answers 401 invalid_client AADSTS7000215.
	FaultInvalidClient
	// FaultStatus answers Status (default 500) with the AF error Code
	// (default AF50000), e.g. 408, 502, AF50005.
	FaultStatus
	// FaultLateBlob (content) adds a blob of Records records created at
	// Created (default an hour ago) that is listable only from now on.
	FaultLateBlob
	// FaultDuplicateRecords (content) adds a blob, listable now, repeating
	// Records (default 2) records of ContentID (default the newest listable
	// blob of ContentType). ExpectedRecord.Duplicate marks the repeats.
	FaultDuplicateRecords
	// FaultForeignNextPage (ListContent) answers the page with a NextPageUri
	// on URL, a host other than the API's, as a tampered response would: a
	// client must not follow it (nor send its token there).
	FaultForeignNextPage
)

var faultNames = map[FaultKind]string{
	FaultThrottle: "throttle", FaultInternalError: "internal error", FaultUnavailable: "unavailable",
	FaultUnauthorized: "unauthorized", FaultTruncatedBody: "truncated body", FaultMalformedJSON: "malformed JSON",
	FaultBlobExpired: "blob expired", FaultBlobGone: "blob gone", FaultStaleNextPage: "stale next page",
	FaultSubscriptionDisabled: "subscription disabled", FaultEmptyPage: "empty page", FaultInvalidClient: "invalid client",
	FaultStatus: "status", FaultLateBlob: "late blob", FaultDuplicateRecords: "duplicate records",
	FaultForeignNextPage: "foreign next page",
}

// String names the kind.
func (k FaultKind) String() string {
	if n, ok := faultNames[k]; ok {
		return n
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is a one-shot (or Times-shot) deviation from correct behaviour.
// It matches requests by Op (empty: any Activity API operation the kind
// applies to, never the Entra endpoints), ContentType and ContentID (empty:
// any), and applies to the next Times (default 1) matching requests.
type Fault struct {
	Kind        FaultKind
	Op          Op
	ContentType string
	ContentID   string
	Times       int
	// Status overrides the HTTP status (FaultThrottle: 403 or 429;
	// FaultStatus: any).
	Status int
	// Code is the AF code of FaultStatus.
	Code string
	// RetryAfter adds a Retry-After header to FaultThrottle answers.
	RetryAfter time.Duration
	// After is the number of complete records FaultTruncatedBody sends
	// (default half of the blob).
	After int
	// Records sizes FaultLateBlob (default Config.RecordsPerBlob) and
	// FaultDuplicateRecords (repeats, default 2).
	Records int
	// Created is the contentCreated of FaultLateBlob (default an hour ago).
	Created time.Time
	// URL is the scheme and host of FaultForeignNextPage's NextPageUri.
	URL string
}

func (f *Fault) status(def int) int {
	if f.Status != 0 {
		return f.Status
	}
	return def
}

// appliesTo reports whether a fault with an empty Op matches op.
func (k FaultKind) appliesTo(op Op) bool {
	switch k {
	case FaultTruncatedBody, FaultMalformedJSON, FaultBlobExpired, FaultBlobGone:
		return op == OpGetBlob
	case FaultStaleNextPage, FaultEmptyPage, FaultForeignNextPage:
		return op == OpListContent
	case FaultSubscriptionDisabled:
		return op == OpListContent || op == OpGetBlob || op == OpListNotifications
	case FaultInvalidClient:
		return op == OpToken
	default:
		return op != OpToken && op != OpOpenIDConfiguration && op != OpUnknown
	}
}

type faultState struct {
	Fault
	left int
}

// faultReq is what a request offers for fault matching.
type faultReq struct {
	op       Op
	ct, id   string
	nextPage bool
}

// Inject arms f. Request faults fire on the next Times matching requests,
// in the order injected; content faults (FaultLateBlob,
// FaultDuplicateRecords) change the tenant at once. It panics on a fault
// that cannot apply, as that is a bug in the calling test.
func (s *Server) Inject(f Fault) {
	if _, ok := faultNames[f.Kind]; !ok {
		panic(fmt.Sprintf("o365sim: unknown fault kind %d", f.Kind))
	}
	switch f.Kind {
	case FaultLateBlob:
		ct := f.ContentType
		if ct == "" {
			ct = ContentTypeGeneral
		}
		created := f.Created
		if created.IsZero() {
			created = s.now().Add(-min(time.Hour, s.cfg.History/2))
		}
		n := f.Records
		if n <= 0 {
			n = s.cfg.RecordsPerBlob
		}
		s.AddBlob(ct, created, n)
		s.countFault()
		return
	case FaultDuplicateRecords:
		ct := f.ContentType
		if ct == "" {
			ct = ContentTypeGeneral
		}
		n := f.Records
		if n <= 0 {
			n = 2
		}
		if _, err := s.AddDuplicateBlob(ct, f.ContentID, n); err != nil {
			panic("o365sim: " + err.Error())
		}
		s.countFault()
		return
	}
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &faultState{Fault: f, left: f.Times})
	s.mu.Unlock()
}

// PendingFaults is the number of armed request faults that have shots left.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

func (s *Server) countFault() {
	s.mu.Lock()
	s.stats.FaultsFired++
	s.mu.Unlock()
}

// takeFault consumes one shot of the first armed fault matching req.
func (s *Server) takeFault(op Op, ct, id string) *Fault {
	return s.takeFaultReq(faultReq{op: op, ct: ct, id: id})
}

func (s *Server) takeFaultReq(req faultReq) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Op != "" && f.Op != req.op || f.Op == "" && !f.Kind.appliesTo(req.op) {
			continue
		}
		if f.ContentType != "" && f.ContentType != req.ct || f.ContentID != "" && f.ContentID != req.id {
			continue
		}
		if f.Kind == FaultStaleNextPage && !req.nextPage {
			continue
		}
		f.left--
		if f.left == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		s.stats.FaultsFired++
		out := f.Fault
		return &out
	}
	return nil
}

func (s *Server) writeRetryAfter(w http.ResponseWriter, f *Fault) {
	d := s.cfg.RetryAfter
	if f != nil && f.RetryAfter > 0 {
		d = f.RetryAfter
	}
	if d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
}

// writeGenericFault answers the kinds that look the same on every endpoint.
func (s *Server) writeGenericFault(w http.ResponseWriter, f *Fault) {
	switch f.Kind {
	case FaultUnavailable:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.status(http.StatusServiceUnavailable))
		_, _ = w.Write([]byte("Service Unavailable"))
	case FaultUnauthorized:
		writeDenied(w)
	case FaultStatus:
		code := f.Code
		if code == "" {
			code = "AF50000"
		}
		writeAFError(w, f.status(http.StatusInternalServerError), code, "An internal error occurred. Retry the request.")
	default: // FaultInternalError and kinds used on the wrong endpoint
		writeAFError(w, f.status(http.StatusInternalServerError), "AF50000", "An internal error occurred. Retry the request.")
	}
}
