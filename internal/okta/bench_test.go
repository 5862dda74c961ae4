package okta

import (
	"bytes"
	"testing"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// parseEvents (page.go) reads an ordinary page in two passes (splitPage,
// then a strict validation) and any other page on its general path
// (parsePageGeneral: jsonbytes.TooDeep, validation, jsonbytes.EachElement,
// eventFields).
// BenchmarkParsePage measures both against the straightforward encoding/json
// reading (parseEventsStdlib in page_test.go) on a full page of realistic
// events; TestParseEventsMatchesStdlib checks they give the same events and
// reject the same pages, TestSplitPageMatchesGeneral that the fast path
// agrees with the general one wherever it answers.
//	go test -run XXX -bench ParsePage -benchmem ./internal/okta/

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
			if _, err := parseEventsStdlib(page, "application/json"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
	})
	b.Run("general_path", func(b *testing.B) {
		trimmed := bytes.TrimSpace(page)
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parsePageGeneral(trimmed, len(page)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
	})
	b.Run("parseEvents", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseEvents(page, "application/json"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
	})
}

func TestParseEventsMatchesStdlib(t *testing.T) {
	pages := []string{
		string(benchPage(50)),
		`[]`, ` [ ] `, "[\n{\"uuid\":\"a\",\"eventType\":\"x\",\"published\":\"p\"}\n]",
		`[{"uuid":"a\u00e9\"}","eventType":"t","nested":{"uuid":"no","s":"]}[{"},"published":"p","uuid":"last"}]`,
		`[{"x":[1,2,{"y":"}"}]},{}]`,
		// rejected
		``, `{}`, `<html>`, `[`, `[{]`, `[{"a":1},]`, `[{"a":1}{"b":2}]`, `[{"a":1}] x`, `[1]`, `["s"]`,
		`[{"uuid":1}]`, `[{"a":tru}]`, `[{"a":"` + "\x01" + `"}]`, `[{"a":"\q"}]`, `[{"a":"\u12"}]`, `[{"a":"\u12zz"}]`, `[{"a":1e}]`, `[{"a":01}]`,
	}
	for _, pg := range pages {
		want, wantErr := parseEventsStdlib([]byte(pg), "application/json")
		got, gotErr := parseEvents([]byte(pg), "application/json")
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%.60q: parseEvents error %v, one pass error %v", pg, wantErr, gotErr)
		}
		if len(want) != len(got) {
			t.Fatalf("%.60q: %d events, one pass %d", pg, len(want), len(got))
		}
		for i := range want {
			w, g := want[i], got[i]
			if !bytes.Equal(w.Raw, g.Raw) || w.UUID != g.UUID || w.EventType != g.EventType || w.Published != g.Published {
				t.Fatalf("%.60q event %d: %+v vs %+v", pg, i, w, g)
			}
		}
	}
}

// splitPage either declines a page or gives exactly the general path's
// events; where it answers, the page is then validated, so only valid pages
// are compared.
func TestSplitPageMatchesGeneral(t *testing.T) {
	pages := []string{
		string(benchPage(200)),
		`[]`, ` [ ] `, `[{}]`, `[{ }, {"a" : [ ] , "b":{}}]`,
		`[{"UUID":"a","uuid":"b","EVENTTYPE":"t","Published":"p"}]`,
		`[{"uuid":"a","uuid":null,"eventType":null}]`,
		`[{"\u0075uid":"esc"}]`, `[{"uuid":"a\"b"}]`, `[{"uuid":5}]`, `[{"uuid":["x"]}]`,
		`[{"x":"a\\","uuid":"after-backslashes"}]`, `[{"x":"\\\"]}","uuid":"u"}]`,
		`[{"n":-1.5E+3,"t":true,"f":false,"z":null,"uuid":"u"}]`,
		`[{"\u212auid":"kelvin"}]`, `[{"uu\u0131d":"dotless"}]`, "[{\"\u212a\":1,\"uuid\":\"k\"}]",
		`[{"uuid":"inv\u00e9\ud800"}]`, "[{\"uuid\":\"\xff\xfe\"}]",
		string(append(append([]byte(`[`), deepEvent("deep", 9_997)...), ']')),
		string(append(append([]byte(`[`), deepEvent("too-deep", 9_998)...), ']')),
		`[{"a":1}]x`, `[{"a":1},]`, `[1]`, `[{"a":tr[ue}]`, `[{"a":"}`,
	}
	if _, ok := splitPage(bytes.TrimSpace(benchPage(200))); !ok {
		t.Fatal("splitPage declines an ordinary page")
	}
	for _, pg := range pages {
		checkSplitPage(t, []byte(pg))
	}
}

func checkSplitPage(t *testing.T, page []byte) {
	t.Helper()
	trimmed := bytes.TrimSpace(page)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return
	}
	fast, ok := splitPage(trimmed)
	if !ok {
		return
	}
	general, err := parsePageGeneral(trimmed, len(page))
	if err != nil {
		return // an invalid page: parseEvents validates it after splitPage and rejects it
	}
	if len(fast) != len(general) {
		t.Fatalf("%.80q: splitPage %d events, general path %d", page, len(fast), len(general))
	}
	for i := range fast {
		f, g := fast[i], general[i]
		if !bytes.Equal(f.Raw, g.Raw) || f.UUID != g.UUID || f.EventType != g.EventType || f.Published != g.Published {
			t.Fatalf("%.80q event %d: splitPage %+v, general path %+v", page, i, f, g)
		}
	}
}
