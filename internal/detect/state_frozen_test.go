package detect

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// frozenKeys counts the rule's frozen keys.
func (s *ruleState) frozenKeys() int {
	n := 0
	for i := range stateShards {
		n += lockedLen(&s.threshold[i].mu, func() int { return s.threshold[i].frozen.Len() })
		n += lockedLen(&s.sequence[i].mu, func() int { return s.sequence[i].frozen.Len() })
		n += lockedLen(&s.firstSeen[i].mu, func() int { return s.firstSeen[i].frozen.Len() })
	}
	return n
}

func (e *Engine) frozenKeys() int {
	n := 0
	for _, r := range e.active.Load().rules {
		n += r.state.frozenKeys()
	}
	return n
}

func (e *Engine) keysByRule() map[string]int64 {
	out := map[string]int64{}
	for _, r := range e.active.Load().rules {
		out[r.ID] = r.state.book.keys.Load()
	}
	return out
}

// correlationStream is n events of the correlation test rules over six
// hours (so that sweeps expire state), among 40 users and 8 addresses,
// delivered up to 20 minutes out of order, one in 20 delivered twice.
func correlationStream(seed uint64, n int) [][]byte {
	return correlationEvents(seed, n, streamShape{span: 6 * time.Hour, users: 40})
}

// streamShape is how correlationEvents spreads its events.
type streamShape struct {
	span  time.Duration
	users int
	orgs  int // 0: no org; else that many, the last running 4 hours behind
}

func correlationEvents(seed uint64, n int, s streamShape) [][]byte {
	rnd := rand.New(rand.NewPCG(seed, 7))
	kinds := []string{"fail", "deny", "approve", "login", "start", "done"}
	var evs [][]byte
	for i := range n {
		at := time.Duration(i)*s.span/time.Duration(n) - time.Duration(rnd.IntN(20))*time.Minute
		user := fmt.Sprintf("u%d", rnd.IntN(s.users))
		kind := kinds[rnd.IntN(len(kinds))]
		extra := map[string]any{"ip": fmt.Sprintf("203.0.113.%d", rnd.IntN(8)), "device": fmt.Sprint("d", rnd.IntN(4))}
		if s.orgs > 0 {
			org := rnd.IntN(s.orgs)
			if org == s.orgs-1 {
				at -= 4 * time.Hour
			}
			extra["oktadetect"] = map[string]any{"org": fmt.Sprintf("org%d.okta.com", org)}
		}
		evs = append(evs, of(at, fmt.Sprint("e", i), kind, user, extra))
		if rnd.IntN(20) == 0 {
			evs = append(evs, evs[rnd.IntN(len(evs))])
		}
	}
	return evs
}

// TestFreezingChangesNothing: an engine that freezes idle keys after
// nearly every event (so nearly every key is thawed and frozen again each
// time it is used), snapshotted and restored halfway, tags every event
// exactly as an engine that never freezes, and ends with the same keys,
// over the pack's streams and a stream of every correlation type with
// expiry, re-deliveries and late events.
func TestFreezingChangesNothing(t *testing.T) {
	type run struct {
		rs          *RuleSet
		streams     [][][]byte
		freezeAfter uint64
	}
	runs := []run{
		{compileRules(t, thresholdRule, distinctRule, sequenceRule, firstSeenRule, absenceRule), [][][]byte{correlationStream(1, 3000)}, 1},
	}
	if !testkit.Race {
		// Every 8 events: a pass visits every rule's shards, which the
		// race detector makes too slow for the whole pack (its pass runs
		// the correlation stream, with the same code).
		runs = append(runs, run{packRules(t), testStreams(t, true, true), 8})
	}
	tags, frozen := 0, 0
	for ri, r := range runs {
		for si, evs := range r.streams {
			never := NewEngine(r.rs, EngineOptions{})
			never.freezeAfter = 1 << 62
			always := NewEngine(r.rs, EngineOptions{})
			always.freezeAfter = r.freezeAfter
			for i, raw := range evs {
				if i == len(evs)/2 {
					frozen += always.frozenKeys()
					always = restoredCopy(t, always, r.rs)
				}
				tags += sameTags(t, fmt.Sprintf("run %d stream %d event %d", ri, si, i), raw, "never frozen", never, "always", always)
			}
			frozen += always.frozenKeys()
			if a, b := never.keysByRule(), always.keysByRule(); !reflect.DeepEqual(a, b) {
				t.Fatalf("run %d stream %d: keys never frozen %v, always %v", ri, si, a, b)
			}
		}
	}
	if tags == 0 || frozen == 0 {
		t.Fatalf("%d tags, %d frozen keys: the comparison proves nothing", tags, frozen)
	}
	t.Logf("%d tags, %d frozen keys seen", tags, frozen)
}

