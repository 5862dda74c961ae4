package detect

import (
	"fmt"
	"maps"
	"testing"
	"time"
)

// forEachPermutation calls f with every permutation of 0..n-1 (Heap's
// algorithm).
func forEachPermutation(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	c := make([]int, n)
	f(p)
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				p[0], p[i] = p[i], p[0]
			} else {
				p[c[i]], p[i] = p[i], p[c[i]]
			}
			f(p)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}

// finalAlerts are what a run leaves: per alert (rule and alert_id), its
// largest count.
func finalAlerts(t *testing.T, rs *RuleSet, events [][]byte, order []int) map[string]int {
	t.Helper()
	e := NewEngine(rs, EngineOptions{})
	alerts := map[string]int{}
	for _, i := range order {
		res := process(t, e, events[i])
		for _, d := range append(res.Detections, deferredDetections(res)...) {
			key := d.ID + "/" + d.AlertID
			alerts[key] = max(alerts[key], d.Count)
		}
	}
	return alerts
}

func deferredDetections(res Result) []Detection {
	var out []Detection
	for _, d := range res.Deferred {
		out = append(out, d.Detections...)
	}
	return out
}

// lateBy is how far behind the newest event time seen before it the
// latest event of an arrival order arrives.
func lateBy(events [][]byte, order []int) time.Duration {
	newest, late := int64(minTime), time.Duration(0)
	for _, i := range order {
		ev, err := decodeEvent(events[i])
		if err != nil {
			panic(err)
		}
		if newest != minTime {
			late = max(late, time.Duration(newest-ev.at))
		}
		newest = max(newest, ev.at)
	}
	return late
}

// Every arrival order of the same events leaves the same alerts with the
// same largest counts (rules/README.md, "Arrival order"); for absences,
// every order in which no event arrives later than the grace.
func TestArrivalOrderDoesNotChangeAlerts(t *testing.T) {
	m := time.Minute
	cases := []struct {
		name, rule string
		events     [][]byte
		alerts     int
		lateness   time.Duration // the orders tested: no event later than this (0: all)
	}{
		{"threshold", thresholdRule, [][]byte{
			of(0, "1", "fail", "ann", nil), of(4*m, "2", "fail", "ann", nil), of(9*m, "3", "fail", "ann", nil),
			of(12*m, "4", "fail", "ann", nil), of(13*m, "5", "fail", "ann", nil), of(30*m, "6", "fail", "ann", nil),
			of(5*m, "7", "fail", "bob", nil),
		}, 1, 0},
		{"distinct", distinctRule, [][]byte{
			spray(0, "1", "a"), spray(m, "2", "b"), spray(2*m, "3", "a"), spray(9*m, "4", "c"),
			spray(11*m, "5", "d"), spray(30*m, "6", "e"), spray(31*m, "7", "f"),
		}, 1, 0},
		{"sequence", sequenceRule, [][]byte{
			deny(0, "d1"), approve(m, "a0"), deny(2*m, "d2"), deny(3*m, "d3"), approve(5*m, "a1"),
			approve(20*m, "a2"), of(4*m, "x", "deny", "bob", nil),
		}, 1, 0},
		{"first_seen", firstSeenRule, [][]byte{
			loginOn(0, "1", "mac"), loginOn(5*m, "2", "mac"), loginOn(10*m, "3", "pc"), loginOn(20*m, "4", "mac"),
			loginOn(40*m, "5", "phone"), of(3*m, "6", "login", "bob", map[string]any{"device": "mac"}), loginOn(50*m, "7", "pc"),
		}, 4, 0},
		{"absence", absenceRule, [][]byte{
			start(0, "s1"), of(m, "s4", "start", "bob", nil), done(2*m, "c1"), start(3*m, "s2"),
			start(9*m, "s3"), done(14*m, "c2"), tick(19 * m),
		}, 2, defaultAbsenceGrace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := compileRules(t, c.rule)
			var want map[string]int
			orders := 0
			forEachPermutation(len(c.events), func(perm []int) {
				if c.lateness > 0 && lateBy(c.events, perm) > c.lateness {
					return
				}
				got := finalAlerts(t, rs, c.events, perm)
				orders++
				if want == nil {
					want = got
					if len(want) != c.alerts {
						t.Fatalf("%d alerts %v, the case expects %d", len(want), want, c.alerts)
					}
					return
				}
				if !maps.Equal(got, want) {
					t.Fatalf("order %v: alerts %v, want %v", perm, got, want)
				}
			})
			t.Log(fmt.Sprintf("%d orders, alerts %v", orders, want))
		})
	}
}
