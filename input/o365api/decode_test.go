package o365api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input/o365sim"
)

// decodeAll reads records until an error and returns them with that error.
func decodeAll(t *testing.T, r io.Reader) ([]Record, error) {
	t.Helper()
	d := NewRecordDecoder(r)
	var recs []Record
	for range 1000 {
		rec, err := d.Next()
		if err != nil {
			_, again := d.Next()
			assert.Equal(t, err, again, "errors are sticky")
			return recs, err
		}
		recs = append(recs, rec)
	}
	t.Fatal("decoder did not stop")
	return nil, nil
}

func TestRecordDecoder(t *testing.T) {
	const entraRecord = `{"CreationTime":"2015-06-29T20:03:19","Id":"80c76bd2-9d81-4c57-a97a-accfc3443dca","Operation":"PasswordLogonInitialAuthUsingPassword","OrganizationId":"41463f53-8812-40f4-890f-865bf6e35190","RecordType":15,"ResultStatus":"Succeeded","UserKey":"1153977025279851686@contoso.onmicrosoft.com","UserType":0,"Workload":"AzureActiveDirectory","ClientIP":"134.170.188.221","ObjectId":"797f4846-ba00-4fd7-ba43-dac1f8f63013","UserId":"Sam@contoso.onmicrosoft.com"}`
	const trickyRecord = `{"Id":"a]b[c","Operation":"Set \"Mailbox\" ]","RecordType":"ExchangeAdmin","Workload":"Exchange","CreationTime":"2024-01-02T03:04:05.1234567Z",
		"Parameters":[{"Name":"x","Value":"[{]}\\\"\u005d"}],"Nested":{"a":{"b":[1,[2,[3]]]}},"Text":"tab\tand \\ backslash"}`
	tests := []struct {
		name    string
		body    string
		want    []Record // Raw checked separately
		wantRaw []string
		wantErr string // "" means io.EOF after want
	}{
		{
			name: "normal array",
			body: "[" + entraRecord + ",\n" + `{"Id":"2","RecordType":-1,"CreationTime":"not a time"}` + "]",
			want: []Record{
				{ID: "80c76bd2-9d81-4c57-a97a-accfc3443dca", RecordType: "15", Operation: "PasswordLogonInitialAuthUsingPassword",
					Workload: "AzureActiveDirectory", CreationTime: time.Date(2015, 6, 29, 20, 3, 19, 0, time.UTC)},
				{ID: "2", RecordType: "-1"},
			},
			wantRaw: []string{entraRecord, `{"Id":"2","RecordType":-1,"CreationTime":"not a time"}`},
		},
		{name: "empty array", body: "[]"},
		{name: "empty array with whitespace", body: " \n[ \n ]\n"},
		{
			name: "brackets and escaped quotes inside strings and nesting",
			body: "[" + trickyRecord + "]",
			want: []Record{{ID: "a]b[c", RecordType: "ExchangeAdmin", Operation: `Set "Mailbox" ]`, Workload: "Exchange",
				CreationTime: time.Date(2024, 1, 2, 3, 4, 5, 123456700, time.UTC)}},
			wantRaw: []string{trickyRecord},
		},
		{
			name: "field names in any case",
			body: `[{"id":"x","recordtype":8,"OPERATION":"UserLoggedIn","workLoad":"AzureActiveDirectory","creationtime":"2024-05-06T07:08:09"}]`,
			want: []Record{{ID: "x", RecordType: "8", Operation: "UserLoggedIn", Workload: "AzureActiveDirectory",
				CreationTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}},
		},
		{
			name: "fields of unexpected types are left empty",
			body: `[{"Id":42,"RecordType":null,"Operation":["a"],"Workload":"Exchange","CreationTime":7}]`,
			want: []Record{{Workload: "Exchange"}},
		},
		{
			name:    "truncated inside a record",
			body:    "[" + entraRecord + `,{"Id":"2","Operation":"Fil`,
			want:    []Record{{ID: "80c76bd2-9d81-4c57-a97a-accfc3443dca"}},
			wantErr: "decoding record 1: blob truncated",
		},
		{
			name:    "truncated after a comma",
			body:    "[" + entraRecord + ",",
			want:    []Record{{ID: "80c76bd2-9d81-4c57-a97a-accfc3443dca"}},
			wantErr: "decoding record 1: blob truncated",
		},
		{
			name:    "truncated before the closing bracket",
			body:    "[" + entraRecord,
			want:    []Record{{ID: "80c76bd2-9d81-4c57-a97a-accfc3443dca"}},
			wantErr: "decoding record 1: blob truncated",
		},
		{name: "only an opening bracket", body: "[", wantErr: "decoding record 0: blob truncated"},
		{
			name:    "malformed element",
			body:    `[{"Id":"1"},{"Id":"2",,}]`,
			want:    []Record{{ID: "1"}},
			wantErr: "decoding record 1: invalid character ','",
		},
		{name: "element not an object", body: `[{"Id":"1"},"hello"]`, want: []Record{{ID: "1"}}, wantErr: `decoding record 1: expected a JSON object, found "hello"`},
		{name: "an object, not an array", body: `{"error":{"code":"AF20051"}}`, wantErr: `decoding blob: expected a JSON array, found "{"`},
		{name: "a string", body: `"[]"`, wantErr: `decoding blob: expected a JSON array, found string "[]"`},
		{name: "empty body", body: ``, wantErr: "decoding blob: empty body, expected a JSON array"},
		{name: "not JSON", body: `<html>`, wantErr: "decoding blob: invalid character '<'"},
		{name: "garbage after the array", body: `[{"Id":"1"}] [`, want: []Record{{ID: "1"}}, wantErr: "decoding blob: unexpected \"[\" after the array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per Read proves nothing relies on the whole body.
			recs, err := decodeAll(t, iotest.OneByteReader(strings.NewReader(tt.body)))

			if tt.wantErr == "" {
				assert.ErrorIs(t, err, io.EOF)
				assert.Equal(t, io.EOF, err, "a complete blob ends with io.EOF itself")
			} else {
				require.Error(t, err)
				assert.NotErrorIs(t, err, io.EOF, "a broken blob must not look complete")
				assert.Contains(t, err.Error(), tt.wantErr)
			}
			require.Len(t, recs, len(tt.want))
			for i, want := range tt.want {
				if strings.HasPrefix(tt.name, "truncated") || strings.HasPrefix(tt.name, "malformed") ||
					strings.HasPrefix(tt.name, "element") || strings.HasPrefix(tt.name, "garbage") {
					assert.Equal(t, want.ID, recs[i].ID)
					continue
				}
				got := recs[i]
				got.Raw = nil
				assert.Equal(t, want, got, "record %d", i)
			}
			for i, raw := range tt.wantRaw {
				assert.Equal(t, raw, string(recs[i].Raw), "record %d Raw is the bytes on the wire", i)
			}
		})
	}
}

