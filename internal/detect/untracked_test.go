package detect

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// TestGrowingPreviousStillHitsCostLimit: a remembered list that grows with
// every event outgrows the size the untracked program was estimated for;
// from then on the tracked program runs and the cost limit stops the
// condition, exactly where always-tracked evaluation would.
func TestGrowingPreviousStillHitsCostLimit(t *testing.T) {
	const src = `// id: G
// previous:
//   key: "'k'"
//   value: "(previous == null ? [] : previous) + [event.s]"
//   ttl: 24h
previous != null && previous.filter(p, p.startsWith('x')).size() >= 0
`
	rs, err := compileFiles([]ruleFile{{path: "g.cel", data: []byte(src)}}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning, CostLimit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	bp, ok := rs.rules[0].condition.(boundedProgram)
	if !ok || bp.prevBound == noPrevious || bp.prevBound >= 1000 {
		t.Fatalf("condition %T, bound %+v: want an untracked program for a small previous", rs.rules[0].condition, bp.prevBound)
	}
	rec := &recorder{}
	e := NewEngine(rs, EngineOptions{Hooks: rec.hooks()})
	firstErr := -1
	for i := range 3000 {
		res := process(t, e, ev(time.Duration(i)*time.Second, map[string]any{"s": "x"}))
		if errs := rec.errors["G"]; len(errs) > 0 {
			if !strings.Contains(errs[0].Error(), "cost") {
				t.Fatal(errs[0])
			}
			firstErr = i
			break
		}
		if detOf(res, "G") == nil && i > 0 {
			t.Fatalf("event %d not tagged", i)
		}
	}
	// Each element costs a few units: the limit is reached after hundreds
	// of elements, far beyond the bound the untracked program holds for.
	if firstErr <= bp.prevBound {
		t.Fatalf("first cost error at event %d (bound %d)", firstErr, bp.prevBound)
	}
}

func TestJSONSize(t *testing.T) {
	cases := []struct {
		v    any
		want int
	}{
		{nil, 0}, {1.5, 0}, {true, 0}, {"abcd", 4},
		{[]any{"a", "bb"}, 2}, {[]any{"a", "bbbbb"}, 5},
		{map[string]any{"k": []any{1.0, 2.0, 3.0}}, 3},
		{map[string]any{"long-key": 1.0}, 8},
		{[]any{[]any{"0123456789"}}, 10},
		{struct{}{}, 101},
	}
	for _, c := range cases {
		if got := jsonSize(c.v, 100); got != c.want {
			t.Errorf("jsonSize(%v) = %d, want %d", c.v, got, c.want)
		}
	}
	if got := jsonSize([]any{strings.Repeat("x", 500)}, 100); got <= 100 {
		t.Errorf("over the limit: %d", got)
	}
}

// TestToJSONNativeMatchesStructpb: the direct conversions (map literals
// ranged as Go maps, the document's own objects) give what CEL's protobuf
// JSON conversion gives.
func TestToJSONNativeMatchesStructpb(t *testing.T) {
	exprs := []string{
		`{'published': event.published, 'city': event.a.b, 'n': 1.5, 'l': [event.t, {'x': event.a}], 'none': null, 't': true}`,
		`[[event.a.b, event.published], [event.t[0], 2.0]]`,
		`{'a': {'b': {'c': [event.a]}}}`,
		`event.a`,
		`{}`,
	}
	raw := []byte(`{"published":"2024-05-01T12:00:00Z","a":{"b":"x","c":[1,{"d":null}]},"t":[{"y":true}]}`)
	for _, x := range exprs {
		env, err := newEnv(false, oktaLibs)
		if err != nil {
			t.Fatal(err)
		}
		a, iss := env.Compile(x)
		if iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		prg, err := env.Program(a)
		if err != nil {
			t.Fatal(err)
		}
		pe, err := acquireEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := prg.Eval(&pe.ev.act)
		if err != nil {
			t.Fatal(err)
		}
		got, err := toJSONNative(v)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := v.ConvertToNative(reflect.TypeFor[*structpb.Value]())
		if err != nil {
			t.Fatal(err)
		}
		if want := pb.(*structpb.Value).AsInterface(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", x, got, want)
		}
		releaseEvent(pe)
	}
}
