package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/resources"
)

func redactDLPSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Mapping").
		Summary("Removes detected sensitive values from DLP records; a fast equivalent of `resources/redact_dlp.blobl`.").
		Description(`
Produces the same result as the Bloblang mapping `+"`redact_dlp.blobl`"+`: a record whose Operation is
DlpRuleMatch, DlpRuleUndo or DlpInfo, or whose metadata `+"`o365_content_type`"+` is DLP.All, loses every
`+"`DetectedValues`"+` key anywhere in it and gets `+"`o365.redacted: true`"+` (merged into an existing `+"`o365`"+`
object); every other record passes through unchanged, usually without being parsed.

DLP records are redacted on their raw bytes: the processor validates the record, cuts the
`+"`DetectedValues`"+` members out and splices `+"`redacted`"+` in, leaving every other byte as it was. Records it
cannot handle that way (content that is not a JSON object, a SensitiveInformationDetections given as a
string, duplicate keys, a non-object `+"`o365`"+`, invalid UTF-8, ...) are run through the mapping itself, so
the result is always the mapping's, including its errors.`).
		Example("Redact DLP records", "", `
pipeline:
  processors:
    - office365_redact_dlp: {}
`)
}

func init() {
	service.MustRegisterProcessor("office365_redact_dlp", redactDLPSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
			return newDLPRedactor()
		})
}

type dlpRedactor struct {
	exe *bloblang.Executor // the mapping, for the records the fast path leaves alone
}

func newDLPRedactor() (*dlpRedactor, error) {
	exe, err := bloblang.Parse(resources.RedactDLPMapping)
	if err != nil {
		return nil, err
	}
	return &dlpRedactor{exe: exe}, nil
}

// Process redacts msg when it is a DLP record.
func (p *dlpRedactor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	if b, err := msg.AsBytes(); err == nil {
		switch dlp, sure := p.isDLP(msg, b); {
		case sure && !dlp:
			return service.MessageBatch{msg}, nil
		case sure:
			if out, ok := redactDLPFast(b); ok {
				msg.SetBytes(out)
				return service.MessageBatch{msg}, nil
			}
		}
	}
	res, err := msg.BloblangQuery(p.exe)
	if err != nil {
		return nil, err // as the mapping processor: the message goes on unchanged, flagged with the error
	}
	if res == nil {
		return nil, nil // the mapping never deletes the root
	}
	return service.MessageBatch{res}, nil
}

// Close does nothing.
func (p *dlpRedactor) Close(context.Context) error { return nil }

// isDLP decides as the mapping does whether msg is a DLP record; sure is false when only the
// mapping can tell.
func (p *dlpRedactor) isDLP(msg *service.Message, b []byte) (dlp, sure bool) {
	if v, ok := msg.MetaGetMut("o365_content_type"); ok && v != nil {
		switch v := v.(type) {
		case string:
			if v == "DLP.All" {
				return true, true
			}
		case []byte:
			if string(v) == "DLP.All" {
				return true, true
			}
		default:
			return false, false
		}
	}
	// The Operation value can only equal a Dlp* name if the bytes hold "Dlp" or a \u escape.
	if !bytes.Contains(b, []byte("Dlp")) && !bytes.Contains(b, []byte(`\u`)) {
		return false, true
	}
	var s topScan
	if !scanTop(b, &s) {
		return false, false
	}
	op := s.fields[nfOperation]
	if len(op) == 0 || op[0] != '"' {
		return false, true
	}
	str, ok := jsonString(op)
	if !ok {
		return false, false
	}
	switch str {
	case "DlpRuleMatch", "DlpRuleUndo", "DlpInfo":
		return true, true
	}
	return false, true
}

// A redactEdit replaces b[start:end] with ins.
type redactEdit struct {
	start, end int
	ins        string
}

type redactScan struct {
	b     []byte
	edits []redactEdit
	keys  [][]byte // keys of the objects being scanned, for the duplicate check
}

const maxRedactKeys = 256 // larger objects go to the mapping, to bound the duplicate check

// redactDLPFast returns the redacted DLP record, or ok false when the record needs the mapping.
func redactDLPFast(b []byte) ([]byte, bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	s := redactScan{b: b, keys: make([][]byte, 0, 32)}
	end, ok := s.object(i, 1, objTop)
	if !ok || skipWS(b, end) != len(b) {
		return nil, false
	}
	n := len(b)
	for _, e := range s.edits {
		n += len(e.ins) - (e.end - e.start)
	}
	out := make([]byte, 0, n)
	pos := 0
	for _, e := range s.edits {
		out = append(out, b[pos:e.start]...)
		out = append(out, e.ins...)
		pos = e.end
	}
	return append(out, b[pos:]...), true
}

const (
	objPlain = iota
	objTop   // the record: gets o365.redacted
	objO365  // the record's o365 object: gets redacted: true
)

