package processor

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
	"github.com/o365connect/o365connect/resources"
)

// normalizeEdgeCases are hand-written records for the differential test.
var normalizeEdgeCases = []string{
	// every ClientIP shape, and the fallbacks
	`{"ClientIP":"1.2.3.4"}`, `{"ClientIP":"1.2.3.4:12345"}`, `{"ClientIP":"[1.2.3.4]:12345"}`, `{"ClientIP":"[1.2.3.4]"}`,
	`{"ClientIP":"2001:db8::abcd"}`, `{"ClientIP":"2001:DB8::ABCD"}`, `{"ClientIP":"[2001:db8::abcd]:12345"}`, `{"ClientIP":"[2001:db8::abcd]"}`,
	`{"ClientIP":"::ffff:1.2.3.4"}`, `{"ClientIP":"[::ffff:1.2.3.4]:12345"}`, `{"ClientIP":"localhost:12345"}`,
	`{"ClientIP":"ffff:10.11.0.229"}`, `{"ClientIP":" 1.2.3.4 "}`, `{"ClientIP":"1.2.3.4:0"}`, `{"ClientIP":"1.2.3.4:65536"}`,
	`{"ClientIP":"1.2.3.4:"}`, `{"ClientIP":":80"}`, `{"ClientIP":"256.1.1.1"}`, `{"ClientIP":"[2001:db8::1"}`,
	`{"ClientIP":"[2001:db8::1]:x"}`, `{"ClientIP":"[]"}`, `{"ClientIP":"fe80::1%eth0"}`, `{"ClientIP":"h\u00e9st\"x\\y:1"}`,
	`{"ClientIP":"\u0031.2.3.4"}`, `{"ClientIP":"a\tb"}`,
	`{"ClientIP":null}`, `{"ClientIP":""}`, `{"ClientIP":"   "}`, `{"ClientIP":null,"ClientIPAddress":" ","ActorIpAddress":"203.0.113.9"}`,
	`{"ClientIPAddress":"[2001:db8::1]:443"}`, `{"ClientIP":"198.51.100.7","ClientIPAddress":"10.0.0.1"}`,
	`{"ClientIP":12345}`, `{"ClientIP":1.5}`, `{"ClientIP":true}`, `{"ClientIP":{"a":1}}`, `{"ClientIP":["1.2.3.4"]}`,
	`{"ClientIP":"1.2.3.4","ClientIPAddress":{"x":1}}`, `{"ClientIP":"1.1.1.1","ClientIP":"2.2.2.2"}`,
	// CreationTime
	`{"CreationTime":"2015-06-29T20:03:19"}`, `{"CreationTime":"2015-06-29T20:03:19Z"}`, `{"CreationTime":"2015-06-29T20:03:19.0000000Z"}`,
	`{"CreationTime":"2015-06-29T20:03:19.250"}`, `{"CreationTime":"2015-06-29T22:03:19+02:00"}`, `{"CreationTime":"2015-06-29T20:03:19.1234567-05:30"}`,
	`{"CreationTime":"12/31/2023 11:59:59 PM"}`, `{"CreationTime":"01/02/2023 01:02:03 AM"}`, `{"CreationTime":" 2015-06-29T20:03:19 "}`,
	`{"CreationTime":"not a time"}`, `{"CreationTime":""}`, `{"CreationTime":null}`, `{"CreationTime":20150629}`, `{"CreationTime":true}`,
	`{"CreationTime":"2015-02-30T20:03:19"}`, `{"CreationTime":"2015-06-29 20:03:19"}`, `{"CreationTime":{"t":1}}`,
	// RecordType
	`{"RecordType":1}`, `{"RecordType":15}`, `{"RecordType":22}`, `{"RecordType":216}`, `{"RecordType":463}`, `{"RecordType":117}`,
	`{"RecordType":-1}`, `{"RecordType":0}`, `{"RecordType":"25"}`, `{"RecordType":" 25 "}`, `{"RecordType":"025"}`, `{"RecordType":"0"}`, `{"RecordType":"-0"}`, `{"RecordType":"-025"}`, `{"RecordType":"1_0"}`, `{"RecordType":"0b11"}`, `{"RecordType":"-1"}`,
	`{"RecordType":"ExchangeAdmin"}`, `{"RecordType":" Viva Goals "}`, `{"RecordType":""}`, `{"RecordType":"  "}`, `{"RecordType":null}`,
	`{"RecordType":true}`, `{"RecordType":{"id":1}}`, `{"RecordType":[1]}`, `{"RecordType":15.0}`, `{"RecordType":15.7}`, `{"RecordType":1e2}`,
	`{"RecordType":99999999999999999999}`, `{"RecordType":"99999999999999999999"}`, `{"RecordType":"1.5"}`, `{"RecordType":"+25"}`,
	`{"RecordType":"0x19"}`, `{"RecordType":"Inf"}`, `{"RecordType":"NaN"}`, `{"RecordType":"Type2"}`, `{"RecordType":"\u0032\u0035"}`,
	// ResultStatus
	`{"ResultStatus":"Succeeded"}`, `{"ResultStatus":"True"}`, `{"ResultStatus":"success"}`, `{"ResultStatus":"SUCCESS "}`,
	`{"ResultStatus":"Failed"}`, `{"ResultStatus":"False"}`, `{"ResultStatus":"Failure"}`, `{"ResultStatus":"PartiallySucceeded"}`,
	`{"ResultStatus":"Queued"}`, `{"ResultStatus":"ÉCHEC"}`, `{"ResultStatus":"a\"b"}`, `{"ResultStatus":true}`, `{"ResultStatus":false}`,
	`{"ResultStatus":null}`, `{"ResultStatus":""}`, `{"ResultStatus":"  "}`, `{"ResultStatus":1}`, `{"ResultStatus":1.50}`,
	`{"ResultStatus":{"a":"B"}}`, `{"ResultStatus":["X"]}`,
	// tenant, workload, operation, user: any type is copied
	`{"OrganizationId":"t1","OrganizationID":"t2"}`, `{"OrganizationId":null,"OrganizationID":"t2"}`, `{"OrganizationID":"t2"}`,
	`{"OrganizationId":{"a":[1,2]},"Workload":7,"Operation":true,"UserId":["u"]}`, `{"Workload":null,"Operation":null,"UserId":null}`,
	`{"UserId":"NT AUTHORITY\\SYSTEM","Operation":"\u00e9t\u00e9"}`, `{"Workload":12345678901234567890}`,
	// shapes of the record
	`{}`, `{ }`, "{\n}\n", `{"a":1 }`, "{\"a\":1\n\t}", `  {"Workload":"Exchange"}  `, `{"o365":{"old":true},"Workload":"Exchange"}`,
	`{"o365":null}`, `{"Workload":"Exchange","o365":"x","RecordType":15}`, `{"o\u0033\u00365":1}`, `{"Work\u006coad":"Exchange"}`,
	`{"Nested":{"ClientIP":"9.9.9.9","o365":1},"List":[{"RecordType":1}],"BigNumber":12345678901234567890,"F":-1.5e-3}`,
	// not a JSON object: the mapping fails, and so must the processor
	`[]`, `[1,2]`, `"str"`, `42`, `null`, `true`, ``, `   `, `not json`, `{"a":1`, `{"a":1}}`, `{"a":1} {"b":2}`, `{"a":1}x`,
	`{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`, `{"a":01}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":tru}`,
	`{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":"\u12"}`, "{\"a\":\"\xff\xfe\"}",
}

