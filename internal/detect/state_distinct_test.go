package detect

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkDistinctHotGroup sprays one group with distinct users in time
// order, as an attacker spraying from one address does: the cost of an
// event must not grow with the events already in the window.
func BenchmarkDistinctHotGroup(b *testing.B) {
	e, _ := newTestEngine(b, `// id: DC
// title: spray
// threshold: {count: 3, window: 24h, group_by: event.ip, distinct: event.user}
event.kind == 'fail'
`)
	events := make([][]byte, 20000)
	for i := range events {
		u := "u" + itoa(i)
		events[i] = spray(time.Duration(i)*time.Second, u, u)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if i == len(events) {
			b.StopTimer()
			e, _ = newTestEngine(b, `// id: DC
// title: spray
// threshold: {count: 3, window: 24h, group_by: event.ip, distinct: event.user}
event.kind == 'fail'
`)
			i = 0
			b.StartTimer()
		}
		if _, err := e.Process(events[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportRate(b)
}

// The kept tail counts give exactly what counting afresh gives, for events
// in any order, with ties, repeated values and expiry in between.
func TestDistinctTailMatchesAfresh(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 15))
	viaTail := 0
	for round := range 40 {
		window := int64(1 + rng.IntN(50))
		alphabet := 1 + rng.IntN(150)
		k := &countKey{}
		for i := range 400 + rng.IntN(400) {
			at := int64(i/3) - int64(rng.IntN(8))*int64(rng.IntN(2)) // nearly in order, some late
			if rng.IntN(20) == 0 {
				at = int64(rng.IntN(i/3 + 1)) // very late
			}
			v := "v" + itoa(rng.IntN(alphabet))
			k.insert(countObservation{at: at, id: uint64(i + 1), value: v, distinct: true})
			got, gf, gt := k.maxDistinct(at, window)
			if k.tail != nil {
				viaTail++
			}
			want, wf, wt := k.maxDistinctAfresh(at, window)
			if got != want || gf != wf || gt != wt {
				t.Fatalf("round %d event %d (at %d, window %d): tail %d [%d,%d], afresh %d [%d,%d]", round, i, at, window, got, gf, gt, want, wf, wt)
			}
			var top smallestValues
			for _, v := range k.Vals[gf : gt+1] {
				top.add(v)
			}
			if vs := k.values(gf, gt); !slices.Equal(vs, top.list()) {
				t.Fatalf("round %d event %d: values %v, want %v", round, i, vs, top.list())
			}
			if rng.IntN(150) == 0 && len(k.At) > 0 {
				k.dropUpTo(k.At[len(k.At)/3])
			}
		}
	}
	if viaTail < 10000 {
		t.Fatalf("only %d events were counted through the tail", viaTail)
	}
}
