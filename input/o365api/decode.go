package o365api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
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

const (
	// decodeBufSize is the first read buffer; it doubles while one record
	// does not fit, so a blob of any size costs about its largest record.
	decodeBufSize = 64 << 10
	// slabSize is the block records' Raw bytes are carved from: one
	// allocation per few dozen records instead of one per record. A record
	// keeps at most its own slab alive, and its Raw is capped, so appending
	// to it never reaches a neighbour.
	slabSize = 64 << 10
	// slabMaxRecord is the largest record copied into a slab; larger ones
	// get their own allocation so a slab is not wasted on one record.
	slabMaxRecord = slabSize / 4
	// maxNesting matches encoding/json's limit.
	maxNesting = 10000
	// internMax bounds each table of interned values (workloads, record
	// types, operations): they have few distinct values, but a hostile
	// blob must not grow memory without limit.
	internMax = 1024
)

// RecordDecoder reads the records of one content blob, a JSON array, one at
// a time without holding the whole blob in memory.
//
// It is a single pass of a small hand-written JSON scanner: it checks the
// syntax of each record as encoding/json would, finds the record's extent
// and reads the top-level fields the client needs on the way, with no
// reflection and about one allocation per record (its Id); Raw is carved
// from a shared slab.
type RecordDecoder struct {
	r       io.Reader
	buf     []byte // buf[pos:] is read but not yet consumed
	pos     int
	readErr error // the reader's first error (io.EOF at the end)

	started   bool
	needComma bool  // a record was read: a ',' or ']' comes next
	index     int   // index of the next record
	err       error // sticky: io.EOF after the array, or the first failure

	slab   []byte
	intern [3]map[string]string // workload, record type, operation
	scan   scanner
}

// NewRecordDecoder returns a decoder reading a blob from r.
func NewRecordDecoder(r io.Reader) *RecordDecoder {
	return &RecordDecoder{r: r}
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
		if err := d.start(); err != nil {
			return Record{}, err
		}
	}
	c, err := d.peekNonSpace()
	if err != nil {
		return Record{}, d.recordError(err)
	}
	if d.needComma {
		switch c {
		case ']':
			d.pos++
			return Record{}, d.finish()
		case ',':
			d.pos++
			// Only to report a body that ends after the comma; element()
			// reads the next value itself.
			if _, err = d.peekNonSpace(); err != nil {
				return Record{}, d.recordError(err)
			}
		default:
			return Record{}, fmt.Errorf("decoding record %d: invalid character %s after array element", d.index, quoteChar(c))
		}
	} else if c == ']' {
		d.pos++
		return Record{}, d.finish()
	}
	return d.element()
}

// start consumes the opening bracket. Anything else gets encoding/json's
// description of what the body holds instead.
func (d *RecordDecoder) start() error {
	d.started = true
	d.buf = make([]byte, 0, decodeBufSize)
	c, err := d.peekNonSpace()
	if errors.Is(err, io.EOF) {
		return errors.New("decoding blob: empty body, expected a JSON array")
	}
	if err != nil {
		return fmt.Errorf("decoding blob: %w", err)
	}
	if c == '[' {
		d.pos++
		return nil
	}
	dec := json.NewDecoder(io.MultiReader(bytes.NewReader(d.buf[d.pos:]), d.r))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decoding blob: %w", err)
	}
	return fmt.Errorf("decoding blob: expected a JSON array, found %v", describeToken(tok))
}

// element scans one array element, reading more of the body until it is
// complete, and returns it as a record.
func (d *RecordDecoder) element() (Record, error) {
	s := &d.scan
	for {
		s.reset(d.buf[d.pos:])
		end, err := s.value(0, 0)
		if err == nil {
			raw := d.buf[d.pos : d.pos+end]
			if raw[0] != '{' {
				return Record{}, fmt.Errorf("decoding record %d: expected a JSON object, found %s", d.index, truncateMessage(string(raw)))
			}
			rec := d.record(raw)
			d.pos += end
			d.needComma = true
			return rec, nil
		}
		if err != errNeedMore {
			return Record{}, fmt.Errorf("decoding record %d: %w", d.index, err)
		}
		if d.readErr != nil {
			return Record{}, d.recordError(d.readErr)
		}
		// Ask for at least as much again as the partial record holds, so
		// that rescanning a record that arrives in small reads stays linear.
		d.fill(max(len(d.buf)-d.pos, 512))
	}
}

