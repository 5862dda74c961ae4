package okta

import (
	"bytes"
	"testing"

	"github.com/oktadetect/oktadetect/tests/bench/corpus"
)

// parseEvents (client.go) reads a page in one pass: strict validation, a
// string-aware split that slices events out of the body, and three fields read
// with a pooled fastjson parser. BenchmarkParsePage measures it against the
// straightforward encoding/json reading (parseEventsStdlib in client_test.go)
// on a full page of realistic events; TestParseEventsMatchesStdlib checks the
// two give the same events and reject the same pages.
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
			if _, err := parseEventsStdlib(page, "application/json"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
	})
	b.Run("one_pass_fastjson", func(b *testing.B) {
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
			if !bytes.Equal(w.raw, g.raw) || w.uuid != g.uuid || w.eventType != g.eventType || w.published != g.published {
				t.Fatalf("%.60q event %d: %+v vs %+v", pg, i, w, g)
			}
		}
	}
}