// runMappingOn applies the mapping the way the mapping processor does.
func runMappingOn(exe *bloblang.Executor, rec []byte) ([]byte, error) {
	msg := service.NewMessage(rec)
	out, err := msg.BloblangQuery(exe)
	if err != nil {
		return nil, err
	}
	return out.AsBytes()
}

func runNormalizer(n *normalizer, rec []byte) ([]byte, error) {
	batch, err := n.Process(context.Background(), service.NewMessage(rec))
	if err != nil {
		return nil, err
	}
	if len(batch) != 1 {
		return nil, errors.New("not one message")
	}
	return batch[0].AsBytes()
}

func assertSameAsMapping(t *testing.T, exe *bloblang.Executor, n *normalizer, rec []byte) {
	t.Helper()
	want, werr := runMappingOn(exe, rec)
	got, gerr := runNormalizer(n, rec)
	if werr != nil {
		assert.Error(t, gerr, "the mapping fails on %q (%v), the processor gave %s", rec, werr, got)
		return
	}
	if !assert.NoError(t, gerr, "record %q", rec) {
		return
	}
	assert.JSONEq(t, string(want), string(got), "record %q", rec)
}

func TestNormalizeMatchesMapping(t *testing.T) {
	exe, err := bloblang.Parse(resources.NormalizeMapping)
	require.NoError(t, err)
	n, err := newNormalizer()
	require.NoError(t, err)

	t.Run("yaml tests", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("..", "resources", "tests", "normalize.yaml"))
		require.NoError(t, err)
		var doc struct {
			Tests []struct {
				InputBatch []struct {
					Content string `yaml:"content"`
				} `yaml:"input_batch"`
			} `yaml:"tests"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &doc))
		count := 0
		for _, tc := range doc.Tests {
			for _, in := range tc.InputBatch {
				assertSameAsMapping(t, exe, n, []byte(in.Content))
				count++
			}
		}
		assert.GreaterOrEqual(t, count, 45)
	})

	t.Run("simulated records", func(t *testing.T) {
		records := simulatedRecords(t, 2000)
		require.GreaterOrEqual(t, len(records), 2000)
		fast := 0
		for _, r := range records {
			assertSameAsMapping(t, exe, n, r)
			if _, ok := normalizeFast(r); ok {
				fast++
			}
		}
		t.Logf("%d simulated records", len(records))
		assert.Equal(t, len(records), fast, "every simulated record takes the fast path")
	})

	t.Run("edge cases", func(t *testing.T) {
		fast := 0
		for _, rec := range normalizeEdgeCases {
			assertSameAsMapping(t, exe, n, []byte(rec))
			if _, ok := normalizeFast([]byte(rec)); ok {
				fast++
			}
		}
		t.Logf("%d edge cases, %d on the fast path", len(normalizeEdgeCases), fast)
		assert.Greater(t, fast, len(normalizeEdgeCases)/2, "the fast path must handle most of them")
	})
}

func TestNormalizeSplice(t *testing.T) {
	out, ok := normalizeFast([]byte(`{"Workload":"Exchange", "BigNumber":12345678901234567890 }`))
	require.True(t, ok)
	assert.Equal(t, `{"Workload":"Exchange", "BigNumber":12345678901234567890 ,"o365":{"workload":"Exchange"}}`, string(out))
	_, ok = normalizeFast([]byte(`{"o365":{}}`))
	assert.False(t, ok, "an existing o365 key takes the slow path")
	assert.Equal(t, "AzureActiveDirectoryStsLogon", recordTypeNames[15])
	assert.Len(t, recordTypeNames, 257)
}

func TestNormalizeKeepsMetadataOnError(t *testing.T) {
	n, err := newNormalizer()
	require.NoError(t, err)
	msg := service.NewMessage([]byte(`not json`))
	msg.MetaSetMut("k", "v")
	_, err = n.Process(context.Background(), msg)
	require.Error(t, err)
	b, _ := msg.AsBytes()
	assert.Equal(t, "not json", string(b))
}

func TestNormalizeConfig(t *testing.T) {
	_, err := normalizeSpec().ParseYAML(`{}`, nil)
	require.NoError(t, err)
	require.NoError(t, service.NewStreamBuilder().AddProcessorYAML(`office365_normalize: {}`))
}

// simulatedRecords returns at least n raw records from the simulator, across content types.
func simulatedRecords(t testing.TB, n int) [][]byte {
	t.Helper()
	sim := startSimulator(t, o365sim.Config{Seed: 1, History: 6 * time.Hour})
	var out [][]byte
	perType := n/len(o365sim.ContentTypes) + 1
	for _, ct := range o365sim.ContentTypes {
		got := 0
		for _, blob := range sim.Blobs(ct) {
			if got >= perType {
				break
			}
			recs := blobRecords(t, sim, blob.ContentURI)
			out = append(out, recs...)
			got += len(recs)
		}
	}
	return out
}

func startSimulator(t testing.TB, cfg o365sim.Config) *o365sim.Server {
	t.Helper()
	cfg.SubscribedAtStart = o365sim.ContentTypes
	sim, err := o365sim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, sim.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// blobRecords fetches one simulated blob and returns its raw records.
func blobRecords(t testing.TB, sim *o365sim.Server, contentURI string) [][]byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, contentURI, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+sim.AccessToken())
	res, err := sim.HTTPClient().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out [][]byte
	dec := o365api.NewRecordDecoder(res.Body)
	for {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, rec.Raw)
	}
}

// BenchmarkNormalizeProcessor runs the processor on the records BenchmarkNormalize in resources
// uses (the Bloblang mapping, for comparison), including the message's serialisation.
func BenchmarkNormalizeProcessor(b *testing.B) {
	n, err := newNormalizer()
	require.NoError(b, err)
	exe, err := bloblang.Parse(resources.NormalizeMapping)
	require.NoError(b, err)
	records := simulatedRecords(b, 1000)
	size := 0
	for _, r := range records {
		size += len(r)
	}
	run := func(b *testing.B, bloblangMapping bool) {
		b.SetBytes(int64(size / len(records)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			msg := service.NewMessage(records[i%len(records)])
			msg.MetaSetMut("o365_tenant_id", "6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13")
			var out *service.Message
			if bloblangMapping {
				if out, err = msg.BloblangQuery(exe); err != nil {
					b.Fatal(err)
				}
			} else {
				batch, err := n.Process(context.Background(), msg)
				if err != nil {
					b.Fatal(err)
				}
				out = batch[0]
			}
			if _, err := out.AsBytes(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("processor", func(b *testing.B) { run(b, false) })
	b.Run("bloblang", func(b *testing.B) { run(b, true) })
}
