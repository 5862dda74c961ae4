package detect

import (
	"reflect"
	"slices"
	"testing"
)

func TestGuardAnalysis(t *testing.T) {
	cases := []struct {
		cond  string
		exact []string
		pref  []string
		none  bool
	}{
		{cond: `event.eventType == 'a' && event.x == 1`, exact: []string{"a"}},
		{cond: `'a' == event.eventType`, exact: []string{"a"}},
		{cond: `event['eventType'] == 'a'`, exact: []string{"a"}},
		{cond: `event.x == 1 && event.eventType in ['a', 'b']`, exact: []string{"a", "b"}},
		{cond: `event.eventType.startsWith('user.mfa.') && true`, pref: []string{"user.mfa."}},
		{cond: `event.eventType == 'a' || event.eventType.startsWith('p')`, exact: []string{"a"}, pref: []string{"p"}},
		{cond: `cel.bind(x, event.y, event.eventType == 'a' && x)`, exact: []string{"a"}},
		{cond: `event.?eventType.orValue('') in ['a', 'b'] && event.x == 1`, exact: []string{"a", "b"}},
		{cond: `event.?eventType.orValue('').startsWith('p')`, pref: []string{"p"}},
		{cond: `event.?eventType.orValue(event.x) == 'a'`, none: true},
		{cond: `event.?eventType.orValue('') != 'a' && event.x`, none: true},
		{cond: `event.eventType == 'a' || event.x == 1`, none: true},
		{cond: `event.eventType != 'a'`, none: true},
		{cond: `!(event.eventType == 'a')`, none: true},
		{cond: `event.x.eventType == 'a'`, none: true},
		{cond: `event.eventType in event.types`, none: true},
		// exists over string literals of an eventType test is a guard;
		// anything else about it is not.
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

// TestIndexEquivalence runs every pack rule indexed and unindexed over the
// simulator's scenarios, a corpus with the attacks mixed in, and the peer
// cases, and compares the tags exactly.
func TestIndexEquivalence(t *testing.T) {
	streams := testStreams(t, false, true)

	rs := packRules(t)
	total, ran, taggedAll := 0, 0, 0
	for si, evs := range streams {
		indexed := NewEngine(rs, EngineOptions{})
		plain := NewEngine(rs, EngineOptions{noIndex: true})
		tagged := 0
		for i, raw := range evs {
			a, errA := indexed.Process(raw)
			b, errB := plain.Process(raw)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("stream %d event %d: errors %v vs %v", si, i, errA, errB)
			}
			if !reflect.DeepEqual(a.Detections, b.Detections) || string(a.Out) != string(b.Out) {
				t.Fatalf("stream %d event %d: indexed %+v, unindexed %+v", si, i, a.Detections, b.Detections)
			}
			tagged += len(a.Detections)
			if ev, err := decodeEvent(raw); err == nil {
				total += len(rs.rules)
				ran += len(indexed.active.Load().index.candidates(ev))
			}
		}
		taggedAll += tagged
	}
	if taggedAll == 0 {
		t.Fatal("no event was tagged: the comparison proves nothing")
	}
	t.Logf("index: %d of %d rule evaluations run (%.1f%% skipped), %d tags", ran, total, 100*float64(total-ran)/float64(total), taggedAll)
}