// sameTags processes raw with engines a and b, fails unless they tag it
// alike (detections, deferred absences, error), and returns the tags.
func sameTags(t *testing.T, where string, raw []byte, aName string, a *Engine, bName string, b *Engine) int {
	t.Helper()
	want, errA := a.Process(raw)
	got, errB := b.Process(raw)
	if fmt.Sprint(errA) != fmt.Sprint(errB) || !reflect.DeepEqual(want.Detections, got.Detections) || !reflect.DeepEqual(want.Deferred, got.Deferred) {
		t.Fatalf("%s: %s %+v %+v (%v), %s %+v %+v (%v)", where, aName, want.Detections, deferredDetections(want), errA, bName, got.Detections, deferredDetections(got), errB)
	}
	return len(want.Detections) + len(want.Deferred)
}

// restoredCopy is a new engine (freezing as e does) restored from e's
// snapshot.
func restoredCopy(t *testing.T, e *Engine, rs *RuleSet) *Engine {
	t.Helper()
	var snap bytes.Buffer
	if err := e.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	c := NewEngine(rs, EngineOptions{MaxLateness: time.Duration(e.maxLateness)})
	c.freezeAfter = e.freezeAfter
	if _, err := c.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	return c
}

// A frozen key counts toward max_state_keys and is evicted by its own
// recency: the bound holds and the oldest keys go first.
func TestFrozenKeysAreBoundedAndEvictedOldestFirst(t *testing.T) {
	rs := compileRules(t, thresholdRule)
	e := NewEngine(rs, EngineOptions{MaxStateKeys: 10})
	e.freezeAfter = 1
	for i := range 30 {
		process(t, e, fail(time.Duration(i)*time.Second, fmt.Sprint("user", i)))
	}
	if n := e.keysByRule()["T"]; n != 10 {
		t.Fatalf("%d keys, want the bound 10", n)
	}
	if e.frozenKeys() == 0 {
		t.Fatal("no key frozen: the test proves nothing")
	}
	s := e.active.Load().rules[0].state
	for i := range 20 {
		key := fmt.Sprintf("user%d", i)
		sh := &s.threshold[shardOf(key)]
		sh.mu.Lock()
		_, there := sh.peek(key)
		sh.mu.Unlock()
		if there {
			t.Fatalf("%s, among the 20 oldest, survived eviction", key)
		}
	}
}

// A frozen key is skipped by sweeps until its due time and then expires
// like a live one.
func TestFrozenKeysExpire(t *testing.T) {
	rs := compileRules(t, thresholdRule)
	e := NewEngine(rs, EngineOptions{})
	e.freezeAfter = 1
	process(t, e, fail(0, "ann"))
	process(t, e, fail(time.Second, "bob"))
	if e.frozenKeys() != 1 || e.keysByRule()["T"] != 2 {
		t.Fatalf("%d frozen of %d keys, want ann's frozen", e.frozenKeys(), e.keysByRule()["T"])
	}
	// Far past the window and the lateness: both go.
	process(t, e, fail(10*time.Hour, "zed"))
	process(t, e, fail(10*time.Hour+time.Second, "zed"))
	if n := e.keysByRule()["T"]; n != 1 {
		t.Fatalf("%d keys after the sweep, want zed's alone", n)
	}
}

// all returns every key's state, live or frozen (decoded copies).
func (sh *keyShard[T, P]) all() map[string]*T {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := maps.Clone(sh.keys)
	for name, v := range sh.frozen.All() {
		out[name] = sh.decodeFrozen(name, v)
	}
	return out
}

// A sweep that expires every frozen key frees their arenas at once: a
// shard that sees no more writes does not hold its expired keys' bytes.
func TestExpiredFrozenKeysFreeTheirMemory(t *testing.T) {
	rs := compileRules(t, thresholdRule)
	e := NewEngine(rs, EngineOptions{MaxLateness: time.Minute})
	e.freezeAfter = 1
	for i := range 2000 {
		process(t, e, fail(0, "user"+itoa(i)))
	}
	e.freezeIdle()
	held := func() (keys, chunks int) {
		st := e.active.Load().rules[0].state
		for i := range st.threshold {
			keys += st.threshold[i].frozen.Len()
			chunks += len(st.threshold[i].frozen.chunks)
		}
		return keys, chunks
	}
	if keys, chunks := held(); keys < 1900 || chunks == 0 {
		t.Fatalf("before expiry: %d frozen keys in %d chunks, want them frozen", keys, chunks)
	}
	process(t, e, of(3*time.Hour, "", "tick", "clock", nil))
	e.Expire()
	if keys, chunks := held(); keys != 0 || chunks != 0 {
		t.Fatalf("after expiry: %d frozen keys, %d chunks held", keys, chunks)
	}
}
