package processor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/o365connect/o365connect/input/o365sim"
	"github.com/o365connect/o365connect/resources"
)

// redactInput is a record and its o365_content_type metadata (none when meta is nil).
type redactInput struct {
	rec  string
	meta any
}

const si = `{"PolicyDetails":[{"PolicyId":"p","Rules":[{"RuleId":"r","ConditionsMatched":{"SensitiveInformation":[`
const siEnd = `]}}]}]`

// redactEdgeCases are hand-written records for the differential test.
var redactEdgeCases = []redactInput{
	// not DLP records: unchanged, whatever they hold
	{`{"Id":"a1","Operation":"FileAccessed","DetectedValues":["x"]}`, "Audit.SharePoint"},
	{`{"Id":"a1","Operation":"FileAccessed","DetectedValues":["x"]}`, nil},
	{`{"Operation":"DlpRuleMatchX","DetectedValues":1}`, nil}, {`{"Operation":"dlpinfo","DetectedValues":1}`, nil},
	{`{"Operation":" DlpInfo","DetectedValues":1}`, nil}, {`{"Operation":["DlpInfo"],"DetectedValues":1}`, nil},
	{`{"Operation":null,"DetectedValues":1}`, nil}, {`{"Nested":{"Operation":"DlpInfo"},"DetectedValues":1}`, nil},
	{`{"Operation":"DlpInfo","Operation":"x","DetectedValues":1}`, nil}, {`{"Operation":"x\u00e9","DetectedValues":1}`, nil},
	{`{"DetectedValues":1}`, "Audit.General"}, {`{"DetectedValues":1}`, ""}, {`{"DetectedValues":1}`, "dlp.all"},
	{`{"DetectedValues":1}`, 5}, {`{"DetectedValues":1}`, true},
	{`not json`, nil}, {`not json Dlp`, nil}, {`{"Operation":"DlpInfo"`, nil}, {`[{"Operation":"DlpInfo"}]`, nil}, {``, nil},
	{`"DlpInfo"`, nil}, {`{"Operation":"DlpInfo"} x`, nil}, {"{\"Operation\":\"DlpInfo\",\"a\":\"\xff\"}", nil},
	{"{\"Operation\":\"Other\",\"a\":\"\xff\",\"DetectedValues\":1}", nil},
	// DLP operations without metadata, with escapes, duplicates
	{`{"Operation":"DlpRuleUndo","DetectedValues":["x"],"a":1}`, nil}, {`{"Operation":"DlpInfo","DetectedValues":["x"]}`, nil},
	{`{"Operation":"DlpRuleMatch"}`, nil}, {`{"Operation":"\u0044lpInfo","DetectedValues":1}`, nil},
	{`{"Oper\u0061tion":"DlpInfo","DetectedValues":1}`, nil}, {`{"Operation":"x","Operation":"DlpInfo","DetectedValues":1}`, nil},
	{`{"Operation":"DlpInfo","DetectedValues":1}`, "Audit.Exchange"}, {`{"Operation":"DlpInfo","DetectedValues":1}`, 5},
	{`{"Operation":"DlpInfo","DetectedValues":1}`, []byte("DLP.All")},
	// DLP.All without a DLP operation
	{`{"Operation":"SomethingNew","DetectedValues":[{"Name":"n","Value":"v"}]}`, "DLP.All"},
	{`{"Id":"x"}`, "DLP.All"}, {`{}`, "DLP.All"}, {` { } `, "DLP.All"}, {`{"DetectedValues":1}`, "DLP.All"},
	{`{"DetectedValues":1,"DetectedValues":2}`, "DLP.All"}, {`{"a":{"DetectedValues":1},"a":2}`, "DLP.All"},
	{`{"DetectedValues":1, "a":2}`, "DLP.All"}, {`{"a":2 , "DetectedValues":1 }`, "DLP.All"},
	{`{"a":{"DetectedValues":1,"b":2,"DetectedValue":3,"Detected\u0056alues":4},"c":[{"DetectedValues":[1]},{"x":{"DetectedValues":{"y":1}}}]}`, "DLP.All"},
	{`{"a":{"b":1,"DetectedValues":1,"c":2,"DetectedValues2":3}}`, "DLP.All"},
	{`{"detectedvalues":1,"DETECTEDVALUES":2}`, "DLP.All"}, {`{"a":[[[{"DetectedValues":null}]]]}`, "DLP.All"},
	{`{"n":12345678901234567890,"f":1.0,"e":-1e2,"s":"<a>&\u00e9\"\\/\n","t":true,"nul":null}`, "DLP.All"},
	// missing PolicyDetails, empty arrays, DetectedValues absent, ResultsTruncated kept
	{`{"Operation":"DlpRuleMatch","PolicyDetails":[]}`, "DLP.All"}, {`{"Operation":"DlpRuleMatch","PolicyDetails":null}`, "DLP.All"},
	{`{"PolicyDetails":[{"Rules":[]}]}`, "DLP.All"}, {`{"PolicyDetails":[{"Rules":[{"ConditionsMatched":{}}]}]}`, "DLP.All"},
	{si + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":{"ResultsTruncated":true}}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":{"DetectedValues":[],"ResultsTruncated":true}}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":{"DetectedValues":[{"Name":"n","Value":"v"}]}}` + siEnd + `}`, "DLP.All"},
	{si + `{"SensitiveInformationDetections":{"DetectedValues":[{"Name":"n","Value":"v"}],"ResultsTruncated":false},"Count":2},{"SensitiveInformationDetections":null},{"SensitiveInformationDetections":[{"DetectedValues":1}]},{"SensitiveInformationDetections":5}` + siEnd + `}`, "DLP.All"},
	// SensitiveInformationDetections as a JSON string and as a non-JSON string
	{si + `{"Count":1,"SensitiveInformationDetections":"{\"DetectedValues\":[{\"Name\":\"n\",\"Value\":\"v\"}],\"ResultsTruncated\":true}"}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":"{\"a\":{\"SensitiveInformationDetections\":\"{\\\"DetectedValues\\\":1}\"}}"}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":"219-09-9999"}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":"[1,2]"}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":""}` + siEnd + `}`, "DLP.All"},
	{si + `{"Count":1,"SensitiveInformationDetections":"{\"a\":1} trailing"}` + siEnd + `}`, "DLP.All"},
	// an existing o365 object
	{`{"Operation":"DlpRuleMatch","o365":{"workload":"Exchange","record_type":{"id":13,"name":"ComplianceDLPExchange"}}}`, nil},
	{`{"o365":{}}`, "DLP.All"}, {`{"o365":{ }, "DetectedValues":1}`, "DLP.All"}, {`{"o365":null}`, "DLP.All"},
	{`{"DetectedValues":1,"o365":null}`, "DLP.All"}, {`{"DetectedValues":1,"o365":{"DetectedValues":2}}`, "DLP.All"},
	{`{"o365":{"DetectedValues":2,"a":1}}`, "DLP.All"}, {`{"o365":{"redacted":false}}`, "DLP.All"},
	{`{"o365":{"a":1,"redacted":{"DetectedValues":1}}}`, "DLP.All"}, {`{"o365":{"redacted":true,"DetectedValues":1}}`, "DLP.All"},
	{`{"o365":"x"}`, "DLP.All"}, {`{"o365":[1]}`, "DLP.All"}, {`{"o365":1}`, "DLP.All"}, {`{"o365":{},"o365":{"a":1}}`, "DLP.All"},
	{`{"o\u0033\u00365":{"a":1}}`, "DLP.All"}, {`{"a":{"o365":{"b":1}}}`, "DLP.All"},
	// not an object, not JSON: the mapping fails, and so must the processor
	{`[]`, "DLP.All"}, {`[{"DetectedValues":1}]`, "DLP.All"}, {`"str"`, "DLP.All"}, {`42`, "DLP.All"}, {`null`, "DLP.All"},
	{``, "DLP.All"}, {`not json`, "DLP.All"}, {`{"a":1`, "DLP.All"}, {`{"a":1}}`, "DLP.All"}, {`{"a":1} {"b":2}`, "DLP.All"},
	{`{"a":}`, "DLP.All"}, {`{"a":1,}`, "DLP.All"}, {`{"a":01}`, "DLP.All"}, {`{"a":"\x"}`, "DLP.All"},
	{`{"DetectedValues":[1,]}`, "DLP.All"}, {`{"DetectedValues":tru}`, "DLP.All"}, {"{\"a\":\"\xff\xfe\"}", "DLP.All"},
	{"{\"a\":\"\x01\"}", "DLP.All"}, {`{"Operation":"DlpInfo","a":[1,]}`, nil},
}

