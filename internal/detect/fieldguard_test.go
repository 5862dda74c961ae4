package detect

import (
	"testing"

	"github.com/google/cel-go/common/types"
)

// TestFieldGuardsAreSound: whenever a field guard says a condition is
// certainly false on an event, CEL evaluates it to false there; and the
// guards recognise what they should.
func TestFieldGuardsAreSound(t *testing.T) {
	cases := []struct {
		cond   string
		guards int
	}{
		{`event.outcome.result == 'FAILURE'`, 1},
		{`'FAILURE' == event.outcome.result && event.x == 1`, 1},
		{`event.?outcome.?result.orValue('') == 'SUCCESS'`, 1},
		{`event.?outcome.?result.orValue('SUCCESS') == 'SUCCESS'`, 1},
		{`event.?a.?b.orValue('unknown') != 'unknown' && event.?c.orValue('unknown') != 'unknown'`, 2},
		{`event.?client.?geographicalContext.?country.orValue('') in ['Russia', 'Cuba']`, 1},
		{`event.?outcome.?reason.orValue('') in ['INVALID_CREDENTIALS', 'LOCKED_OUT']`, 1},
		{`event.a.b == true`, 1},
		{`event.a.b in []`, 1},
		{`cel.bind(x, event.y, event.?outcome.?result.orValue('') == 'SUCCESS' && x == 1)`, 1},
		{`cel.bind(event, {'outcome': {'result': 'x'}}, event.outcome.result == 'FAILURE')`, 0},
		{`event.outcome.result == 'FAILURE' || event.x == 1`, 0},
		{`!(event.outcome.result == 'FAILURE')`, 0},
		{`event.a.?b.orValue('') == 'x'`, 0},
		{`event.?a.?b.orValue(event.c) == 'x'`, 0},
		{`event.eventType == 'x'`, 0},
		{`event.outcome.result == event.x`, 0},
		{`event.?a.?b.orValue('') in ['x', event.c]`, 0},
		{`event.a.b == 1.0`, 0},
		{`has(event.a.b) && event.a.b == 'x'`, 2},
		{`has(event.a) || event.?c.?d.hasValue()`, 1},
		{`event.?a.?b.hasValue() || event.?outcome.?result.hasValue()`, 1},
		{`event.?a.?b.hasValue() || event.x == 1`, 0},
		{`has(event.a.b)`, 1},
		{`event['a']['b'] == 'x'`, 0},
	}
	events := []string{
		`{"outcome":{"result":"FAILURE"},"a":{"b":"x"},"c":"unknown","x":1,"y":1}`,
		`{"outcome":{"result":"SUCCESS"},"a":{"b":"y"},"client":{"geographicalContext":{"country":"Cuba"}}}`,
		`{"outcome":{"result":1},"a":"str","client":{"geographicalContext":{"country":"Chile"}}}`,
		`{"outcome":null,"a":{"b":null},"c":"known"}`,
		`{"outcome":{"result":"FAILURE","result":"SUCCESS"},"a":{}}`,
		`{}`,
		// Values that equal no string or bool: null, numbers, objects, lists.
		`{"outcome":{"result":null,"reason":null},"a":{"b":2.5},"c":{"k":"unknown"},"client":{"geographicalContext":{"country":["Cuba"]}}}`,
		`{"outcome":{"result":{"r":"SUCCESS"}},"a":{"b":[]},"c":0}`,
	}
	excludedSeen := 0
	for _, c := range cases {
		rs := compileRules(t, "// id: R\n"+c.cond)
		r := rs.rules[0]
		if len(r.conditionFields) != c.guards {
			t.Errorf("%s: %d field guards %+v, want %d", c.cond, len(r.conditionFields), r.conditionFields, c.guards)
		}
		for _, raw := range events {
			pe, err := acquireEvent([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if anyExcludes(r.conditionFields, pe.ev.root) {
				excludedSeen++
				v, _, err := r.condition.Eval(&pe.ev.act)
				if err != nil || v != types.False {
					t.Errorf("%s on %s: excluded, but CEL gives %v %v", c.cond, raw, v, err)
				}
			}
			releaseEvent(pe)
		}
	}
	if excludedSeen == 0 {
		t.Fatal("nothing excluded: the test proves nothing")
	}
	// A value that is not a string or bool is excluded by == and in, and
	// never by != (which it satisfies).
	for _, c := range []struct {
		cond, event string
		excluded    bool
	}{
		{`event.?outcome.?reason.orValue('') in ['INVALID_CREDENTIALS']`, `{"outcome":{"reason":null}}`, true},
		{`event.?outcome.?reason.orValue('') == 'LOCKED_OUT'`, `{"outcome":{"reason":3}}`, true},
		{`event.a.b == true`, `{"a":{"b":{"c":true}}}`, true},
		{`event.?outcome.?reason.orValue('x') != 'x'`, `{"outcome":{"reason":null}}`, false},
		{`event.?a.?b.orValue('') == 'x'`, `{"a":[{"b":"x"}]}`, false}, // not an object on the way: CEL decides
	} {
		r := compileRules(t, "// id: R\n"+c.cond).rules[0]
		pe, err := acquireEvent([]byte(c.event))
		if err != nil {
			t.Fatal(err)
		}
		if got := anyExcludes(r.conditionFields, pe.ev.root); got != c.excluded {
			t.Errorf("%s on %s: excluded %v, want %v", c.cond, c.event, got, c.excluded)
		}
		releaseEvent(pe)
	}
	t.Logf("%d exclusions checked", excludedSeen)
}

// TestFieldGuardsRememberingRules: a rule with previous is skipped only
// when its when is excluded too.
func TestFieldGuardsRememberingRules(t *testing.T) {
	src := `// id: P
// previous:
//   key: "'k'"
//   when: "event.?outcome.?result.orValue('') == 'SUCCESS'"
//   ttl: 1h
event.?outcome.?result.orValue('') == 'FAILURE' && previous != null
`
	e := NewEngine(compileRules(t, src), EngineOptions{})
	set := e.active.Load()
	for raw, want := range map[string]bool{
		`{"outcome":{"result":"SUCCESS"}}`: false, // remembered
		`{"outcome":{"result":"FAILURE"}}`: false, // may match
		`{"outcome":{"result":"OTHER"}}`:   true,
		`{}`:                               true,
	} {
		pe, err := acquireEvent([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := set.index.excluded(0, pe.ev.root); got != want {
			t.Errorf("%s: excluded %v, want %v", raw, got, want)
		}
		releaseEvent(pe)
	}
}
