package detect

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// TestSweepGatesChangeNothing: an engine whose sweeps pass over shards by
// their gates tags every event exactly as one whose sweeps visit every
// key, holds the same state after every event, and is restored halfway
// (restored keys open every gate), over the pack's streams and streams of
// every correlation type with expiry, re-deliveries, late events and orgs
// whose event times lag hours behind one another.
func TestSweepGatesChangeNothing(t *testing.T) {
	corr := compileRules(t, thresholdRule, distinctRule, sequenceRule, firstSeenRule, absenceRule, detecttest.DedupRule, detecttest.PreviousRule)
	type run struct {
		rs      *RuleSet
		opts    EngineOptions
		streams [][][]byte
	}
	runs := []run{
		{corr, EngineOptions{}, [][][]byte{edgeStream(), correlationStream(1, 3000), orgStream(2, 3000), burstStream(3, 700)}},
		// Sweeps a minute behind the newest event: late events change
		// keys the sweeps have passed.
		{corr, EngineOptions{MaxLateness: time.Minute}, [][][]byte{closedLateStream(), edgeStream(), correlationStream(4, 3000), orgStream(5, 3000)}},
	}
	if !testkit.Race {
		runs = append(runs, run{packRules(t), EngineOptions{}, testStreams(t, true, true)})
	}
	tags, passed := 0, 0
	for ri, r := range runs {
		for si, evs := range r.streams {
			all := NewEngine(r.rs, r.opts)
			all.sweepAll = true
			gated := NewEngine(r.rs, r.opts)
			for i, raw := range evs {
				if i == len(evs)/2 && len(evs) > 100 { // a restore opens every gate: not in the edge streams
					gated = restoredCopy(t, gated, r.rs)
				}
				tags += sameTags(t, fmt.Sprintf("run %d stream %d event %d", ri, si, i), raw, "every shard swept", all, "gated", gated)
				// After every event for the small rule set (but for its long
				// streams under the race detector, which makes that slow).
				if r.rs == corr && (!testkit.Race || len(evs) <= 100) || i%97 == 0 || i == len(evs)-1 {
					if a, b := stateEntries(t, all), stateEntries(t, gated); !reflect.DeepEqual(a, b) {
						t.Fatalf("run %d stream %d event %d: the state differs (%d entries every shard swept, %d gated)", ri, si, i, len(a), len(b))
					}
				}
			}
			passed += gated.closedGates()
		}
	}
	if tags == 0 || passed == 0 {
		t.Fatalf("%d tags, %d closed gates: the comparison proves nothing", tags, passed)
	}
	t.Logf("%d tags, %d gates closed at the end", tags, passed)
}

// edgeStream sweeps at the very horizon where a dedup opening, a closed
// expectation and a remembered value expire, each after a sweep that left
// them: a gate one nanosecond late keeps them.
func edgeStream() [][]byte {
	return [][]byte{
		detecttest.Login(0, "u1", "c1"),         // D opens at 0 (1h), P remembers at 0 (24h)
		of(0, "s", "start", "u2", nil),          // AB expects a done by 10m
		of(time.Minute, "d", "done", "u2", nil), // and gets it
		fail(30*time.Minute, "u3"),              // a sweep that leaves all three
		fail(time.Hour+1, "u3"),                 // horizon 1ns: the closed expectation goes
		fail(2*time.Hour, "u3"),                 // horizon 1h: the dedup opening goes
		fail(25*time.Hour+1, "u4"),              // horizon 24h+1ns: the remembered value goes
		// An expectation closed by a late event is due at once.
		of(30*time.Hour, "s2", "start", "u5", nil),              // AB expects a done by 30h10m
		fail(31*time.Hour+1, "u3"),                              // horizon 30h+1ns: a sweep that leaves it open
		of(30*time.Hour+9*time.Minute, "d2", "done", "u5", nil), // 55 minutes late: closed, due at 30h+1ns
		fail(31*time.Hour+5*time.Minute, "u3"),                  // horizon 30h5m: the closed expectation goes
	}
}

// closedLateStream closes an expectation after a sweep passed it open;
// with sweeps a minute behind, the next one drops it although its closing
// event is kept.
func closedLateStream() [][]byte {
	return [][]byte{
		of(0, "s", "start", "u6", nil),                           // AB expects a done by 10m
		fail(5*time.Minute+1, "u3"),                              // horizon 4m+1ns: a sweep that leaves it open
		of(9*time.Minute+30*time.Second, "d", "done", "u6", nil), // closed, due at 1ns
		fail(10*time.Minute+1, "u3"),                             // horizon 9m+1ns: the closed expectation goes
	}
}

