package okta

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/oktadetect/oktadetect/tests/bench/corpus"
)

// The input's own cost per event is mostly parseEvents (client.go): one
// encoding/json pass validates the page and splits it into json.RawMessage
// copies, then a second Unmarshal per event scans the whole event again for
// three fields. BenchmarkParsePage measures it on a full page of realistic
// events against a one-pass prototype (benchParseOnePass below: split the
// array by a string-aware byte scan, slice the events out of the body
// without copying, validate the page once with fastjson and read the three
// fields with a reused fastjson parser). TestParseOnePassMatches checks that the
// prototype gives the same events and rejects the same pages, so it can
// replace parseEvents as is.
//
//	go test -run XXX -bench ParsePage -benchmem ./plugin/okta/

func benchPage(n int) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range corpus.Events(n) {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

func BenchmarkParsePage(b *testing.B) {
	page := benchPage(1000)
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseEvents(page, "application/json"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
	})
	b.Run("one_pass_fastjson", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		var p fastjson.Parser
		for b.Loop() {
			if _, err := benchParseOnePass(&p, page, "application/json"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
	})
}

func TestParseOnePassMatches(t *testing.T) {
	pages := []string{
		string(benchPage(50)),
		`[]`, ` [ ] `, "[\n{\"uuid\":\"a\",\"eventType\":\"x\",\"published\":\"p\"}\n]",
		`[{"uuid":"a\u00e9\"}","eventType":"t","nested":{"uuid":"no","s":"]}[{"},"published":"p","uuid":"last"}]`,
		`[{"x":[1,2,{"y":"}"}]},{}]`,
		// rejected
		``, `{}`, `<html>`, `[`, `[{]`, `[{"a":1},]`, `[{"a":1}{"b":2}]`, `[{"a":1}] x`, `[1]`, `["s"]`,
		`[{"uuid":1}]`, `[{"a":tru}]`, `[{"a":"` + "\x01" + `"}]`, `[{"a":"\q"}]`, `[{"a":"\u12"}]`, `[{"a":"\u12zz"}]`, `[{"a":1e}]`, `[{"a":01}]`,
	}
	var p fastjson.Parser
	for _, pg := range pages {
		want, wantErr := parseEvents([]byte(pg), "application/json")
		got, gotErr := benchParseOnePass(&p, []byte(pg), "application/json")
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%.60q: parseEvents error %v, one pass error %v", pg, wantErr, gotErr)
		}
		if len(want) != len(got) {
			t.Fatalf("%.60q: %d events, one pass %d", pg, len(want), len(got))
		}
		for i := range want {
			w, g := want[i], got[i]
			if !bytes.Equal(w.raw, g.raw) || w.uuid != g.uuid || w.eventType != g.eventType || w.published != g.published {
				t.Fatalf("%.60q event %d: %+v vs %+v", pg, i, w, g)
			}
		}
	}
}

// benchParseOnePass is the proposed replacement for parseEvents.
func benchParseOnePass(p *fastjson.Parser, body []byte, contentType string) ([]event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, transientError(fmt.Sprintf("System Log response is not a JSON array (Content-Type %q, body starts %q)", contentType, snippet(trimmed)), nil)
	}
	invalid := func(err error) error {
		return transientError(fmt.Sprintf("System Log response is not valid JSON (%d bytes)", len(body)), err)
	}
	// fastjson's parser is lenient (bad numbers, escapes, control
	// characters): one strict validating pass over the page first.
	if err := fastjson.ValidateBytes(trimmed); err != nil {
		return nil, invalid(err)
	}
	events := make([]event, 0, bytes.Count(trimmed, []byte(`"uuid"`)))
	i := skipWS(trimmed, 1)
	if i < len(trimmed) && trimmed[i] == ']' {
		if skipWS(trimmed, i+1) != len(trimmed) {
			return nil, invalid(fmt.Errorf("data after the array"))
		}
		return events, nil
	}
	for n := 0; ; n++ {
		end, err := valueEnd(trimmed, i)
		if err != nil {
			return nil, invalid(err)
		}
		raw := trimmed[i:end:end]
		v, err := p.ParseBytes(raw)
		if err != nil {
			return nil, invalid(err)
		}
		if v.Type() != fastjson.TypeObject {
			return nil, transientError(fmt.Sprintf("System Log event %d is not a JSON object", n), nil)
		}
		ev := event{raw: raw}
		var fieldErr error
		// Visit, not Get: with duplicate keys the last wins, as in encoding/json.
		v.GetObject().Visit(func(k []byte, fv *fastjson.Value) {
			var dst *string
			switch string(k) {
			case "uuid":
				dst = &ev.uuid
			case "eventType":
				dst = &ev.eventType
			case "published":
				dst = &ev.published
			default:
				return
			}
			if fv.Type() == fastjson.TypeNull {
				return
			}
			s, err := fv.StringBytes()
			if err != nil {
				fieldErr = err
				return
			}
			*dst = string(s)
		})
		if fieldErr != nil {
			return nil, transientError(fmt.Sprintf("System Log event %d is not a JSON object", n), fieldErr)
		}
		events = append(events, ev)
		i = skipWS(trimmed, end)
		if i >= len(trimmed) {
			return nil, invalid(fmt.Errorf("unterminated array"))
		}
		switch trimmed[i] {
		case ',':
			i = skipWS(trimmed, i+1)
		case ']':
			if skipWS(trimmed, i+1) != len(trimmed) {
				return nil, invalid(fmt.Errorf("data after the array"))
			}
			return events, nil
		default:
			return nil, invalid(fmt.Errorf("unexpected %q after event %d", trimmed[i], n))
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the end of the object or array starting at b[i] (a
// string-aware bracket count over a page already validated).
// Scalars end at the next ',' or ']' outside a string.
func valueEnd(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if depth == 0 {
				return j + 1, nil
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, nil
			}
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j, nil
			}
		}
	}
	return 0, fmt.Errorf("unterminated value")
}
