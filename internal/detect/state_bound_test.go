package detect

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// boundCounts collects the bound's hooks.
type boundCounts struct {
	mu        sync.Mutex
	installed []string
	evicted   map[string]int
	keys      map[string]int64
}

func (c *boundCounts) hooks() Hooks {
	c.evicted, c.keys = map[string]int{}, map[string]int64{}
	return Hooks{
		Evicted: func(id string, n int) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if n == 0 {
				c.installed = append(c.installed, id)
			}
			c.evicted[id] += n
		},
		StateKeys: func(id string, d int64) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.keys[id] += d
		},
	}
}

func boundedEngine(t *testing.T, max int, track bool, srcs ...string) (*Engine, *boundCounts) {
	t.Helper()
	c := &boundCounts{}
	return NewEngine(compileRules(t, srcs...), EngineOptions{MaxStateKeys: max, TrackChanges: track, Hooks: c.hooks()}), c
}

// thresholdKeys lists the rule's threshold groups.
func thresholdKeys(e *Engine, rule string) []string {
	var out []string
	for _, r := range e.active.Load().rules {
		if r.ID != rule {
			continue
		}
		for i := range stateShards {
			for k := range r.state.threshold[i].keys {
				out = append(out, k)
			}
			for k := range r.state.threshold[i].frozen.Keys() {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestMaxStateKeysEvictsLeastRecentlyUpdated(t *testing.T) {
	e, c := boundedEngine(t, 3, false, thresholdRule)
	if !slices.Equal(c.installed, []string{"T"}) {
		t.Fatalf("evictions not reported from the start: %v", c.installed)
	}
	process(t, e, fail(0, "a"))
	process(t, e, fail(time.Second, "b"))
	process(t, e, fail(2*time.Second, "c"))
	process(t, e, fail(3*time.Second, "a")) // a updated after b and c
	process(t, e, fail(4*time.Second, "d"))
	if got := thresholdKeys(e, "T"); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Fatalf("keys %v, want b (least recently updated) evicted", got)
	}
	process(t, e, fail(5*time.Second, "e"))
	if got := thresholdKeys(e, "T"); !slices.Equal(got, []string{"a", "d", "e"}) {
		t.Fatalf("keys %v, want c evicted next", got)
	}
	if c.evicted["T"] != 2 {
		t.Fatalf("%d evictions counted, want 2", c.evicted["T"])
	}
	e.Expire()
	if c.keys["T"] != 3 {
		t.Fatalf("state keys gauge %d, want 3", c.keys["T"])
	}
	// The survivor keeps counting: a's third failure alerts.
	if d := detOf(process(t, e, fail(6*time.Second, "a")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("a kept state: %+v", d)
	}
}

// Beyond the exact scan the eviction samples; the bound still holds
// exactly, and every key over it is counted.
func TestMaxStateKeysBoundIsExact(t *testing.T) {
	const max, users = 100, 6000
	e, c := boundedEngine(t, max, false, thresholdRule, previousRule)
	for i := range users {
		process(t, e, fail(time.Duration(i)*time.Millisecond, fmt.Sprint("u", i)))
		process(t, e, login(time.Duration(i)*time.Millisecond, fmt.Sprint("u", i), "Paris"))
	}
	for _, r := range e.active.Load().rules {
		if n := r.state.book.keys.Load(); n != max {
			t.Errorf("%s holds %d keys, want %d", r.ID, n, max)
		}
		counted := 0
		for i := range stateShards {
			counted += r.state.threshold[i].count() + r.state.previous[i].values.Len() + len(r.state.dedup[i].openings)
		}
		if counted != max {
			t.Errorf("%s: %d keys in its maps, counter says %d", r.ID, counted, max)
		}
		if c.evicted[r.ID] != users-max {
			t.Errorf("%s: %d evictions, want %d", r.ID, c.evicted[r.ID], users-max)
		}
	}
	// The most recent keys survive sampling: the last user's count goes on.
	last := fmt.Sprint("u", users-1)
	if !slices.Contains(thresholdKeys(e, "T"), last) {
		t.Fatal("the key updated last was evicted")
	}
}

func TestMaxStateKeysNegativeIsUnbounded(t *testing.T) {
	e, c := boundedEngine(t, -1, false, thresholdRule)
	for i := range 50 {
		process(t, e, fail(0, fmt.Sprint("u", i)))
	}
	if n := len(thresholdKeys(e, "T")); n != 50 || c.evicted["T"] != 0 {
		t.Fatalf("%d keys, %d evicted", n, c.evicted["T"])
	}
}

// An evicted key is deleted in the journal, so a restore does not bring
// it back.
func TestEvictionJournaled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	e, _ := boundedEngine(t, 2, true, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "a"))
	process(t, e, fail(time.Second, "b"))
	must(t, f.Commit())
	process(t, e, fail(2*time.Second, "c")) // evicts a
	must(t, f.Commit())
	// crash

	e2, _ := boundedEngine(t, 2, true, thresholdRule)
	openStateFile(t, path, e2)
	if got := thresholdKeys(e2, "T"); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("restored keys %v, want the evicted a deleted", got)
	}
}

// The changelog of a partition deletes evicted keys too.
func TestEvictionInChangelog(t *testing.T) {
	e, _ := boundedEngine(t, 1, true, thresholdRule)
	process(t, e, fail(0, "a"))
	if _, err := e.takeChanges(); err != nil {
		t.Fatal(err)
	}
	process(t, e, fail(time.Second, "b"))
	changes, err := e.takeChanges()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range changes {
		got[string(c.Key)] = c.Value != nil
	}
	if v, ok := got[string(entryKey(entryThreshold, "T", "a"))]; !ok || v {
		t.Fatalf("changes %v: want a deleted", got)
	}
	if !got[string(entryKey(entryThreshold, "T", "b"))] {
		t.Fatalf("changes %v: want b written", got)
	}
}

// A released partition engine takes its keys off the gauge.
func TestReleaseStateReportsKeysGone(t *testing.T) {
	e, c := boundedEngine(t, 10, false, thresholdRule)
	process(t, e, fail(0, "a"))
	process(t, e, fail(0, "b"))
	e.Expire()
	e.ReleaseState()
	if c.keys["T"] != 0 {
		t.Fatalf("gauge %d after release", c.keys["T"])
	}
}

// Snapshots copy nothing whole: keys seen and the bound survive a round
// trip through the compact snapshot, with the same count.
func TestSnapshotKeepsKeyCount(t *testing.T) {
	e, _ := boundedEngine(t, 5, false, thresholdRule, previousRule)
	for i := range 8 {
		process(t, e, fail(time.Duration(i)*time.Second, fmt.Sprint("u", i)))
	}
	var buf bytes.Buffer
	must(t, e.WriteSnapshot(&buf))
	e2, _ := boundedEngine(t, 5, false, thresholdRule, previousRule)
	if _, err := e2.ReadSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if got, want := thresholdKeys(e2, "T"), thresholdKeys(e, "T"); !slices.Equal(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	if n := e2.active.Load().rules[1].state.book.keys.Load(); n != 5 {
		t.Fatalf("restored count %d", n)
	}
}

// A reload that changes a rule starts its state again: its keys leave the
// gauge.
func TestSwapReportsDroppedKeysGone(t *testing.T) {
	e, c := boundedEngine(t, 10, false, thresholdRule)
	process(t, e, fail(0, "a"))
	e.Expire()
	if c.keys["T"] != 1 {
		t.Fatalf("gauge %d", c.keys["T"])
	}
	e.Swap(compileRules(t, thresholdRule+"&& true\n"))
	if c.keys["T"] != 0 {
		t.Fatalf("gauge %d after the rule changed", c.keys["T"])
	}
}

// Threads evaluating at once evict without losing count: after they are
// done the bound holds and the counter matches the maps.
func TestMaxStateKeysConcurrent(t *testing.T) {
	const max = 50
	e, c := boundedEngine(t, max, true, thresholdRule, previousRule)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				u := fmt.Sprint("g", g, "u", i)
				process(t, e, fail(time.Duration(i)*time.Millisecond, u))
				process(t, e, login(time.Duration(i)*time.Millisecond, u, "Paris"))
			}
		})
	}
	wg.Wait()
	if _, err := e.takeChanges(); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.active.Load().rules {
		counted := 0
		for i := range stateShards {
			counted += r.state.threshold[i].count() + r.state.previous[i].values.Len()
		}
		if n := r.state.book.keys.Load(); n != max || counted != max {
			t.Errorf("%s: counter %d, maps %d, want %d", r.ID, n, counted, max)
		}
		if c.evicted[r.ID] != 2000-max {
			t.Errorf("%s: %d evictions", r.ID, c.evicted[r.ID])
		}
	}
}

// A restored snapshot keeps each key's recency: the next evictions take the
// keys least recently updated before the snapshot, whether they were held
// live or frozen, not any restored key.
func TestSnapshotKeepsRecency(t *testing.T) {
	for _, freezeAfter := range []uint64{freezeEvery, 1} {
		e, _ := boundedEngine(t, 10, false, thresholdRule)
		e.freezeAfter = freezeAfter
		for i := range 10 {
			process(t, e, fail(time.Duration(i)*time.Second, fmt.Sprint("u", i)))
		}
		var buf bytes.Buffer
		must(t, e.WriteSnapshot(&buf))
		restored, _ := boundedEngine(t, 10, false, thresholdRule)
		if _, err := restored.ReadSnapshot(&buf); err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := 3; i < 13; i++ {
			want = append(want, fmt.Sprint("u", i))
			if i >= 10 {
				process(t, restored, fail(time.Duration(i)*time.Second, fmt.Sprint("u", i)))
			}
		}
		slices.Sort(want)
		if got := thresholdKeys(restored, "T"); !slices.Equal(got, want) {
			t.Fatalf("freezing after %d events: kept %v, want the 10 most recent %v", freezeAfter, got, want)
		}
	}
}
