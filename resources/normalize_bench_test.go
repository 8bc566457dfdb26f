package resources

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
)

// BenchmarkNormalize runs normalize.blobl the way the mapping processor does, then serialises the
// result as the Kafka output does, on simulated records of each content type.
func BenchmarkNormalize(b *testing.B) {
	exe, err := bloblang.Parse(NormalizeMapping)
	require.NoError(b, err)
	for _, ct := range o365sim.ContentTypes {
		records := simRecords(b, ct, 200)
		size := 0
		for _, r := range records {
			size += len(r.Raw)
		}
		b.Run(ct, func(b *testing.B) {
			b.SetBytes(int64(size / len(records)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rec := records[i%len(records)]
				msg := service.NewMessage(rec.Raw)
				msg.MetaSetMut("o365_tenant_id", "6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13")
				msg.MetaSetMut("o365_workload", rec.Workload)
				out, err := msg.BloblangQuery(exe)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := out.AsBytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// simRecords returns the records of the first simulated blob of ct with at least n of them.
func simRecords(b *testing.B, ct string, n int) []o365api.Record {
	b.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim, err := o365sim.New(o365sim.Config{Seed: 7, RecordsPerBlob: n, SubscribedAtStart: o365sim.ContentTypes, Now: func() time.Time { return now }})
	require.NoError(b, err)
	require.NoError(b, sim.Start(""))
	b.Cleanup(func() { _ = sim.Close() })
	for _, blob := range sim.Blobs(ct) {
		if blob.Records < n {
			continue
		}
		req, err := http.NewRequest(http.MethodGet, blob.ContentURI, nil)
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+sim.AccessToken())
		res, err := sim.HTTPClient().Do(req)
		require.NoError(b, err)
		defer res.Body.Close()
		var recs []o365api.Record
		dec := o365api.NewRecordDecoder(res.Body)
		for {
			rec, err := dec.Next()
			if errors.Is(err, io.EOF) {
				return recs
			}
			require.NoError(b, err)
			recs = append(recs, rec)
		}
	}
	b.Fatalf("no blob of %s with %d records", ct, n)
	return nil
}
