package detect

import (
	"reflect"
	"testing"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

func TestOktaBehaviorsAndRisk(t *testing.T) {
	e, rec := newTestEngine(t, `// id: T.Behaviors
// title: "{{ okta.behaviors(event) }} {{ okta.risk(event) }}"
okta.behaviors(event)[?'New Device'].orValue('') == 'POSITIVE' &&
okta.behaviors(event)[?'New IP'].orValue('') == 'POSITIVE' &&
okta.risk(event) == event.want_risk
`)
	cases := []struct {
		name, event string
		want        bool
	}{
		{"okta string", `{"want_risk":"HIGH","debugContext":{"debugData":{"behaviors":"{New Geo-Location=NEGATIVE, New Device=POSITIVE, New IP=POSITIVE}","risk":"{reasons=[Anomalous Device, Anomalous Location], level=HIGH}"}}}`, true},
		{"list", `{"want_risk":"","debugContext":{"debugData":{"behaviors":["New Device=POSITIVE","New IP=POSITIVE"]}}}`, true},
		{"map of pairs", `{"want_risk":"","debugContext":{"debugData":{"behaviors":{"New Device=POSITIVE":null,"New IP=POSITIVE":null}}}}`, true},
		{"logOnly object", `{"want_risk":"LOW","debugContext":{"debugData":{"logOnlySecurityData":{"risk":{"level":"LOW"},"behaviors":{"New Device":"POSITIVE","New IP":"POSITIVE"}}}}}`, true},
		{"logOnly JSON string", `{"want_risk":"LOW","debugContext":{"debugData":{"logOnlySecurityData":"{\"risk\":{\"level\":\"LOW\"},\"behaviors\":{\"New Device\":\"POSITIVE\",\"New IP\":\"POSITIVE\"}}"}}}`, true},
		{"negative", `{"want_risk":"LOW","debugContext":{"debugData":{"behaviors":"{New Device=NEGATIVE, New IP=POSITIVE}","risk":"{level=LOW}"}}}`, false},
		{"nothing at all", `{"want_risk":""}`, false},
		{"debugData not an object", `{"want_risk":"","debugContext":{"debugData":""}}`, false},
		{"broken JSON string", `{"want_risk":"","debugContext":{"debugData":{"logOnlySecurityData":"{oops"}}}`, false},
	}
	for _, c := range cases {
		res, err := e.Process([]byte(c.event))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Detections) > 0; got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if len(rec.errors) > 0 {
		t.Errorf("rule errors: %v", rec.errors)
	}
}

func TestSplitBraced(t *testing.T) {
	got := splitBraced("{reasons=[a, b], level=HIGH}")
	if len(got) != 2 || got[0] != "reasons=[a, b]" || got[1] != " level=HIGH" {
		t.Errorf("got %q", got)
	}
}

// debugData's walk over the parsed event gives what converting the whole
// event gives, on the corpus and on odd shapes.
func TestDebugDataWalkMatchesConversion(t *testing.T) {
	events := corpus.Events(3000)
	events = append(events,
		[]byte(`{"debugContext":{"debugData":{"behaviors":"{New IP=POSITIVE}"},"debugData":{"risk":"{level=HIGH}"}}}`),
		[]byte(`{"debugContext":{"debugData":null}}`),
		[]byte(`{"debugContext":"x"}`),
		[]byte(`{"debugContext":{"debugData":[1]}}`),
		[]byte(`{}`),
	)
	for i, raw := range events {
		doc, err := parseEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		root := doc.val(doc.root)
		native, err := toJSONNative(root)
		if err != nil {
			t.Fatal(err)
		}
		generic := types.DefaultTypeAdapter.NativeToValue(native)
		if _, fast := root.(*jsonObject); !fast {
			t.Fatalf("event %d: root is %T", i, root)
		}
		got, want := debugData(root), debugData(generic)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d: walk %v, conversion %v", i, got, want)
		}
	}
}

// BenchmarkOktaBehaviors: okta.behaviors' argument handling on the parsed
// event, walking to debugData (walk) vs converting the whole event first
// (convert, what it did before).
func BenchmarkOktaBehaviors(b *testing.B) {
	var roots []ref.Val
	for _, raw := range corpus.Events(1000) {
		doc, err := parseEvent(raw)
		if err != nil {
			b.Fatal(err)
		}
		roots = append(roots, doc.val(doc.root))
	}
	convert := func(v ref.Val) map[string]any {
		native, _ := toJSONNative(v)
		ev, _ := native.(map[string]any)
		dc, _ := ev["debugContext"].(map[string]any)
		dd, _ := dc["debugData"].(map[string]any)
		return dd
	}
	for _, c := range []struct {
		name string
		dd   func(ref.Val) map[string]any
	}{{"walk", debugData}, {"convert", convert}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = oktaBehaviors(c.dd(roots[i%len(roots)]))
				i++
			}
		})
	}
}