func TestRecordRawIsOwnedByTheCaller(t *testing.T) {
	d := NewRecordDecoder(strings.NewReader(`[{"Id":"1"},{"Id":"2"}]`))
	first, err := d.Next()
	require.NoError(t, err)
	second, err := d.Next()
	require.NoError(t, err)
	assert.JSONEq(t, `{"Id":"1"}`, string(first.Raw), "decoding later records does not overwrite earlier Raw")
	assert.JSONEq(t, `{"Id":"2"}`, string(second.Raw))
}

func TestRecordDecoderReportsReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(`[{"Id":"1"},{"Id":`), iotest.ErrReader(boom))

	recs, err := decodeAll(t, r)

	assert.Len(t, recs, 1)
	assert.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "decoding record 1")
}

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2015-06-29T20:03:19", utc(2015, 6, 29, 20, 3, 19, 0), false},
		{"2015-06-29T20:03:19Z", utc(2015, 6, 29, 20, 3, 19, 0), false},
		{"2015-06-29T20:03:19.1", utc(2015, 6, 29, 20, 3, 19, 100e6), false},
		{"2015-05-23T17:35:00.000Z", utc(2015, 5, 23, 17, 35, 0, 0), false},
		{"2023-12-31T23:59:59.1234567", utc(2023, 12, 31, 23, 59, 59, 123456700), false},
		{"2023-12-31T23:59:59.1234567Z", utc(2023, 12, 31, 23, 59, 59, 123456700), false},
		{"2015-06-29T22:03:19+02:00", utc(2015, 6, 29, 20, 3, 19, 0), false},
		{"2015-06-29T15:03:19.5-05:00", utc(2015, 6, 29, 20, 3, 19, 500e6), false},
		{"2015-06-29T20:03", utc(2015, 6, 29, 20, 3, 0, 0), false},
		{"2015-06-29T20:03Z", utc(2015, 6, 29, 20, 3, 0, 0), false},
		{"2015-06-29", utc(2015, 6, 29, 0, 0, 0, 0), false},
		{"12/31/2023 11:59:59 PM", utc(2023, 12, 31, 23, 59, 59, 0), false},
		{"", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2015-13-29T20:03:19", time.Time{}, true},
		{"2015-06-29 20:03:19Z", time.Time{}, true},
		{"1435608199", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if tt.wantErr {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.True(t, tt.want.Equal(got), "%s: got %v want %v", tt.in, got, tt.want)
		assert.Equal(t, time.UTC, got.Location(), tt.in)
	}
}

func TestParseTimeIgnoresLocalZone(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("UTC+5", 5*60*60)
	defer func() { time.Local = saved }()

	got, err := ParseTime("2015-06-29T20:03:19")

	require.NoError(t, err)
	assert.Equal(t, time.Date(2015, 6, 29, 20, 3, 19, 0, time.UTC), got)
}

// BenchmarkRecordDecoder decodes a blob of typical Entra records.
func BenchmarkRecordDecoder(b *testing.B) {
	var blob bytes.Buffer
	blob.WriteByte('[')
	for i := range 500 {
		if i > 0 {
			blob.WriteByte(',')
		}
		fmt.Fprintf(&blob, `{"CreationTime":"2024-06-29T20:03:19","Id":"80c76bd2-9d81-4c57-a97a-%012d","Operation":"UserLoggedIn",`+
			`"OrganizationId":"41463f53-8812-40f4-890f-865bf6e35190","RecordType":15,"ResultStatus":"Success","UserKey":"10032000A1B2C3D4",`+
			`"UserType":0,"Version":1,"Workload":"AzureActiveDirectory","ClientIP":"2001:db8::abcd","ObjectId":"00000002-0000-0ff1-ce00-000000000000",`+
			`"UserId":"sam@contoso.onmicrosoft.com","AzureActiveDirectoryEventType":1,"ExtendedProperties":[{"Name":"ResultStatusDetail","Value":"Success"},`+
			`{"Name":"UserAgent","Value":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},`+
			`{"Name":"RequestType","Value":"OAuth2:Authorize"}],"ModifiedProperties":[],"Actor":[{"ID":"a1","Type":0},{"ID":"sam@contoso.onmicrosoft.com","Type":5}],`+
			`"ActorContextId":"41463f53-8812-40f4-890f-865bf6e35190","ActorIpAddress":"2001:db8::abcd","InterSystemsId":"2b7d1a4e-0000-4c8e-9c1f-1a2b3c4d5e6f",`+
			`"IntraSystemId":"9e0b8f2a-0000-4f5e-8c7d-6b5a4c3d2e1f","Target":[{"ID":"00000002-0000-0ff1-ce00-000000000000","Type":0}],`+
			`"TargetContextId":"41463f53-8812-40f4-890f-865bf6e35190","ApplicationId":"89bee1f7-5e6e-4d8a-9f3d-ecd601259da7","ErrorNumber":"0"}`, i)
	}
	blob.WriteByte(']')
	data := blob.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewRecordDecoder(bytes.NewReader(data))
		for {
			if _, err := d.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// referenceDecode is the decoder this package had before its scanner: a
// json.Decoder pass for each record's bytes, then json.Unmarshal of the
// fields. The scanner must agree with it on every input.
func referenceDecode(body []byte) ([]Record, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errors.New("not an array")
	}
	var recs []Record
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return recs, err
		}
		if raw[0] != '{' {
			return recs, errors.New("not an object")
		}
		var f struct {
			ID           string          `json:"Id"`
			RecordType   json.RawMessage `json:"RecordType"`
			Operation    string          `json:"Operation"`
			Workload     string          `json:"Workload"`
			CreationTime string          `json:"CreationTime"`
		}
		_ = json.Unmarshal(raw, &f)
		rec := Record{Raw: raw, ID: f.ID, Operation: f.Operation, Workload: f.Workload}
		if rt := bytes.TrimSpace(f.RecordType); len(rt) > 0 && string(rt) != "null" {
			rec.RecordType = string(rt)
			var s string
			if rt[0] == '"' && json.Unmarshal(rt, &s) == nil {
				rec.RecordType = s
			}
		}
		if t, err := ParseTime(f.CreationTime); err == nil {
			rec.CreationTime = t
		}
		recs = append(recs, rec)
	}
	if _, err := dec.Token(); err != nil {
		return recs, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return recs, errors.New("data after the array")
	}
	return recs, nil
}

