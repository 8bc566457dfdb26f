package o365sim_test

import (
	"fmt"
	"time"

	"github.com/o365connect/o365connect/input/o365sim"
)

// A test starts a simulator, points its client at URL() with an HTTP client
// trusting CACertPEM, and injects one fault at a time.
func Example() {
	srv, err := o365sim.New(o365sim.Config{
		Seed:              42,
		SubscribedAtStart: []string{o365sim.ContentTypeExchange},
		Now:               func() time.Time { return time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer srv.Close()

	// The next two blob GETs of Audit.Exchange are throttled with a 429 and
	// Retry-After: 2.
	srv.Inject(o365sim.Fault{Kind: o365sim.FaultThrottle, Op: o365sim.OpGetBlob, ContentType: o365sim.ContentTypeExchange, Status: 429, RetryAfter: 2 * time.Second, Times: 2})
	// The next blob body is cut after 3 records and the connection dropped.
	srv.Inject(o365sim.Fault{Kind: o365sim.FaultTruncatedBody, After: 3})
	// The next token request fails with invalid_client.
	srv.Inject(o365sim.Fault{Kind: o365sim.FaultInvalidClient})
	// Content faults act at once: a late blob in an already listed window,
	// and a blob repeating 2 records of the newest Exchange blob.
	srv.Inject(o365sim.Fault{Kind: o365sim.FaultLateBlob, ContentType: o365sim.ContentTypeExchange, Records: 5, Created: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)})
	srv.Inject(o365sim.Fault{Kind: o365sim.FaultDuplicateRecords, ContentType: o365sim.ContentTypeExchange})

	unique := 0
	for _, r := range srv.ExpectedRecords(o365sim.ContentTypeExchange) {
		if !r.Duplicate {
			unique++
		}
	}
	fmt.Println(len(srv.Blobs(o365sim.ContentTypeExchange)), unique > 0, srv.PendingFaults())
	// Output: 98 true 3
}