func runRedactMapping(exe *bloblang.Executor, rec []byte, meta any) ([]byte, error) {
	msg := service.NewMessage(rec)
	if meta != nil {
		msg.MetaSetMut("o365_content_type", meta)
	}
	out, err := msg.BloblangQuery(exe)
	if err != nil {
		return nil, err
	}
	return out.AsBytes()
}

func runRedactor(p *dlpRedactor, rec []byte, meta any) ([]byte, error) {
	msg := service.NewMessage(rec)
	if meta != nil {
		msg.MetaSetMut("o365_content_type", meta)
	}
	batch, err := p.Process(context.Background(), msg)
	if err != nil {
		return nil, err
	}
	if len(batch) != 1 {
		return nil, errors.New("not one message")
	}
	if v, _ := batch[0].MetaGetMut("o365_content_type"); meta != nil && v == nil {
		return nil, errors.New("metadata lost")
	}
	return batch[0].AsBytes()
}

func assertRedactSameAsMapping(t *testing.T, exe *bloblang.Executor, p *dlpRedactor, rec []byte, meta any) {
	t.Helper()
	want, werr := runRedactMapping(exe, rec, meta)
	got, gerr := runRedactor(p, rec, meta)
	if werr != nil {
		assert.Error(t, gerr, "the mapping fails on %q (%v), the processor gave %s", rec, werr, got)
		return
	}
	if !assert.NoError(t, gerr, "record %q meta %v", rec, meta) {
		return
	}
	if bytes.Equal(want, rec) { // the mapping left the record alone: so must the processor
		assert.Equal(t, string(want), string(got), "record %q meta %v", rec, meta)
		return
	}
	assert.JSONEq(t, string(want), string(got), "record %q meta %v", rec, meta)
}

