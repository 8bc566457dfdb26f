package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure" // ts_parse and ts_format, for the mapping
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/resources"
)

func normalizeSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Mapping").
		Summary("Adds an `o365` object to each Office 365 audit record; a fast equivalent of `resources/normalize.blobl`.").
		Description(`
Produces the same result as the Bloblang mapping `+"`normalize.blobl`"+` (the record unchanged plus `+"`o365`"+`
with timestamp, client, record_type, tenant_id, workload, operation, user and result), without decoding the
whole record: it scans the top-level keys, reads the few fields it needs and inserts `+"`\"o365\":{...}`"+` before
the record's closing brace, leaving every other byte as it was.

Records it cannot handle that way (content that is not a JSON object, a record that already has an `+"`o365`"+`
key, or a field with an unusual type such as a non-integer RecordType) are run through the mapping itself, so
the result is always the mapping's, including its error for content that is not JSON.`).
		Example("Normalise records", "", `
pipeline:
  processors:
    - office365_normalize: {}
`)
}

func init() {
	service.MustRegisterProcessor("office365_normalize", normalizeSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
			return newNormalizer()
		})
}

// recordTypeNames is the RecordType table of normalize.blobl, parsed out of the mapping so that
// the two cannot drift apart.
var recordTypeNames = func() map[int64]string {
	m := regexp.MustCompile(`(?s)let record_type_names = \{(.*?)\n\}`).FindStringSubmatch(resources.NormalizeMapping)
	if m == nil {
		panic("office365_normalize: no record_type_names table in normalize.blobl")
	}
	out := map[int64]string{}
	for _, e := range regexp.MustCompile(`(?m)^\s+"(-?\d+)": "([^"\\]+)",?$`).FindAllStringSubmatch(m[1], -1) {
		id, err := strconv.ParseInt(e[1], 10, 64)
		if err != nil {
			panic(err)
		}
		out[id] = e[2]
	}
	if len(out) == 0 {
		panic("office365_normalize: empty record_type_names table in normalize.blobl")
	}
	return out
}()

type normalizer struct {
	exe *bloblang.Executor // the mapping, for the records the fast path leaves alone
}

func newNormalizer() (*normalizer, error) {
	exe, err := bloblang.Parse(resources.NormalizeMapping)
	if err != nil {
		return nil, err
	}
	return &normalizer{exe: exe}, nil
}

// Process adds the o365 object to msg.
func (n *normalizer) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	b, err := msg.AsBytes()
	if err == nil {
		if out, ok := normalizeFast(b); ok {
			msg.SetBytes(out)
			return service.MessageBatch{msg}, nil
		}
	}
	res, err := msg.BloblangQuery(n.exe)
	if err != nil {
		return nil, err // as the mapping processor: the message goes on unchanged, flagged with the error
	}
	if res == nil {
		return nil, nil // the mapping never deletes the root
	}
	return service.MessageBatch{res}, nil
}

// Close does nothing.
func (n *normalizer) Close(context.Context) error { return nil }

// The top-level fields the mapping reads.
const (
	nfCreationTime = iota
	nfClientIP
	nfClientIPAddress
	nfActorIPAddress
	nfRecordType
	nfOrganizationID // OrganizationId
	nfOrganizationIDCaps
	nfWorkload
	nfOperation
	nfUserID
	nfResultStatus
	nfCount
)

func fieldIndex(key []byte) int {
	switch string(key) {
	case "CreationTime":
		return nfCreationTime
	case "ClientIP":
		return nfClientIP
	case "ClientIPAddress":
		return nfClientIPAddress
	case "ActorIpAddress":
		return nfActorIPAddress
	case "RecordType":
		return nfRecordType
	case "OrganizationId":
		return nfOrganizationID
	case "OrganizationID":
		return nfOrganizationIDCaps
	case "Workload":
		return nfWorkload
	case "Operation":
		return nfOperation
	case "UserId":
		return nfUserID
	case "ResultStatus":
		return nfResultStatus
	case "o365":
		return nfCount // marks the o365 key
	}
	return -1
}

