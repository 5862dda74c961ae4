package detect

import (
	"slices"
	"testing"
)

// TestExistsGuards: exists over string literals of an eventType test is a
// guard; anything else about it is not.
func TestExistsGuards(t *testing.T) {
	cases := []struct {
		cond  string
		exact []string
		pref  []string
		none  bool
	}{
		{cond: `['a.', 'b.'].exists(p, event.eventType.startsWith(p))`, pref: []string{"a.", "b."}},
		{cond: `event.x == 1 && ['a.'].exists(p, event.?eventType.orValue('').startsWith(p))`, pref: []string{"a."}},
		{cond: `['a', 'b'].exists(p, event.eventType == p)`, exact: []string{"a", "b"}},
		{cond: `['a', 'b'].exists(q, q == event['eventType'])`, exact: []string{"a", "b"}},
		{cond: `event.x != 'y' && (event.eventType in ['a'] || ['p.'].exists(p, event.eventType.startsWith(p)))`, exact: []string{"a"}, pref: []string{"p."}},
		{cond: `['a.'].exists(p, event.x.startsWith(p))`, none: true},
		{cond: `['a.'].all(p, event.eventType.startsWith(p))`, none: true},
		{cond: `['a.'].exists_one(p, event.eventType.startsWith(p))`, none: true},
		{cond: `event.types.exists(p, event.eventType == p)`, none: true},
		{cond: `['a.', event.x].exists(p, event.eventType.startsWith(p))`, none: true},
		{cond: `['a.'].exists(p, event.eventType.startsWith(p) || event.x)`, none: true},
		{cond: `['a.'].exists(p, !event.eventType.startsWith(p))`, none: true},
		{cond: `['a.'].exists(p, event.eventType.startsWith('b'))`, none: true},
		{cond: `['a', 'b'].exists(i, v, event.eventType == v)`, none: true},
		{cond: `['a', 'b'].exists(p, event.eventType != p)`, none: true},
		{cond: `!['a.'].exists(p, event.eventType.startsWith(p))`, none: true},
		{cond: `['a.'].exists(p, event.eventType.startsWith(p)) || event.x`, none: true},
	}
	for _, c := range cases {
		rs := compileRules(t, "// id: R\n"+c.cond)
		g := rs.rules[0].conditionGuard
		if c.none {
			if g != nil {
				t.Errorf("%s: guard %+v, want none", c.cond, g)
			}
			continue
		}
		if g == nil || !slices.Equal(g.exact, c.exact) || !slices.Equal(g.prefixes, c.pref) {
			t.Errorf("%s: guard %+v, want exact %v prefixes %v", c.cond, g, c.exact, c.pref)
		}
	}
}
