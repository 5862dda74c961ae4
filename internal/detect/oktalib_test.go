package detect

import (
	"reflect"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// The okta library (internal/detect/oktalib) on the engine's parsed events.
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

// The okta library reads the engine's parsed event through CEL's traits:
// on the corpus and on odd shapes it gives what it gives on the event
// converted to plain maps.
func TestOktaLibOnDocumentsMatchesConversion(t *testing.T) {
	events := corpus.Events(3000)
	events = append(events,
		[]byte(`{"debugContext":{"debugData":{"behaviors":"{New IP=POSITIVE}"},"debugData":{"risk":"{level=HIGH}"}}}`),
		[]byte(`{"debugContext":{"debugData":null}}`),
		[]byte(`{"debugContext":"x"}`),
		[]byte(`{"debugContext":{"debugData":[1]}}`),
		[]byte(`{}`),
	)
	prg := oktaProgram(t)
	for i, raw := range events {
		doc, err := parseEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		root := doc.val(doc.root)
		if _, fast := root.(*jsonObject); !fast {
			t.Fatalf("event %d: root is %T", i, root)
		}
		native, err := toJSONNative(root)
		if err != nil {
			t.Fatal(err)
		}
		generic := types.DefaultTypeAdapter.NativeToValue(native)
		got, want := evalNative(t, prg, root), evalNative(t, prg, generic)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d: on the document %v, on the conversion %v", i, got, want)
		}
	}
}

type program = cel.Program

// oktaProgram compiles [okta.behaviors(event), okta.risk(event)].
func oktaProgram(t testing.TB) program {
	t.Helper()
	env, err := newEnv(false, oktaLibs)
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile("[okta.behaviors(event), okta.risk(event)]")
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	return prg
}

func evalNative(t testing.TB, prg program, event ref.Val) any {
	out, _, err := prg.Eval(map[string]any{"event": event})
	if err != nil {
		t.Fatal(err)
	}
	native, err := out.ConvertToNative(reflect.TypeFor[[]any]())
	if err != nil {
		t.Fatal(err)
	}
	return native
}

// BenchmarkOktaBehaviors: okta.behaviors and okta.risk on the parsed event
// (document, read through CEL's traits) vs on the event converted to maps
// first (convert).
func BenchmarkOktaBehaviors(b *testing.B) {
	var roots, converted []ref.Val
	for _, raw := range corpus.Events(1000) {
		doc, err := parseEvent(raw)
		if err != nil {
			b.Fatal(err)
		}
		root := doc.val(doc.root)
		native, _ := toJSONNative(root)
		roots = append(roots, root)
		converted = append(converted, types.DefaultTypeAdapter.NativeToValue(native))
	}
	prg := oktaProgram(b)
	for _, c := range []struct {
		name   string
		events []ref.Val
	}{{"document", roots}, {"convert", converted}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _, _ = prg.Eval(map[string]any{"event": c.events[i%len(c.events)]})
				i++
			}
		})
	}
}
