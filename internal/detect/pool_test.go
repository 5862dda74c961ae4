package detect

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// oddEvents are shapes the corpus lacks: escapes, invalid UTF-8, duplicate
// keys, deep nesting, numbers of every form.
var oddEvents = []string{
	`{"uuid":"u1","published":"2026-11-25T10:00:00.000Z","actor":{"id":"00u1","alternateId":"a@b.c"},"outcome":{"result":"FAILURE"},"n":[1,2.5e3,-0,true,null]}`,
	`{"s":"\u00e9\ud83d\ude00\\\"\/\b\f\n\r\t","k\u0041":1}`,
	`{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`,
	"{\"bad\":\"\xff\xfe\",\"ok\":\"caf\xc3\xa9\"}",
	`{"d":1,"d":{"x":[{"y":2},{"y":3}]},"d2":{},"e":[]}`,
	` { "sp" : [ 1 , { } , [ ] , "x" ] } `,
}

// TestPooledParseMatchesJSON: documents decoded from the pool, reused event
// after event, give exactly encoding/json's values, also read as CEL does.
func TestPooledParseMatchesJSON(t *testing.T) {
	evs := corpus.Events(600)
	for _, s := range oddEvents {
		evs = append(evs, []byte(s))
	}
	for round := range 2 {
		for i, raw := range evs {
			var want map[string]any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			pe, err := acquireEvent(raw)
			if err != nil {
				t.Fatalf("round %d event %d: %v", round, i, err)
			}
			if got := pe.ev.root.native(); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d event %d: got %v, want %v", round, i, got, want)
			}
			// Through CEL's map interface too, twice: the second read comes
			// from the per-event caches of boxed values (memberval.go),
			// which must hold nothing of the event before.
			for read := range 2 {
				if got := readThroughCEL(t, pe.ev.root); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d event %d, read %d through CEL: got %v, want %v", round, i, read, got, want)
				}
			}
			releaseEvent(pe)
			if len(pe.doc.vals)+len(pe.doc.opts)+len(pe.doc.optArena) != 0 {
				t.Fatalf("round %d event %d: a released document keeps cached values", round, i)
			}
		}
	}
	for _, bad := range []string{`[1]`, `{"a":01}`, `{"a":1}x`, `{"a"`, `null`, ``} {
		pe, err := acquireEvent([]byte(bad))
		_, err2 := parseEvent([]byte(bad))
		if err == nil || err2 == nil || err.Error() != err2.Error() {
			t.Fatalf("%q: pooled %v, unpooled %v", bad, err, err2)
		}
		if pe != nil {
			t.Fatalf("%q: got a document", bad)
		}
	}
}

// FuzzPooledParse: the pooled decoder gives encoding/json's values, also
// when its slices were used by an earlier event, and refuses what the
// unpooled one refuses (FuzzParseEvent checks that against encoding/json).
func FuzzPooledParse(f *testing.F) {
	for _, s := range oddEvents {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"abcdefgh":"0123456789abcdef\"x","p":"abcdefg\u0041hijklmn","q":"abcdefgh\u00e9"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		warm, err := acquireEvent([]byte(oddEvents[0]))
		if err != nil {
			t.Fatal(err)
		}
		releaseEvent(warm)
		pe, err := acquireEvent(raw)
		_, err2 := parseEvent(raw)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("%q: pooled %v, unpooled %v", raw, err, err2)
		}
		if err != nil {
			return
		}
		defer releaseEvent(pe)
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("%q: accepted, encoding/json: %v", raw, err)
		}
		if got := pe.ev.root.native(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %v, encoding/json %v", raw, got, want)
		}
	})
}

// TestNothingKeepsEventBytes: the engine does not copy an event's bytes
// while evaluating it, so nothing it keeps (state keys, remembered values,
// alert fields) may point into them. One engine gets bytes that are
// scribbled over as soon as Process returns; its tags, over the scenarios
// and a corpus with the attacks mixed in, must equal those of an engine
// whose input stays intact.
func TestNothingKeepsEventBytes(t *testing.T) {
	streams := testStreams(t, true, false)
	rs := packRules(t)
	tags := 0
	for si, evs := range streams {
		intact := NewEngine(rs, EngineOptions{})
		scribbled := NewEngine(rs, EngineOptions{})
		var want, got []Result
		for _, raw := range evs {
			a, _ := intact.Process(raw)
			want = append(want, a)
			cp := append([]byte(nil), raw...)
			b, _ := scribbled.Process(cp)
			if len(b.Detections) > 0 {
				b.Out = append([]byte(nil), b.Out...)
			} else {
				b.Out = raw // unmatched: the input itself, compared below
			}
			for i := range cp {
				cp[i] = '#'
			}
			got = append(got, b)
			tags += len(a.Detections)
		}
		for i := range want {
			if !reflect.DeepEqual(want[i].Detections, got[i].Detections) || string(want[i].Out) != string(got[i].Out) {
				t.Fatalf("stream %d event %d: intact %+v, scribbled %+v", si, i, want[i].Detections, got[i].Detections)
			}
		}
	}
	if tags == 0 {
		t.Fatal("no event was tagged: the comparison proves nothing")
	}
}
