package o365sim

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkWriteRecord measures record generation, the simulator's cost
// per record when it serves a large benchmark tenant.
func BenchmarkWriteRecord(b *testing.B) {
	srv, err := New(Config{Seed: 1})
	require.NoError(b, err)
	for _, ct := range ContentTypes {
		b.Run(ct, func(b *testing.B) {
			bl := srv.historic(ctIndex(ct), 3)
			w := &jw{}
			bytes := 0
			for i := 0; b.Loop(); i++ {
				w.reset()
				srv.writeRecord(w, bl, i%bl.total(), true)
				bytes += len(w.b)
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "B/record")
		})
	}
}

// BenchmarkServeHugeBlob streams a 20,000-record blob over TLS.
func BenchmarkServeHugeBlob(b *testing.B) {
	srv, err := New(Config{HugeBlobRecords: 20000, SubscribedAtStart: []string{ContentTypeGeneral}, Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
	require.NoError(b, err)
	require.NoError(b, srv.Start(""))
	defer srv.Close()
	hc := srv.HTTPClient()
	uri := srv.Blobs(ContentTypeGeneral)[0].ContentURI
	tok := srv.AccessToken()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, uri, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := hc.Do(req)
		require.NoError(b, err)
		n, err := io.Copy(io.Discard, res.Body)
		require.NoError(b, err)
		res.Body.Close()
		b.SetBytes(n)
	}
}