// redactsFast reports whether the processor handles the record without the mapping.
func redactsFast(p *dlpRedactor, rec []byte, meta any) bool {
	msg := service.NewMessage(rec)
	if meta != nil {
		msg.MetaSetMut("o365_content_type", meta)
	}
	dlp, sure := p.isDLP(msg, rec)
	if !sure {
		return false
	}
	if !dlp {
		return true
	}
	_, ok := redactDLPFast(rec)
	return ok
}

func TestRedactDLPMatchesMapping(t *testing.T) {
	exe, err := bloblang.Parse(resources.RedactDLPMapping)
	require.NoError(t, err)
	p, err := newDLPRedactor()
	require.NoError(t, err)
	n, err := newNormalizer()
	require.NoError(t, err)

	t.Run("yaml tests", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("..", "resources", "tests", "redact_dlp.yaml"))
		require.NoError(t, err)
		var doc struct {
			Tests []struct {
				InputBatch []struct {
					Content  string            `yaml:"content"`
					Metadata map[string]string `yaml:"metadata"`
				} `yaml:"input_batch"`
			} `yaml:"tests"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &doc))
		count := 0
		for _, tc := range doc.Tests {
			for _, in := range tc.InputBatch {
				var meta any
				if ct, ok := in.Metadata["o365_content_type"]; ok {
					meta = ct
				}
				assertRedactSameAsMapping(t, exe, p, []byte(in.Content), meta)
				assertRedactSameAsMapping(t, exe, p, []byte(in.Content), "DLP.All")
				count++
			}
		}
		assert.GreaterOrEqual(t, count, 8)
	})

	t.Run("simulated DLP records", func(t *testing.T) {
		records := simulatedDLPRecords(t, 1000)
		require.GreaterOrEqual(t, len(records), 1000)
		withValues, fast := 0, 0
		for _, r := range records {
			if bytes.Contains(r, []byte(`"DetectedValues"`)) {
				withValues++
			}
			normalized, err := runNormalizer(n, r)
			require.NoError(t, err)
			for _, rec := range [][]byte{r, normalized} {
				for _, meta := range []any{"DLP.All", nil} {
					assertRedactSameAsMapping(t, exe, p, rec, meta)
					if redactsFast(p, rec, meta) {
						fast++
					}
					out, err := runRedactor(p, rec, meta)
					require.NoError(t, err)
					assert.NotContains(t, string(out), "DetectedValues")
				}
			}
		}
		t.Logf("%d simulated DLP records, %d with DetectedValues", len(records), withValues)
		assert.Greater(t, withValues, len(records)/2)
		assert.Equal(t, 4*len(records), fast, "every simulated DLP record takes the fast path")
	})

	t.Run("simulated other records", func(t *testing.T) {
		records := simulatedRecords(t, 1000)
		fast := 0
		for _, r := range records {
			normalized, err := runNormalizer(n, r)
			require.NoError(t, err)
			for _, rec := range [][]byte{r, normalized} {
				for _, meta := range []any{"Audit.General", nil} {
					assertRedactSameAsMapping(t, exe, p, rec, meta)
					if redactsFast(p, rec, meta) {
						fast++
					}
				}
			}
		}
		assert.Equal(t, 4*len(records), fast)
	})

	t.Run("edge cases", func(t *testing.T) {
		fast := 0
		for _, c := range redactEdgeCases {
			assertRedactSameAsMapping(t, exe, p, []byte(c.rec), c.meta)
			if redactsFast(p, []byte(c.rec), c.meta) {
				fast++
			}
			if normalized, err := runNormalizer(n, []byte(c.rec)); err == nil {
				assertRedactSameAsMapping(t, exe, p, normalized, c.meta)
			}
		}
		t.Logf("%d edge cases, %d on the fast path", len(redactEdgeCases), fast)
		assert.Greater(t, fast, len(redactEdgeCases)/2, "the fast path must handle most of them")
	})
}

func TestRedactDLPSplice(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1, "DetectedValues":[1] }`:                           `{"a":1 ,"o365":{"redacted":true}}`,
		`{"DetectedValues":[1], "a":1}`:                            `{"a":1,"o365":{"redacted":true}}`,
		`{"DetectedValues":[1]}`:                                   `{"o365":{"redacted":true}}`,
		`{"o365":{"w":1},"n":12345678901234567890}`:                `{"o365":{"w":1,"redacted":true},"n":12345678901234567890}`,
		`{"x":{"DetectedValues":1,"R":false,"DetectedValues2":2}}`: `{"x":{"R":false,"DetectedValues2":2},"o365":{"redacted":true}}`,
	} {
		out, ok := redactDLPFast([]byte(in))
		require.True(t, ok, in)
		assert.Equal(t, want, string(out), in)
	}
	_, ok := redactDLPFast([]byte(`{"SensitiveInformationDetections":"{}"}`))
	assert.False(t, ok, "a string SensitiveInformationDetections takes the slow path")
}

