package o365api

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// errNeedMore means the scan reached the end of the buffered input inside a
// value: more of the body is needed to finish it.
var errNeedMore = errors.New("need more input")

// The top-level record fields the scanner captures, matched as encoding/json
// matches struct fields: case-insensitively, the last occurrence winning.
const (
	fieldID = iota
	fieldRecordType
	fieldOperation
	fieldWorkload
	fieldCreationTime
	numFields
)

var fieldNames = [numFields]string{"Id", "RecordType", "Operation", "Workload", "CreationTime"}

// strPlain marks the bytes that can appear in a JSON string unescaped and
// do not end it.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanner validates one JSON value in data, as encoding/json's scanner does,
// and records the raw values of the known fields of a top-level object.
type scanner struct {
	data   []byte
	fields [numFields][]byte
}

func (s *scanner) reset(data []byte) {
	s.data = data
	s.fields = [numFields][]byte{}
}

func (s *scanner) skipSpace(i int) int {
	for i < len(s.data) {
		switch s.data[i] {
		case ' ', '\n', '\r', '\t':
			i++
		default:
			return i
		}
	}
	return i
}

// value scans the value starting at data[i] and returns the index after it.
func (s *scanner) value(i, depth int) (int, error) {
	if i >= len(s.data) {
		return i, errNeedMore
	}
	switch c := s.data[i]; {
	case c == '{':
		return s.object(i, depth+1)
	case c == '[':
		return s.array(i, depth+1)
	case c == '"':
		return s.str(i)
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(i)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	default:
		return i, syntaxErr(c, "looking for beginning of value")
	}
}

func (s *scanner) object(i, depth int) (int, error) {
	if depth > maxNesting {
		return i, errors.New("exceeded max depth")
	}
	i = s.skipSpace(i + 1)
	if i >= len(s.data) {
		return i, errNeedMore
	}
	if s.data[i] == '}' {
		return i + 1, nil
	}
	for {
		if s.data[i] != '"' {
			return i, syntaxErr(s.data[i], "looking for beginning of object key string")
		}
		keyStart := i
		var err error
		if i, err = s.str(i); err != nil {
			return i, err
		}
		key := s.data[keyStart:i]
		if i = s.skipSpace(i); i >= len(s.data) {
			return i, errNeedMore
		}
		if s.data[i] != ':' {
			return i, syntaxErr(s.data[i], "after object key")
		}
		valStart := s.skipSpace(i + 1)
		if i, err = s.value(valStart, depth); err != nil {
			return i, err
		}
		if depth == 1 {
			s.capture(key, s.data[valStart:i])
		}
		if i = s.skipSpace(i); i >= len(s.data) {
			return i, errNeedMore
		}
		switch s.data[i] {
		case ',':
			if i = s.skipSpace(i + 1); i >= len(s.data) {
				return i, errNeedMore
			}
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(s.data[i], "after object key:value pair")
		}
	}
}

// capture keeps the value of a known top-level field; key is the quoted
// key. Like encoding/json into a string field, a value of another type
// leaves the field as it was; RecordType is kept raw whatever its type.
func (s *scanner) capture(key, val []byte) {
	name := key[1 : len(key)-1]
	for f, want := range fieldNames {
		if len(name) == len(want) && equalFoldASCII(name, want) {
			s.set(f, val)
			return
		}
	}
	// A key spelt with escapes or non-ASCII letters may still fold to a
	// field name, as in encoding/json.
	if bytes.IndexByte(name, '\\') < 0 && isASCII(name) {
		return
	}
	unq := stringValue(key)
	for f, want := range fieldNames {
		if strings.EqualFold(unq, want) {
			s.set(f, val)
			return
		}
	}
}

func (s *scanner) set(f int, val []byte) {
	if val[0] == '"' || f == fieldRecordType {
		s.fields[f] = val
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func (s *scanner) array(i, depth int) (int, error) {
	if depth > maxNesting {
		return i, errors.New("exceeded max depth")
	}
	i = s.skipSpace(i + 1)
	if i >= len(s.data) {
		return i, errNeedMore
	}
	if s.data[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(i, depth); err != nil {
			return i, err
		}
		if i = s.skipSpace(i); i >= len(s.data) {
			return i, errNeedMore
		}
		switch s.data[i] {
		case ',':
			i = s.skipSpace(i + 1)
		case ']':
			return i + 1, nil
		default:
			return i, syntaxErr(s.data[i], "after array element")
		}
	}
}

func (s *scanner) str(i int) (int, error) {
	data := s.data
	i++
	for {
		for i < len(data) && strPlain[data[i]] {
			i++
		}
		if i >= len(data) {
			return i, errNeedMore
		}
		switch c := data[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 >= len(data) {
				return i, errNeedMore
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(data) {
						return k, errNeedMore
					}
					if !isHex(data[k]) {
						return k, syntaxErr(data[k], "in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				return i + 1, syntaxErr(data[i+1], "in string escape code")
			}
		default:
			return i, syntaxErr(c, "in string literal")
		}
	}
}

// number scans JSON's number grammar. A number is never the last byte of a
// record, so reaching the end of data means more is needed.
func (s *scanner) number(i int) (int, error) {
	data := s.data
	if data[i] == '-' {
		i++
		if i >= len(data) {
			return i, errNeedMore
		}
		if data[i] < '0' || data[i] > '9' {
			return i, syntaxErr(data[i], "in numeric literal")
		}
	}
	if data[i] == '0' {
		i++
	} else {
		i = s.digits(i)
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) {
			return i, errNeedMore
		}
		if data[i] < '0' || data[i] > '9' {
			return i, syntaxErr(data[i], "after decimal point in numeric literal")
		}
		i = s.digits(i)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return i, errNeedMore
		}
		if data[i] < '0' || data[i] > '9' {
			return i, syntaxErr(data[i], "in exponent of numeric literal")
		}
		i = s.digits(i)
	}
	if i >= len(data) {
		return i, errNeedMore
	}
	return i, nil
}

func (s *scanner) digits(i int) int {
	for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
		i++
	}
	return i
}

func (s *scanner) literal(i int, lit string) (int, error) {
	for k := 1; k < len(lit); k++ {
		if i+k >= len(s.data) {
			return i + k, errNeedMore
		}
		if s.data[i+k] != lit[k] {
			return i + k, syntaxErr(s.data[i+k], "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// equalFoldASCII compares b with the ASCII name want, ignoring case.
func equalFoldASCII(b []byte, want string) bool {
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		w := want[i]
		if w >= 'A' && w <= 'Z' {
			w += 'a' - 'A'
		}
		if c != w {
			return false
		}
	}
	return true
}

// syntaxErr words a syntax error as encoding/json does.
func syntaxErr(c byte, context string) error {
	return errors.New("invalid character " + quoteChar(c) + " " + context)
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}
