package o365api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Record is one audit record decoded from a blob. Raw is the record's
// original JSON bytes, unchanged; the other fields are read from it.
type Record struct {
	Raw          []byte
	ID           string
	RecordType   string // the raw JSON value as text, e.g. "15" (unknown values kept)
	Operation    string
	Workload     string
	CreationTime time.Time // UTC; zero when absent or unparseable
}

// RecordDecoder reads the records of one content blob, a JSON array, one at
// a time without holding the whole blob in memory.
type RecordDecoder struct {
	dec     *json.Decoder
	started bool
	index   int   // index of the next record
	err     error // sticky: io.EOF after the array, or the first failure
}

// NewRecordDecoder returns a decoder reading a blob from r.
func NewRecordDecoder(r io.Reader) *RecordDecoder {
	return &RecordDecoder{dec: json.NewDecoder(r)}
}

// Next returns the next record, io.EOF after the last one, or an error
// naming the record index when the blob is not a JSON array of objects,
// is truncated or is malformed. Once it fails it keeps failing.
func (d *RecordDecoder) Next() (Record, error) {
	if d.err != nil {
		return Record{}, d.err
	}
	rec, err := d.next()
	if err != nil {
		d.err = err
		return Record{}, err
	}
	d.index++
	return rec, nil
}

func (d *RecordDecoder) next() (Record, error) {
	if !d.started {
		d.started = true
		tok, err := d.dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Record{}, errors.New("decoding blob: empty body, expected a JSON array")
			}
			return Record{}, fmt.Errorf("decoding blob: %w", err)
		}
		if delim, ok := tok.(json.Delim); !ok || delim != '[' {
			return Record{}, fmt.Errorf("decoding blob: expected a JSON array, found %v", describeToken(tok))
		}
	}
	if !d.dec.More() {
		return Record{}, d.finish()
	}
	var raw json.RawMessage // Decode copies into a fresh slice the caller may keep
	if err := d.dec.Decode(&raw); err != nil {
		return Record{}, d.recordError(err)
	}
	if raw[0] != '{' {
		return Record{}, fmt.Errorf("decoding record %d: expected a JSON object, found %s", d.index, truncateMessage(string(raw)))
	}
	return parseRecord(raw), nil
}

// finish consumes the closing bracket and checks that nothing follows it.
func (d *RecordDecoder) finish() error {
	tok, err := d.dec.Token()
	if err != nil {
		return d.recordError(err)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != ']' {
		return fmt.Errorf("decoding record %d: expected ',' or ']', found %v", d.index, describeToken(tok))
	}
	if tok, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("decoding blob: after the array: %w", err)
		}
		return fmt.Errorf("decoding blob: unexpected %v after the array", describeToken(tok))
	}
	return io.EOF
}

// recordError makes an end of input inside the array a truncation error,
// never io.EOF, which would look like a complete blob.
func (d *RecordDecoder) recordError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("decoding record %d: blob truncated: %w", d.index, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("decoding record %d: %w", d.index, err)
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("string %q", truncateMessage(v))
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}

// recordFields are the common-schema fields (management-api.md §8.1) the
// client reads; encoding/json matches them case-insensitively, which
// third-party fixtures need (OrganizationID vs OrganizationId).
type recordFields struct {
	ID           string          `json:"Id"`
	RecordType   json.RawMessage `json:"RecordType"`
	Operation    string          `json:"Operation"`
	Workload     string          `json:"Workload"`
	CreationTime string          `json:"CreationTime"`
}

// parseRecord reads the known fields of one record. A field of an
// unexpected type is left empty rather than failing the record: Raw keeps
// everything.
func parseRecord(raw json.RawMessage) Record {
	var f recordFields
	// raw is one valid JSON object, so the only possible errors are
	// *json.UnmarshalTypeError, after which Unmarshal still fills the rest.
	_ = json.Unmarshal(raw, &f)
	rec := Record{
		Raw:        raw,
		ID:         f.ID,
		RecordType: recordTypeText(f.RecordType),
		Operation:  f.Operation,
		Workload:   f.Workload,
	}
	if t, err := ParseTime(f.CreationTime); err == nil {
		rec.CreationTime = t
	}
	return rec
}

// recordTypeText is an int on the wire (e.g. 15, or -1 in fixtures), and a
// string name from some clients: numbers keep their text, strings lose quotes.
func recordTypeText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// Layouts ParseTime tries. time.Parse accepts a fraction of any length after
// the seconds even when a layout has none.
var (
	dateLayouts      = []string{time.DateOnly}
	zonedTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}
	// CreationTime has no zone and no fraction (§8.1) and is UTC; minutes
	// are an accepted list-window form; the US form appears in nested AIR
	// timestamps (§8.5).
	zonelessTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "1/2/2006 3:04:05 PM"}
)

// ParseTime parses every time shape the API uses and returns it in UTC:
// 2006-01-02T15:04:05 with an optional fraction of up to 9 digits, with or
// without a Z or an offset; 2006-01-02T15:04; 2006-01-02; and RFC 3339. A
// time without a zone is UTC, never local time.
func ParseTime(s string) (time.Time, error) {
	layouts := zonelessTimeLayouts
	switch {
	case len(s) == len(time.DateOnly):
		layouts = dateLayouts
	case hasZone(s):
		layouts = zonedTimeLayouts
	}
	for _, layout := range layouts {
		// time.Parse reads a zone-less time as UTC.
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parsing time %q: not a time format the API uses", s)
}

// hasZone reports whether s ends in Z or a ±hh:mm offset.
func hasZone(s string) bool {
	n := len(s)
	if n == 0 {
		return false
	}
	if s[n-1] == 'Z' || s[n-1] == 'z' {
		return true
	}
	return n > len("2006-01-02T15:04") && (s[n-6] == '+' || s[n-6] == '-') && s[n-3] == ':'
}