// checkAgainstReference decodes body with both decoders and fails when they
// disagree on any record, its Raw bytes, or whether the blob is whole.
func checkAgainstReference(t *testing.T, body []byte, reader io.Reader) {
	t.Helper()
	want, wantErr := referenceDecode(body)
	d := NewRecordDecoder(reader)
	var got []Record
	var err error
	for {
		var rec Record
		if rec, err = d.Next(); err != nil {
			break
		}
		got = append(got, rec)
	}
	if wantErr == nil {
		require.Equal(t, io.EOF, err, "reference decoded the whole blob")
	} else {
		require.NotErrorIs(t, err, io.EOF, "reference failed with %v", wantErr)
	}
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, string(want[i].Raw), string(got[i].Raw), "record %d Raw", i)
		assert.Equal(t, want[i].ID, got[i].ID, "record %d", i)
		assert.Equal(t, want[i].RecordType, got[i].RecordType, "record %d", i)
		assert.Equal(t, want[i].Operation, got[i].Operation, "record %d", i)
		assert.Equal(t, want[i].Workload, got[i].Workload, "record %d", i)
		assert.True(t, want[i].CreationTime.Equal(got[i].CreationTime), "record %d CreationTime %v != %v", i, got[i].CreationTime, want[i].CreationTime)
	}
}