// burstStream is n bursts of two to five events of one user over three
// days, among 300 users: most shards empty and fill again, and keys are
// swept hours after their last event.
func burstStream(seed uint64, n int) [][]byte {
	rnd := rand.New(rand.NewPCG(seed, 13))
	kinds := []string{"fail", "fail", "deny", "approve", "login", "start", "done"}
	var evs [][]byte
	for b := range n {
		start := time.Duration(b) * 72 * time.Hour / time.Duration(n)
		user := fmt.Sprintf("u%d", rnd.IntN(300))
		kind := kinds[rnd.IntN(len(kinds))]
		for j := range 2 + rnd.IntN(4) {
			at := start + time.Duration(rnd.IntN(240))*time.Second
			if j > 0 && rnd.IntN(3) == 0 {
				kind = kinds[rnd.IntN(len(kinds))]
			}
			evs = append(evs, of(at, fmt.Sprint("b", b, "-", j), kind, user, map[string]any{
				"ip": fmt.Sprintf("198.51.100.%d", rnd.IntN(100)), "device": fmt.Sprint("d", rnd.IntN(3)),
				"city": fmt.Sprint("c", rnd.IntN(4)),
			}))
		}
	}
	return evs
}

// orgStream is n events of the correlation test rules over twelve hours in
// three orgs, the third running four hours behind the others.
func orgStream(seed uint64, n int) [][]byte {
	return correlationEvents(seed, n, streamShape{span: 12 * time.Hour, users: 12, orgs: 3})
}

// stateEntries is every entry the engine holds, encoded, by rule, kind
// and key, whether the key is live or frozen.
func stateEntries(t *testing.T, e *Engine) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(rule string, kind byte, key string, ent *stateEntry) {
		var enc encoder
		if err := appendEntry(&enc, kind, ent); err != nil {
			t.Fatal(err)
		}
		out[rule+"\x00"+string(kind)+key] = string(enc.b)
	}
	for _, r := range e.active.Load().rules {
		s := r.state
		for i := range stateShards {
			entriesOf(&s.threshold[i], func(key string, k *countKey) { add(r.ID, entryThreshold, key, &stateEntry{Count: k}) })
			entriesOf(&s.sequence[i], func(key string, k *seqKey) { add(r.ID, entrySequence, key, &stateEntry{Seq: k}) })
			entriesOf(&s.firstSeen[i], func(key string, k *firstKey) { add(r.ID, entryFirstSeen, key, &stateEntry{First: k}) })
			entriesOf(&s.absence.shards[i].keyShard, func(key string, k *absKey) { add(r.ID, entryAbsence, key, &stateEntry{Abs: k}) })
			for key, o := range s.dedup[i].openings {
				add(r.ID, entryDedup, key, &stateEntry{Times: o.times})
			}
			for key, v := range s.previous[i].values.All() {
				// Decoded: a map's encoding follows Go's map order.
				p := prevOf(v)
				d := decoder{b: stringBytes(p.enc)}
				out[r.ID+"\x00p"+key] = fmt.Sprint(p.at, decodeValue(&d, 0))
			}
		}
	}
	return out
}

func entriesOf[T any, P keyPtr[T]](sh *keyShard[T, P], f func(string, *T)) {
	for key, v := range sh.keys {
		f(key, v)
	}
	for key, v := range sh.frozen.All() {
		f(key, sh.decodeFrozen(key, v))
	}
}

// closedGates counts the shards a sweep at the engine's horizons would
// pass over.
func (e *Engine) closedGates() int {
	h := e.orgs.horizons(e.watermark.Load(), e.maxLateness)
	n := 0
	for _, r := range e.active.Load().rules {
		s := r.state
		for i := range stateShards {
			for _, g := range []*sweepGate{&s.threshold[i].gate, &s.dedup[i].gate, &s.previous[i].gate, &s.sequence[i].gate, &s.firstSeen[i].gate, &s.absence.shards[i].gate} {
				if g.closed(h.top) {
					n++
				}
			}
		}
	}
	return n
}

// State kept for long is swept at a twelfth of its retention, state kept
// briefly at every step: a 24-hour group falls due at 24h (freed once the
// horizon, an hour behind, passes it) and goes at the sweep of the next
// two-hour boundary; a 10-minute group goes at the first step after it is
// due.
func TestLongRetentionIsSweptAtItsCadence(t *testing.T) {
	const long = `// id: L
// title: long
// threshold: {count: 3, window: 24h, group_by: event.user}
event.kind == 'fail'
`
	e, _ := newTestEngine(t, long, thresholdRule)
	process(t, e, fail(0, "u1"))
	gone := map[string]time.Duration{}
	for at := 5 * time.Minute; at <= 28*time.Hour; at += 5 * time.Minute {
		process(t, e, of(at, "", "tick", "clock", nil))
		for id, n := range e.keysByRule() {
			if _, ok := gone[id]; !ok && n == 0 {
				gone[id] = at
			}
		}
	}
	// T is due once the horizon (an hour behind) passes 10m; L once it
	// passes 24h, and then waits for the two-hour boundary.
	if want := map[string]time.Duration{"T": time.Hour + 10*time.Minute, "L": 26 * time.Hour}; !reflect.DeepEqual(gone, want) {
		t.Fatalf("keys freed at %v, want %v", gone, want)
	}
}
