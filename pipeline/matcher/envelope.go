package matcher

import (
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/schemas"
)

// appendEnvelope encodes an envelope as encoding/json would (same field
// order and omissions, times in RFC 3339 with nanoseconds), without
// reflection: it runs once per match, the matcher's hot path. Raw fields
// (current_context, data) come from decoded JSON and are copied as they
// are.
func appendEnvelope(b []byte, e *schemas.Envelope) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"event_id":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"event_type":`...)
	b = appendString(b, e.EventType)
	b = append(b, `,"event_time":"`...)
	b = e.EventTime.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","resource":`...)
	b = appendString(b, e.Resource)
	b = append(b, `,"resource_id":`...)
	b = appendString(b, e.ResourceID)
	b = append(b, `,"webhook_id":`...)
	b = appendString(b, e.WebhookID)
	if len(e.CurrentContext) > 0 {
		b = append(b, `,"current_context":`...)
		b = append(b, e.CurrentContext...)
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	if len(e.Changes) > 0 {
		b = append(b, `,"changes":`...)
		b = append(b, e.Changes...)
	}
	return append(b, '}')
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8, like encoding/json (without HTML escaping).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
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
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case '\u2028':
				b = append(b, `\u2028`...)
			case '\u2029':
				b = append(b, `\u2029`...)
			default:
				b = append(b, `\ufffd`...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