// TestRecordDecoderMatchesEncodingJSON compares the scanner with encoding/json
// on simulated blobs of every content type (records of 0.5 to 10+ KB), read
// whole and in small pieces.
func TestRecordDecoderMatchesEncodingJSON(t *testing.T) {
	for _, ct := range o365sim.ContentTypes {
		body := simBlob(t, ct, 300)
		t.Run(ct, func(t *testing.T) {
			checkAgainstReference(t, body, bytes.NewReader(body))
			checkAgainstReference(t, body, iotest.HalfReader(bytes.NewReader(body)))
			checkAgainstReference(t, body, &chunkReader{data: body, size: 1000})
		})
	}
}

// FuzzRecordDecoder checks that the scanner agrees with encoding/json on any
// body: the same records, byte for byte, and the same verdict on the blob.
func FuzzRecordDecoder(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[{}]`, `[{"Id":"1"},{"Id":"2"}]`, `[{"Id":"a\u0062","RecordType":"x\"y"}]`,
		`[{"id":1,"ID":"x","RecordType":null,"recordtype":[1,{"a":-0.5e+3}]}]`,
		`[{"CreationTime":"2024-02-30T00:00:00","Workload":"\ud83d\ude00"}]`,
		`[{"K":tru}]`, `[{"Id":"1"} , {"Id":"2"}  ] `, `[1]`, `[{"a":[1,2,]}]`, `[{"\u0049d":"esc"}]`,
		`[{"Operation":"x` + "\x01" + `"}]`, `[{"Workload":"` + "\xff" + `"}]`, `[{"Id":"1"}]x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstReference(t, body, iotest.OneByteReader(bytes.NewReader(body)))
		checkAgainstReference(t, body, bytes.NewReader(body))
	})
}

type chunkReader struct {
	data []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// simBlob fetches the first blob of ct holding at least n records from the
// simulator.
func simBlob(t testing.TB, ct string, n int) []byte {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim, err := o365sim.New(o365sim.Config{Seed: 7, RecordsPerBlob: n, SubscribedAtStart: o365sim.ContentTypes, Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.NoError(t, sim.Start(""))
	t.Cleanup(func() { _ = sim.Close() })
	for _, b := range sim.Blobs(ct) {
		if b.Records < n {
			continue
		}
		req, err := http.NewRequest(http.MethodGet, b.ContentURI, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+sim.AccessToken())
		res, err := sim.HTTPClient().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		return body
	}
	t.Fatalf("no blob of %s with %d records", ct, n)
	return nil
}

// BenchmarkRecordDecoderSim decodes simulated blobs of each content type:
// the record sizes and shapes the collector sees.
func BenchmarkRecordDecoderSim(b *testing.B) {
	for _, ct := range o365sim.ContentTypes {
		data := simBlob(b, ct, 500)
		records := 0
		b.Run(ct, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				d := NewRecordDecoder(bytes.NewReader(data))
				records = 0
				for {
					if _, err := d.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
					records++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
		})
	}
}