// record builds the Record of one complete top-level object whose fields
// the scanner has just located in raw.
func (d *RecordDecoder) record(raw []byte) Record {
	s := &d.scan
	rec := Record{Raw: d.keep(raw)}
	if v := s.fields[fieldID]; v != nil {
		rec.ID = stringValue(v)
	}
	if v := s.fields[fieldWorkload]; v != nil {
		rec.Workload = d.internString(0, v)
	}
	if v := s.fields[fieldRecordType]; v != nil {
		if v[0] == '"' {
			rec.RecordType = d.internString(1, v)
		} else if string(v) != "null" {
			rec.RecordType = d.internRaw(1, v)
		}
	}
	if v := s.fields[fieldOperation]; v != nil {
		rec.Operation = d.internString(2, v)
	}
	if v := s.fields[fieldCreationTime]; v != nil {
		rec.CreationTime = parseTimeValue(v)
	}
	return rec
}

// keep copies raw into the current slab (or its own slice when large) and
// returns the copy, capped at its length.
func (d *RecordDecoder) keep(raw []byte) []byte {
	n := len(raw)
	if n > slabMaxRecord {
		return bytes.Clone(raw)
	}
	if cap(d.slab)-len(d.slab) < n {
		d.slab = make([]byte, 0, slabSize)
	}
	start := len(d.slab)
	d.slab = append(d.slab, raw...)
	return d.slab[start : start+n : start+n]
}

// internString returns the text of the JSON string v from table t,
// allocating only the first time a value is seen.
func (d *RecordDecoder) internString(t int, v []byte) string {
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return stringValue(v)
	}
	return d.internRaw(t, inner)
}

func (d *RecordDecoder) internRaw(t int, b []byte) string {
	m := d.intern[t]
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	if m == nil {
		m = make(map[string]string)
		d.intern[t] = m
	}
	if len(m) < internMax {
		m[s] = s
	}
	return s
}

// stringValue is the text of a JSON string, unescaped as encoding/json
// does (invalid UTF-8 becomes U+FFFD).
func stringValue(v []byte) string {
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(v, &s) // v is a valid JSON string
	return s
}

// parseTimeValue reads CreationTime: the common zone-less form without
// allocating, anything else through ParseTime.
func parseTimeValue(v []byte) time.Time {
	inner := v[1 : len(v)-1]
	if t, ok := parseSimpleTime(inner); ok {
		return t
	}
	if t, err := ParseTime(stringValue(v)); err == nil {
		return t
	}
	return time.Time{}
}

// parseSimpleTime parses exactly 2006-01-02T15:04:05 (UTC), with the same
// range checks as time.Parse.
func parseSimpleTime(b []byte) (time.Time, bool) {
	if len(b) != 19 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	if day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}

// finish checks that nothing but whitespace follows the closing bracket.
func (d *RecordDecoder) finish() error {
	c, err := d.peekNonSpace()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("decoding blob: after the array: %w", err)
	}
	return fmt.Errorf("decoding blob: unexpected %q after the array", string(c))
}

// peekNonSpace skips whitespace and returns the next byte without
// consuming it; io.EOF (or the read error) when the body ends first.
func (d *RecordDecoder) peekNonSpace() (byte, error) {
	for {
		for d.pos < len(d.buf) {
			c := d.buf[d.pos]
			if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				return c, nil
			}
			d.pos++
		}
		if d.readErr != nil {
			return 0, d.readErr
		}
		d.fill(1)
	}
}

// fill drops consumed bytes, grows the buffer when the unconsumed part
// fills it, and reads until at least want more bytes arrived, the buffer is
// full, or the reader fails.
func (d *RecordDecoder) fill(want int) {
	if d.pos > 0 {
		n := copy(d.buf, d.buf[d.pos:])
		d.buf = d.buf[:n]
		d.pos = 0
	}
	if need := len(d.buf) + want; need > cap(d.buf) {
		grown := make([]byte, len(d.buf), max(2*cap(d.buf), need))
		copy(grown, d.buf)
		d.buf = grown
	}
	got := 0
	for got < want && len(d.buf) < cap(d.buf) {
		n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+n]
		got += n
		if err != nil {
			d.readErr = err
			return
		}
	}
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