// topScan is the result of scanning a record's top level.
type topScan struct {
	fields  [nfCount][]byte // raw JSON values, nil when absent; the last of duplicate keys wins
	hasO365 bool
	closeAt int  // index of the closing '}'
	empty   bool // the object has no keys
}

const maxDepth = 10000 // encoding/json's limit

// scanTop validates b as exactly one JSON object (plus surrounding whitespace) and records the
// raw values of the fields the mapping reads. ok is false for anything else.
func scanTop(b []byte, s *topScan) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		s.empty, s.closeAt = true, i
		return skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		kEnd, esc, ok := scanString(b, i)
		if !ok {
			return false
		}
		key := b[i+1 : kEnd-1]
		if esc {
			var k string
			if json.Unmarshal(b[i:kEnd], &k) != nil {
				return false
			}
			key = []byte(k)
		}
		i = skipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		vEnd, ok := scanValue(b, i, 1)
		if !ok {
			return false
		}
		switch f := fieldIndex(key); {
		case f == nfCount:
			s.hasO365 = true
		case f >= 0:
			s.fields[f] = b[i:vEnd]
		}
		i = skipWS(b, vEnd)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			s.closeAt = i
			return skipWS(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue returns the index just after the JSON value starting at b[i].
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return 0, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				end, _, ok := scanString(b, i)
				if !ok {
					return 0, false
				}
				i = skipWS(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			end, ok := scanValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == 't':
		return scanLit(b, i, "true")
	case c == 'f':
		return scanLit(b, i, "false")
	case c == 'n':
		return scanLit(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	}
	return 0, false
}

func scanLit(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return 0, false
}

// scanString returns the index after the closing quote of the string at b[i] and whether it
// contains escapes.
func scanString(b []byte, i int) (end int, esc, ok bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, true
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				return 0, false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHexByte(b[i+1]) || !isHexByte(b[i+2]) || !isHexByte(b[i+3]) || !isHexByte(b[i+4]) {
					return 0, false, false
				}
				i += 4
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		}
	}
	return 0, false, false
}