// key returns the decoded key of the string at b[i:end].
func (s *redactScan) key(i, end int, esc bool) ([]byte, bool) {
	if !esc {
		return s.b[i+1 : end-1], true
	}
	var k string
	if json.Unmarshal(s.b[i:end], &k) != nil {
		return nil, false
	}
	return []byte(k), true
}

// value scans the value at b[i], recording edits for the DetectedValues inside.
func (s *redactScan) value(i, depth int) (int, bool) {
	if i >= len(s.b) {
		return 0, false
	}
	switch s.b[i] {
	case '{':
		return s.object(i, depth, objPlain)
	case '[':
		if depth >= maxDepth {
			return 0, false
		}
		i = skipWS(s.b, i+1)
		if i < len(s.b) && s.b[i] == ']' {
			return i + 1, true
		}
		for {
			end, ok := s.value(i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipWS(s.b, end)
			if i >= len(s.b) {
				return 0, false
			}
			if s.b[i] == ']' {
				return i + 1, true
			}
			if s.b[i] != ',' {
				return 0, false
			}
			i = skipWS(s.b, i+1)
		}
	}
	return scanValue(s.b, i, depth) // a scalar
}

// object scans the object at b[i].
func (s *redactScan) object(i, depth, kind int) (int, bool) {
	if depth >= maxDepth {
		return 0, false
	}
	b := s.b
	keysFrom := len(s.keys)
	defer func() { s.keys = s.keys[:keysFrom] }()
	kept := false       // a member before this one stays
	pending := -1       // start of the leading members removed so far, while !kept
	lastEnd := -1       // end of the last member's value
	hasSpecial := false // o365 in the record, redacted in o365
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, s.closeObject(i, kind, false, hasSpecial)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		kStart := i
		kEnd, esc, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		k, ok := s.key(kStart, kEnd, esc)
		if !ok {
			return 0, false
		}
		for _, seen := range s.keys[keysFrom:] {
			if bytes.Equal(seen, k) {
				return 0, false // duplicate keys: the mapping keeps the last one
			}
		}
		if len(s.keys)-keysFrom >= maxRedactKeys {
			return 0, false
		}
		s.keys = append(s.keys, k)
		i = skipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		vStart := skipWS(b, i+1)
		var vEnd int
		drop := false
		switch {
		case string(k) == "DetectedValues":
			drop = true
			vEnd, ok = scanValue(b, vStart, depth+1)
		case string(k) == "SensitiveInformationDetections" && vStart < len(b) && b[vStart] == '"':
			return 0, false // a raw JSON string: the mapping parses it
		case kind == objTop && string(k) == "o365":
			hasSpecial = true
			switch {
			case vStart < len(b) && b[vStart] == '{':
				s.flushPending(&pending, kStart, &kept)
				vEnd, ok = s.object(vStart, depth+1, objO365)
			case vStart < len(b) && b[vStart] == 'n':
				if vEnd, ok = scanLit(b, vStart, "null"); ok {
					s.flushPending(&pending, kStart, &kept)
					s.edits = append(s.edits, redactEdit{vStart, vEnd, `{"redacted":true}`})
				}
			default:
				return 0, false // the mapping fails on a non-object o365
			}
		case kind == objO365 && string(k) == "redacted":
			hasSpecial = true
			if vEnd, ok = scanValue(b, vStart, depth+1); ok {
				s.flushPending(&pending, kStart, &kept)
				s.edits = append(s.edits, redactEdit{vStart, vEnd, "true"})
			}
		default:
			s.flushPending(&pending, kStart, &kept)
			vEnd, ok = s.value(vStart, depth+1)
		}
		if !ok {
			return 0, false
		}
		if drop {
			switch {
			case kept: // cut from the end of the previous member
				s.edits = append(s.edits, redactEdit{lastEnd, vEnd, ""})
			case pending < 0:
				pending = kStart
			}
		} else {
			kept = true
		}
		lastEnd = vEnd
		i = skipWS(b, vEnd)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if pending >= 0 { // every member was removed
				s.edits = append(s.edits, redactEdit{pending, lastEnd, ""})
			}
			return i + 1, s.closeObject(i, kind, kept, hasSpecial)
		default:
			return 0, false
		}
	}
}

// flushPending cuts the removed leading members up to the member at kStart, which stays.
func (s *redactScan) flushPending(pending *int, kStart int, kept *bool) {
	if *pending >= 0 {
		s.edits = append(s.edits, redactEdit{*pending, kStart, ""})
		*pending = -1
	}
	*kept = true
}

// closeObject adds o365.redacted before the closing brace at b[at] when needed.
func (s *redactScan) closeObject(at, kind int, kept, hasSpecial bool) bool {
	if hasSpecial || kind == objPlain {
		return true
	}
	ins := `"redacted":true`
	if kind == objTop {
		ins = `"o365":{"redacted":true}`
	}
	if kept {
		ins = "," + ins
	}
	s.edits = append(s.edits, redactEdit{at, at, ins})
	return true
}
