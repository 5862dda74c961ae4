package detect

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// lateBurstStream is 10,000 events over five hours of event time with, from
// every 300th event on, three failures of a new user 100 events apart, each
// published 65 minutes before the newest event: later than MaxLateness, so
// whether a burst alerts depends on whether state was swept between its
// failures.
func lateBurstStream() [][]byte {
	const n, every, apart = 10_000, 300, 100
	step := 1800 * time.Millisecond
	var evs [][]byte
	for i := range n {
		at := time.Duration(i) * step
		evs = append(evs, of(at, fmt.Sprintf("n%d", i), "ok", "someone", nil))
		for k := range 3 {
			if start := i - k*apart; start >= 0 && start%every == every-1 {
				evs = append(evs, of(at-65*time.Minute, fmt.Sprintf("b%d-%d", start, k), "fail", fmt.Sprintf("late%d", start), nil))
			}
		}
	}
	return evs
}

// An engine restored from a snapshot taken at any point tags the rest of
// the events exactly as an uninterrupted engine does, even events later
// than MaxLateness: state is swept as event time moves, never by counts or
// timers, so a restart sweeps where an uninterrupted run did.
func TestRestoredEngineTagsAsUninterrupted(t *testing.T) {
	rs := compileRules(t, thresholdRule)
	evs := lateBurstStream()
	tags := func(e *Engine, evs [][]byte) []int {
		out := make([]int, len(evs))
		for i, raw := range evs {
			if d := detOf(process(t, e, raw), "T"); d != nil {
				out[i] = d.Count
			}
		}
		return out
	}
	want := tags(NewEngine(rs, EngineOptions{}), evs)
	alerted := 0
	for _, n := range want {
		if n > 0 {
			alerted++
		}
	}
	t.Logf("%d of %d late bursts alerted", alerted, 10_000/300)
	if alerted == 0 || alerted == 10_000/300 {
		t.Fatalf("%d late bursts alerted in the uninterrupted run: the stream should make sweeps matter", alerted)
	}
	compare := func(how string, cut int, got []int) {
		t.Helper()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("restored from %s at event %d: event %d tagged with count %d, uninterrupted %d", how, cut, i, got[i], want[i])
			}
		}
	}
	for _, cut := range []int{1234, 4100, 5000, 7777} {
		first := NewEngine(rs, EngineOptions{})
		got := tags(first, evs[:cut])
		var snap bytes.Buffer
		must(t, first.WriteSnapshot(&snap))
		restored := NewEngine(rs, EngineOptions{})
		if _, err := restored.ReadSnapshot(&snap); err != nil {
			t.Fatal(err)
		}
		compare("a snapshot", cut, append(got, tags(restored, evs[cut:])...))

		// The state log: changes taken per batch of 100, as state_topic
		// commits them, read back in order.
		logged := NewEngine(rs, EngineOptions{TrackChanges: true})
		var log []Change
		got = nil
		for from := 0; from < cut; from += 100 {
			got = append(got, tags(logged, evs[from:min(from+100, cut)])...)
			changes, err := logged.TakeBatchChanges()
			must(t, err)
			log = append(log, changes...)
		}
		fromLog := restoredFromChanges(t, rs, log)
		compare("the state log", cut, append(got, tags(fromLog, evs[cut:])...))
	}
}
