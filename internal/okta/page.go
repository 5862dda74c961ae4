package okta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/oktadetect/oktadetect/internal/jsonbytes"
)

// Event is one System Log event exactly as Okta sent it, with the fields an
// input reads for metadata and de-duplication.
type Event struct {
	Raw       []byte // the event's JSON, a slice of the response body
	UUID      string
	EventType string
	Published string
	// BadField names a field among the three that is neither a string nor
	// null (Okta never sends one); it is left empty and the event passed on.
	BadField string
}

// Page is one System Log response.
type Page struct {
	Events []Event
	Next   string // the rel="next" link, verbatim; "" when Okta sent none
	Rate   RateInfo
}

// parseEvents splits a System Log page into events, keeping each event's
// bytes exactly as Okta sent them (slices of body, not copies).
//
// An ordinary page takes two passes: splitPage (nesting bounded, events
// split, each event's uuid, eventType and published read from its top level)
// and one strict validation (fastjson.ValidateBytes). Any other page takes
// parsePageGeneral (jsonbytes.TooDeep, validation, jsonbytes.EachElement,
// eventFields), which also words every rejection. Both are a fraction of the
// time of encoding/json splitting into RawMessages and unmarshalling each
// again (BenchmarkParsePage).
func parseEvents(body []byte, contentType string) ([]Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, malformed(ReasonEmptyBody, fmt.Sprintf("System Log response is not a JSON array: the body is empty (Content-Type %q)", contentType), nil)
	}
	if trimmed[0] != '[' {
		return nil, malformed(ReasonNotJSONArray, fmt.Sprintf("System Log response is not a JSON array (Content-Type %q, body starts %q)", contentType, snippet(trimmed)), nil)
	}
	invalid := func(err error) error {
		return malformed(ReasonInvalidJSON, fmt.Sprintf("System Log response is not valid JSON (%d bytes)", len(body)), err)
	}
	// The common page, in two passes: one scan that bounds the nesting,
	// splits the events and reads their fields (splitPage), then the strict
	// validation. Anything unusual takes the general path below, which gives
	// every error its precise reason.
	if events, ok := splitPage(trimmed); ok {
		if err := fastjson.ValidateBytes(trimmed); err != nil {
			return nil, invalid(err)
		}
		return events, nil
	}
	return parsePageGeneral(trimmed, len(body))
}

// parsePageGeneral is parseEvents' general path, for any page (trimmed,
// starting with '['): the nesting bounded by jsonbytes.TooDeep, a strict
// validation, a string-aware split (jsonbytes.EachElement) and eventFields on
// each event, every failure with its reason.
func parsePageGeneral(trimmed []byte, bodyLen int) ([]Event, error) {
	invalid := func(err error) error {
		return malformed(ReasonInvalidJSON, fmt.Sprintf("System Log response is not valid JSON (%d bytes)", bodyLen), err)
	}
	// The validator below recurses once per level: bound the nesting first
	// (encoding/json's limit), so a hostile body cannot exhaust the stack.
	if jsonbytes.TooDeep(trimmed, jsonbytes.MaxDepth) {
		return nil, malformed(ReasonTooDeep, fmt.Sprintf("System Log response nests deeper than %d levels (%d bytes)", jsonbytes.MaxDepth, bodyLen), nil)
	}
	// fastjson's parser is lenient (bad numbers, escapes, control
	// characters): one strict validating pass over the page first.
	if err := fastjson.ValidateBytes(trimmed); err != nil {
		return nil, invalid(err)
	}
	events := make([]Event, 0, bytes.Count(trimmed, []byte(`"uuid"`)))
	err := jsonbytes.EachElement(trimmed, func(n int, raw []byte) error {
		ev, err := eventFields(raw, n)
		events = append(events, ev)
		return err
	})
	var eventErr *RequestError
	switch {
	case errors.As(err, &eventErr):
		return nil, err // eventFields': it names the event
	case err != nil:
		return nil, invalid(err)
	}
	return events, nil
}

// validUTF8 returns s as a string with each invalid byte replaced by U+FFFD,
// as encoding/json decodes strings.
func validUTF8(s []byte) string {
	if utf8.Valid(s) {
		return string(s)
	}
	return string([]rune(string(s)))
}

// snippet returns the first bytes of a body for an error message, printable only.
func snippet(b []byte) string {
	const n = 40
	if len(b) > n {
		b = b[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}

// eventFields reads uuid, eventType and published from the top level of
// event n (raw, already validated) without parsing its nested values, so an
// event's depth is bounded only by jsonbytes.MaxDepth, not by fastjson's parser
// (300). As encoding/json: keys match case-insensitively after unescaping,
// the last duplicate wins, null leaves the field as it was. Any other
// non-string value leaves it empty too and is named in BadField: one odd
// event must not stall the input on its page forever.
func eventFields(raw []byte, n int) (Event, error) {
	ev := Event{Raw: raw}
	notObject := func(cause error) error {
		return malformed(ReasonInvalidEvent, fmt.Sprintf("System Log event %d is not a JSON object", n), cause)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return ev, notObject(nil)
	}
	i := jsonbytes.SkipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return ev, nil
	}
	for i < len(raw) {
		kend, err := jsonbytes.ValueEnd(raw, i)
		if err != nil || raw[i] != '"' {
			return ev, notObject(err)
		}
		key := raw[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(raw[i:kend], &k); err != nil {
				return ev, notObject(err)
			}
			key = []byte(k)
		}
		i = jsonbytes.SkipSpace(raw, kend)
		if i >= len(raw) || raw[i] != ':' {
			return ev, notObject(fmt.Errorf("no ':' after a key"))
		}
		i = jsonbytes.SkipSpace(raw, i+1)
		vend, err := jsonbytes.ValueEnd(raw, i)
		if err != nil {
			return ev, notObject(err)
		}
		var dst *string
		var name string
		switch k := string(key); {
		case strings.EqualFold(k, "uuid"):
			dst, name = &ev.UUID, "uuid"
		case strings.EqualFold(k, "eventType"):
			dst, name = &ev.EventType, "eventType"
		case strings.EqualFold(k, "published"):
			dst, name = &ev.Published, "published"
		}
		if dst != nil {
			switch raw[i] {
			case 'n': // null
			case '"':
				str := raw[i+1 : vend-1]
				if bytes.IndexByte(str, '\\') < 0 {
					*dst = validUTF8(str)
					break
				}
				// Escapes (rare in these fields): decoded exactly as
				// encoding/json does, lone surrogates included.
				if err := json.Unmarshal(raw[i:vend], dst); err != nil {
					return ev, notObject(err)
				}
			default:
				*dst = ""
				if ev.BadField == "" {
					ev.BadField = name
				}
			}
		}
		i = jsonbytes.SkipSpace(raw, vend)
		if i >= len(raw) {
			break
		}
		switch raw[i] {
		case ',':
			i = jsonbytes.SkipSpace(raw, i+1)
		case '}':
			return ev, nil
		default:
			return ev, notObject(fmt.Errorf("unexpected %q in an object", raw[i]))
		}
	}
	return ev, notObject(fmt.Errorf("unterminated object"))
}
