package detect

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// describe renders a CEL result exactly enough to compare two of them:
// the value (optionals unwrapped, maps and lists converted) or the error.
func describe(v ref.Val) string {
	switch x := v.(type) {
	case *types.Err:
		return "error: " + x.Error()
	case *types.Optional:
		if !x.HasValue() {
			return "optional.none()"
		}
		return "optional.of(" + describe(x.GetValue()) + ")"
	}
	if n, err := toJSONNative(v); err == nil {
		b, _ := json.Marshal(n)
		return fmt.Sprintf("%s %s", v.Type().TypeName(), b)
	}
	return fmt.Sprintf("%s %v", v.Type().TypeName(), v.Value())
}

// TestFastAttributesMatchCEL: expressions over odd events give the same
// values and errors with the fast field access as through CEL's nodes.
func TestFastAttributesMatchCEL(t *testing.T) {
	exprs := []string{
		`event.a`, `event.a.b`, `event.?a.?b`, `event.a.?b`, `event.?a.b`, `event.?a.?b.orValue('d')`,
		`event.a.b.c`, `event.?a.?b.?c`, `event.missing`, `event.?missing`, `event.?missing.x`,
		`event.missing.?x`, `event.a.missing`, `event.?a.?missing.orValue(1.0)`,
		`event.t[0]`, `event.t[1].x`, `event.t[5]`, `event.?t[5]`, `event.?t[0].?x`, `event.t[-1]`,
		`event.?t[-1]`, `event['a']['b']`, `event.?a['b']`, `event.a[0]`, `event.?a[0]`, `event.s.x`,
		`event.?s.?x`, `event.n[0]`, `event.t.x`, `event.?t.?x`, `event.dup`, `event.dup.k`,
		`event.nul.x`, `event.?nul.?x`, `event.?nul`, `event.e`, `event.?e[0]`, `event.t[0].x.y`,
		`has(event.a.b)`, `has(event.a.zz)`, `has(event.t)`,
		`event.a.b == 'x' && event.?t[0].?x.orValue(0.0) > 0.0`,
		`[1, 2].exists(event, event > 1) || event.a.b == 'x'`,
		`cel.bind(event, event.a, event.b)`,
		`cel.bind(x, event.a, x.b + event.a.b)`,
		`event.t.map(v, v.?x.orValue(0.0))`,
		`(event.?a.orValue({})).b`,
		`cel.bind(loc, event.?a.orValue({}), loc.?b.orValue('none') + string(loc.?c.orValue(0.0)))`,
		`cel.bind(loc, event.a, loc.b.c)`,
		`cel.bind(loc, event.t, loc[0].x)`,
		`cel.bind(loc, event.t, loc.?x)`,
		`event.t.exists(p, p.?x.orValue(0.0) > 1.0)`,
		`event.t.map(p, p.x)`,
		`[{'x': 1}].map(p, p.x)`,
		`cel.bind(previous, event.a, previous.b)`,
		`[event.a].exists(event, event.b == 'x')`,
	}
	events := []string{
		`{"a":{"b":"x","c":1},"t":[{"x":1.5},{"x":{"y":2}}],"s":"str","n":3,"dup":{"k":1},"dup":{"k":2},"nul":null,"e":[]}`,
		`{"a":{"b":{"c":true}},"t":[],"s":"","e":[null]}`,
		`{"a":"notamap","t":{"x":1}}`,
		`{"a":[1,2],"t":[{"y":1}]}`,
		`{}`,
	}
	type out struct{ cond string }
	results := map[bool][]string{}
	for _, on := range []bool{false, true} {
		func() {
			for _, x := range exprs {
				env, err := newEnv(false, oktaLibs)
				if err != nil {
					t.Fatal(err)
				}
				a, iss := env.Compile(x)
				if iss.Err() != nil {
					t.Fatalf("%s: %v", x, iss.Err())
				}
				prg, err := env.Program(a)
				if err != nil {
					t.Fatal(err)
				}
				bp, ok := withoutTracking(env, a, prg, DefaultCostLimit, !on).(boundedProgram)
				if !ok {
					t.Fatalf("%s: not untracked", x)
				}
				for _, raw := range events {
					pe, err := acquireEvent([]byte(raw))
					if err != nil {
						t.Fatal(err)
					}
					v, _, err := bp.untracked.Eval(&pe.ev.act)
					s := ""
					if err != nil {
						s = "eval error: " + err.Error()
					} else {
						s = describe(v)
					}
					results[on] = append(results[on], x+" on "+raw+" = "+s)
					releaseEvent(pe)
				}
			}
		}()
	}
	for i := range results[false] {
		if results[false][i] != results[true][i] {
			t.Errorf("CEL:  %s\nfast: %s", results[false][i], results[true][i])
		}
	}
}

// TestFastAttributesPackEquivalence: the pack tags exactly the same, with
// the same rule errors, with and without the fast field access, over the
// scenarios, a corpus with the attacks mixed in and the peer cases.
func TestFastAttributesPackEquivalence(t *testing.T) {
	streams := testStreams(t, true, true)

	var plain, fast *RuleSet
	plain = packRulesWith(t, CompileOptions{Libraries: oktaLibs, Tuning: packTuning, noFastAttrs: true})
	fast = packRules(t)
	tags, ruleErrs := 0, 0
	for si, evs := range streams {
		var errsA, errsB []string
		hooks := func(dst *[]string) Hooks {
			return Hooks{RuleError: func(id string, err error) { *dst = append(*dst, id+": "+err.Error()) }}
		}
		a := NewEngine(plain, EngineOptions{Hooks: hooks(&errsA)})
		b := NewEngine(fast, EngineOptions{Hooks: hooks(&errsB)})
		for i, raw := range evs {
			ra, _ := a.Process(raw)
			rb, _ := b.Process(raw)
			if !reflect.DeepEqual(ra.Detections, rb.Detections) || string(ra.Out) != string(rb.Out) {
				t.Fatalf("stream %d event %d: CEL %+v, fast %+v", si, i, ra.Detections, rb.Detections)
			}
			if !reflect.DeepEqual(errsA, errsB) {
				t.Fatalf("stream %d event %d: rule errors differ:\nCEL  %q\nfast %q", si, i, errsA, errsB)
			}
			tags += len(ra.Detections)
		}
		ruleErrs += len(errsA)
	}
	if tags == 0 {
		t.Fatal("no event was tagged: the comparison proves nothing")
	}
	t.Logf("%d tags, %d rule errors, identical", tags, ruleErrs)
}