func TestRedactDLPNonDLPUntouched(t *testing.T) {
	p, err := newDLPRedactor()
	require.NoError(t, err)
	msg := service.NewMessage([]byte(`not json`))
	msg.MetaSetMut("k", "v")
	batch, err := p.Process(context.Background(), msg)
	require.NoError(t, err)
	b, _ := batch[0].AsBytes()
	assert.Equal(t, "not json", string(b))

	msg = service.NewMessage([]byte(`not json`))
	msg.MetaSetMut("o365_content_type", "DLP.All")
	_, err = p.Process(context.Background(), msg)
	require.Error(t, err)
	b, _ = msg.AsBytes()
	assert.Equal(t, "not json", string(b))
}

func TestRedactDLPConfig(t *testing.T) {
	_, err := redactDLPSpec().ParseYAML(`{}`, nil)
	require.NoError(t, err)
	require.NoError(t, service.NewStreamBuilder().AddProcessorYAML(`office365_redact_dlp: {}`))
}

// simulatedDLPRecords returns at least n raw DLP.All records from the simulator.
func simulatedDLPRecords(t testing.TB, n int) [][]byte {
	t.Helper()
	sim := startSimulator(t, o365sim.Config{Seed: 2, History: 48 * time.Hour})
	var out [][]byte
	for _, blob := range sim.Blobs(o365sim.ContentTypeDLP) {
		if len(out) >= n {
			break
		}
		out = append(out, blobRecords(t, sim, blob.ContentURI)...)
	}
	return out
}

// BenchmarkRedactDLPProcessor runs the processor and the mapping on normalised simulated DLP
// records (as in the pipeline), including the message's serialisation.
func BenchmarkRedactDLPProcessor(b *testing.B) {
	p, err := newDLPRedactor()
	require.NoError(b, err)
	exe, err := bloblang.Parse(resources.RedactDLPMapping)
	require.NoError(b, err)
	n, err := newNormalizer()
	require.NoError(b, err)
	var records [][]byte
	size := 0
	for _, r := range simulatedDLPRecords(b, 1000) {
		normalized, err := runNormalizer(n, r)
		require.NoError(b, err)
		records = append(records, normalized)
		size += len(normalized)
	}
	others := simulatedRecords(b, 1000)
	run := func(b *testing.B, records [][]byte, ct string, bloblangMapping bool) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			msg := service.NewMessage(records[i%len(records)])
			msg.MetaSetMut("o365_content_type", ct)
			var out *service.Message
			if bloblangMapping {
				if out, err = msg.BloblangQuery(exe); err != nil {
					b.Fatal(err)
				}
			} else {
				batch, err := p.Process(context.Background(), msg)
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
	b.Run("dlp/processor", func(b *testing.B) { b.SetBytes(int64(size / len(records))); run(b, records, "DLP.All", false) })
	b.Run("dlp/bloblang", func(b *testing.B) { b.SetBytes(int64(size / len(records))); run(b, records, "DLP.All", true) })
	b.Run("other/processor", func(b *testing.B) { run(b, others, "Audit.General", false) })
	b.Run("other/bloblang", func(b *testing.B) { run(b, others, "Audit.General", true) })
}
