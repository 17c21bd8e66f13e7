package payload

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// This file walks JSON that json.Valid accepted, without decoding values:
// a value is handed on as the sub-slice of the input that spells it, so it is
// neither copied nor re-encoded. Every index is bounds-checked anyway, so
// input that is not valid ends the walk early instead of panicking.

// members walks the members of an object: call next until it reports false.
type members struct {
	b []byte
	i int // index of the next key, or -1 when done
}

func newMembers(obj []byte) members {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return members{b: obj, i: -1}
	}
	return members{b: obj, i: skipSpace(obj, i+1)}
}

// next returns the quoted key and the value of the next member.
func (m *members) next() (rawKey, val []byte, ok bool) {
	b, i := m.b, m.i
	if i < 0 || i >= len(b) || b[i] != '"' {
		m.i = -1
		return nil, nil, false
	}
	keyEnd := skipString(b, i)
	j := skipSpace(b, keyEnd)
	if j >= len(b) || b[j] != ':' {
		m.i = -1
		return nil, nil, false
	}
	start := skipSpace(b, j+1)
	end := skipValue(b, start)
	if end <= start {
		m.i = -1
		return nil, nil, false
	}
	m.i = skipSpace(b, end)
	if m.i < len(b) && b[m.i] == ',' {
		m.i = skipSpace(b, m.i+1)
	} else {
		m.i = -1
	}
	return b[i:keyEnd], b[start:end], true
}

// keyBytes returns the inside of a quoted key and whether it must be decoded
// to compare like encoding/json does: it holds escapes or bytes that are not
// UTF-8 (which decoding turns into U+FFFD).
func keyBytes(raw []byte) (inner []byte, decode bool) {
	if len(raw) < 2 {
		return nil, false
	}
	inner = raw[1 : len(raw)-1]
	return inner, bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner)
}

// decodeKey returns a quoted key as a string, unescaping only when needed.
func decodeKey(raw []byte) string {
	inner, decode := keyBytes(raw)
	if decode {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(inner)
}

// trimSpace trims JSON whitespace, which is narrower than bytes.TrimSpace's.
func trimSpace(b []byte) []byte {
	b = b[skipSpace(b, 0):]
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
