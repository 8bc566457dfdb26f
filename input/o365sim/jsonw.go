package o365sim

import (
	"strconv"
	"unicode/utf8"
)

// jw appends compact JSON to a reusable buffer. It exists so that blobs of
// millions of records stream without reflection or maps (mgmt-api records
// need a stable field order and the difference between null and absent).
type jw struct {
	b        []byte
	comma    []bool // per open container: the next element needs a comma
	afterKey bool
}

func (w *jw) reset() { w.b, w.comma, w.afterKey = w.b[:0], w.comma[:0], false }

func (w *jw) sep() {
	if w.afterKey {
		w.afterKey = false
		return
	}
	if n := len(w.comma); n > 0 {
		if w.comma[n-1] {
			w.b = append(w.b, ',')
		}
		w.comma[n-1] = true
	}
}

func (w *jw) open(c byte) *jw {
	w.sep()
	w.b = append(w.b, c)
	w.comma = append(w.comma, false)
	return w
}

func (w *jw) close(c byte) *jw {
	w.b = append(w.b, c)
	w.comma = w.comma[:len(w.comma)-1]
	return w
}

func (w *jw) obj() *jw    { return w.open('{') }
func (w *jw) endObj() *jw { return w.close('}') }
func (w *jw) arr() *jw    { return w.open('[') }
func (w *jw) endArr() *jw { return w.close(']') }

func (w *jw) key(k string) *jw {
	w.sep()
	w.b = appendJSONString(w.b, k)
	w.b = append(w.b, ':')
	w.afterKey = true
	return w
}

func (w *jw) str(v string) *jw { w.sep(); w.b = appendJSONString(w.b, v); return w }
func (w *jw) int(v int64) *jw  { w.sep(); w.b = strconv.AppendInt(w.b, v, 10); return w }
func (w *jw) bool(v bool) *jw  { w.sep(); w.b = strconv.AppendBool(w.b, v); return w }
func (w *jw) null() *jw        { w.sep(); w.b = append(w.b, "null"...); return w }

func (w *jw) kstr(k, v string) *jw { return w.key(k).str(v) }
func (w *jw) kint(k string, v int64) *jw {
	return w.key(k).int(v)
}
func (w *jw) kbool(k string, v bool) *jw { return w.key(k).bool(v) }

// nameValues writes [{"Name":n,"Value":v},...] from alternating pairs.
func (w *jw) nameValues(k string, kv ...string) *jw {
	w.key(k).arr()
	for i := 0; i+1 < len(kv); i += 2 {
		w.obj().kstr("Name", kv[i]).kstr("Value", kv[i+1]).endObj()
	}
	return w.endArr()
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	run := 0 // start of the pending run of bytes that need no escaping
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[run:i]...)
			b = append(b, `\ufffd`...)
			i++
			run = i
			continue
		}
		b = append(b, s[run:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		run = i
	}
	b = append(b, s[run:]...)
	return append(b, '"')
}
