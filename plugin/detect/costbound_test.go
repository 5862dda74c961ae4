package detect

import (
	"strings"
	"testing"
	"time"
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
	rs, err := compileFiles([]ruleFile{{path: "g.cel", data: []byte(src)}}, CompileOptions{CostLimit: 5000})
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
