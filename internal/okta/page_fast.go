package okta

import (
	"bytes"

	"github.com/oktadetect/oktadetect/internal/jsonbytes"
)

// splitPage is parseEvents' fast path, for the pages Okta sends. In one walk
// over a page (trimmed, starting with '[') it bounds the nesting as
// jsonbytes.TooDeep does, slices out the events and reads each one's uuid,
// eventType and published from its top level, as eventFields does. It does
// not validate: the caller validates the page once it succeeds, which the
// bounded nesting makes safe. On anything out of the ordinary (an element
// that is not an object, an escaped key, one of the three fields escaped or
// neither a string nor null, nesting beyond jsonbytes.MaxDepth, bytes no
// valid page has there) it returns ok false and the caller takes the general
// path, so the results, and the errors, are those of the general path
// (TestSplitPageMatchesGeneral, FuzzParseEvents).
func splitPage(b []byte) (events []Event, ok bool) {
	i := jsonbytes.SkipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		return []Event{}, jsonbytes.SkipSpace(b, i+1) == len(b)
	}
	events = make([]Event, 0, len(b)/2048+8)
	for i < len(b) && b[i] == '{' {
		ev, end, ok := splitEvent(b, i)
		if !ok {
			return nil, false
		}
		events = append(events, ev)
		i = jsonbytes.SkipSpace(b, end)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = jsonbytes.SkipSpace(b, i+1)
		case ']':
			return events, jsonbytes.SkipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
	return nil, false
}

// splitEvent reads the object starting at b[start] (page depth 2): its
// three fields, and where it ends.
func splitEvent(b []byte, start int) (ev Event, end int, ok bool) {
	i := jsonbytes.SkipSpace(b, start+1)
	if i < len(b) && b[i] == '}' {
		ev.Raw = b[start : i+1 : i+1]
		return ev, i + 1, true
	}
	for i < len(b) && b[i] == '"' {
		kend := jsonbytes.StringEnd(b, i)
		if kend < 0 {
			return ev, 0, false
		}
		key := b[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return ev, 0, false
		}
		i = jsonbytes.SkipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return ev, 0, false
		}
		i = jsonbytes.SkipSpace(b, i+1)
		if i >= len(b) {
			return ev, 0, false
		}
		var dst *string
		switch {
		case bytes.EqualFold(key, keyUUID):
			dst = &ev.UUID
		case bytes.EqualFold(key, keyEventType):
			dst = &ev.EventType
		case bytes.EqualFold(key, keyPublished):
			dst = &ev.Published
		}
		if dst != nil {
			switch b[i] {
			case '"':
				vend := jsonbytes.StringEnd(b, i)
				if vend < 0 {
					return ev, 0, false
				}
				str := b[i+1 : vend-1]
				if bytes.IndexByte(str, '\\') >= 0 {
					return ev, 0, false
				}
				*dst = validUTF8(str)
				i = vend
			case 'n':
				if !bytes.HasPrefix(b[i:], []byte("null")) {
					return ev, 0, false
				}
				i += 4
			default:
				return ev, 0, false
			}
		} else if i, ok = jsonbytes.SkipValue(b, i, 2, jsonbytes.MaxDepth); !ok {
			return ev, 0, false
		}
		i = jsonbytes.SkipSpace(b, i)
		if i >= len(b) {
			return ev, 0, false
		}
		switch b[i] {
		case ',':
			i = jsonbytes.SkipSpace(b, i+1)
		case '}':
			ev.Raw = b[start : i+1 : i+1]
			return ev, i + 1, true
		default:
			return ev, 0, false
		}
	}
	return ev, 0, false
}

var (
	keyUUID      = []byte("uuid")
	keyEventType = []byte("eventType")
	keyPublished = []byte("published")
)
