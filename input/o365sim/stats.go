package o365sim

import (
	"maps"
	"net/http"
)

// Stats counts what the simulator has served.
type Stats struct {
	// Requests counts requests by operation and HTTP status.
	Requests map[Op]map[int]int
	// TokensIssued counts access tokens issued by the token endpoints.
	TokensIssued int
	// Throttled counts AF429 answers (over the limit or injected).
	Throttled int
	// WithoutPublisherID counts API requests lacking PublisherIdentifier.
	WithoutPublisherID int
	// FaultsFired counts injected fault shots used (content faults count 1).
	FaultsFired int
	// BlobsServed and RecordsServed count complete blob bodies sent.
	BlobsServed   int
	RecordsServed int64
}

func newStats() Stats { return Stats{Requests: map[Op]map[int]int{}} }

// Count is the number of requests of op, with any of statuses (all
// statuses when none is given).
func (st Stats) Count(op Op, statuses ...int) int {
	n := 0
	for status, c := range st.Requests[op] {
		if len(statuses) == 0 {
			n += c
			continue
		}
		for _, want := range statuses {
			if status == want {
				n += c
			}
		}
	}
	return n
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Requests = make(map[Op]map[int]int, len(s.stats.Requests))
	for op, m := range s.stats.Requests {
		out.Requests[op] = maps.Clone(m)
	}
	return out
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// op counts every request of op by status, also when the handler aborts
// the connection (truncated blobs).
func (s *Server) op(op Op, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http would stamp Date from the real clock; the API's Date is
		// what clients compare their own clock with, so it follows Now.
		w.Header().Set("Date", s.now().Format(http.TimeFormat))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.mu.Lock()
			m := s.stats.Requests[op]
			if m == nil {
				m = map[int]int{}
				s.stats.Requests[op] = m
			}
			m[status]++
			s.mu.Unlock()
		}()
		h(rec, r)
	})
}