func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = scanDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := scanDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := scanDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func scanDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// jsonString decodes a raw JSON string value.
func jsonString(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// isPlainInt reports whether s is an optional '-' followed by digits only.
func isPlainInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var timeLayouts = [...]string{"2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00", "01/02/2006 03:04:05 PM"}

// normalizeFast returns the record with the o365 object added, or ok false when the record
// needs the mapping itself.
func normalizeFast(b []byte) ([]byte, bool) {
	var s topScan
	if !scanTop(b, &s) || s.hasO365 {
		return nil, false
	}
	o := make([]byte, 0, 384)
	o = append(o, `"o365":{`...)
	first := true
	key := func(k string) {
		if !first {
			o = append(o, ',')
		}
		first = false
		o = append(o, '"')
		o = append(o, k...)
		o = append(o, `":`...)
	}

	// timestamp: only a string can match one of the layouts.
	if raw := s.fields[nfCreationTime]; len(raw) > 0 && raw[0] == '"' {
		ct, ok := jsonString(raw)
		if !ok {
			return nil, false
		}
		ct = strings.TrimSpace(ct)
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, ct); err == nil {
				key("timestamp")
				o = append(o, '"')
				o = t.UTC().AppendFormat(o, "2006-01-02T15:04:05.999999999Z07:00")
				o = append(o, '"')
				break
			}
		}
	}

	// client: the first of the three that is neither null nor blank.
	for _, f := range [...]int{nfClientIP, nfClientIPAddress, nfActorIPAddress} {
		raw := s.fields[f]
		if len(raw) == 0 || raw[0] == 'n' {
			continue
		}
		if raw[0] != '"' {
			return nil, false // a number, bool, object or array: leave its string form to the mapping
		}
		v, ok := jsonString(raw)
		if !ok {
			return nil, false
		}
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		host, port, isIP := resources.ParseClientIP(v)
		key("client")
		if isIP {
			o = append(o, `{"ip":`...)
		} else {
			o = append(o, `{"address":`...)
		}
		o = appendJSONString(o, host)
		if port >= 0 {
			o = append(o, `,"port":`...)
			o = strconv.AppendInt(o, int64(port), 10)
		}
		o = append(o, '}')
		break
	}

	// record_type
	if raw := s.fields[nfRecordType]; len(raw) > 0 {
		var id int64
		hasID, name := false, ""
		switch c := raw[0]; {
		case c == '"':
			v, ok := jsonString(raw)
			if !ok {
				return nil, false
			}
			v = strings.TrimSpace(v)
			switch {
			case isPlainInt(v) && !strings.HasPrefix(strings.TrimPrefix(v, "-"), "0") || v == "0":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, false
				}
				id, hasID = n, true
			case strings.ContainsAny(v, "0123456789") || mayParseAsFloat(v):
				return nil, false // "025" (octal to int64()), "1.5", "0x19", "Inf": let the mapping decide
			default:
				name = v
			}
		case c == '-' || c >= '0' && c <= '9':
			if !isPlainInt(string(raw)) {
				return nil, false
			}
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return nil, false
			}
			id, hasID = n, true
		}
		switch {
		case hasID:
			key("record_type")
			o = append(o, `{"id":`...)
			o = strconv.AppendInt(o, id, 10)
			if n, ok := recordTypeNames[id]; ok {
				o = append(o, `,"name":`...)
				o = appendJSONString(o, n)
			}
			o = append(o, '}')
		case name != "":
			key("record_type")
			o = append(o, `{"name":`...)
			o = appendJSONString(o, name)
			o = append(o, '}')
		}
	}

	// Copied as they are; null counts as missing.
	present := func(raw []byte) bool { return len(raw) > 0 && raw[0] != 'n' }
	switch {
	case present(s.fields[nfOrganizationID]):
		key("tenant_id")
		o = append(o, s.fields[nfOrganizationID]...)
	case present(s.fields[nfOrganizationIDCaps]):
		key("tenant_id")
		o = append(o, s.fields[nfOrganizationIDCaps]...)
	}
	for _, f := range [...]struct {
		idx  int
		name string
	}{{nfWorkload, "workload"}, {nfOperation, "operation"}, {nfUserID, "user"}} {
		if raw := s.fields[f.idx]; present(raw) {
			key(f.name)
			o = append(o, raw...)
		}
	}

	// result
	if raw := s.fields[nfResultStatus]; present(raw) {
		var v string
		switch c := raw[0]; {
		case c == '"':
			var ok bool
			if v, ok = jsonString(raw); !ok {
				return nil, false
			}
		case c == 't' || c == 'f':
			v = string(raw)
		case isPlainInt(string(raw)):
			v = string(raw)
		default:
			return nil, false // objects, arrays and non-integer numbers: the mapping's string form
		}
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "":
		case "succeeded", "success", "true":
			key("result")
			o = append(o, `"success"`...)
		case "failed", "failure", "false":
			key("result")
			o = append(o, `"failure"`...)
		case "partiallysucceeded":
			key("result")
			o = append(o, `"partial"`...)
		default:
			key("result")
			o = appendJSONString(o, v)
		}
	}
	o = append(o, '}')

	out := make([]byte, 0, len(b)+len(o)+1)
	out = append(out, b[:s.closeAt]...)
	if !s.empty {
		out = append(out, ',')
	}
	out = append(out, o...)
	out = append(out, b[s.closeAt:]...)
	return out, true
}

// mayParseAsFloat reports whether strconv.ParseFloat might accept a digit-less s (inf, nan).
func mayParseAsFloat(s string) bool {
	s = strings.ToLower(strings.TrimLeft(s, "+-"))
	return s == "inf" || s == "infinity" || s == "nan"
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD as with encoding/json.
func appendJSONString(o []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			b, _ := json.Marshal(s)
			return append(o, b...)
		}
	}
	o = append(o, '"')
	o = append(o, s...)
	return append(o, '"')
}
