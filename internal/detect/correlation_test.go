package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
)

const (
	distinctRule  = detecttest.DistinctRule
	sequenceRule  = detecttest.SequenceRule
	firstSeenRule = detecttest.FirstSeenRule
	absenceRule   = detecttest.AbsenceRule
)

func spray(o time.Duration, id, user string) []byte {
	return of(o, id, "fail", user, map[string]any{"ip": "203.0.113.9"})
}

// --- distinct counts ---------------------------------------------------------

func TestDistinctExactlyAtN(t *testing.T) {
	e, _ := newTestEngine(t, distinctRule)
	process(t, e, spray(0, "1", "b"))
	process(t, e, spray(time.Minute, "2", "a"))
	if res := process(t, e, spray(2*time.Minute, "3", "a")); len(res.Detections) != 0 {
		t.Fatal("two distinct users alerted")
	}
	d := detOf(process(t, e, spray(3*time.Minute, "4", "c")), "DC")
	if d == nil || d.Count != 3 || !slices.Equal(d.Values, []string{"a", "b", "c"}) {
		t.Fatalf("third distinct user: %+v, want count 3, values [a b c]", d)
	}
	if d := detOf(process(t, e, spray(4*time.Minute, "5", "a")), "DC"); d == nil || d.Count != 3 {
		t.Fatalf("a repeated user while 3 are distinct: %+v, want tagged with count 3", d)
	}
	if d := detOf(process(t, e, spray(5*time.Minute, "6", "d")), "DC"); d == nil || d.Count != 4 {
		t.Fatalf("fourth distinct user: %+v", d)
	}
}

func TestDistinctWindowBoundary(t *testing.T) {
	e, _ := newTestEngine(t, distinctRule)
	process(t, e, spray(0, "1", "a"))
	process(t, e, spray(5*time.Minute, "2", "b"))
	// (t-10m, t] excludes the event exactly one window before.
	if res := process(t, e, spray(10*time.Minute, "3", "c")); len(res.Detections) != 0 {
		t.Fatal("tagged with the first user exactly one window before")
	}
	if res := process(t, e, spray(10*time.Minute-time.Nanosecond, "4", "d")); len(res.Detections) != 1 {
		t.Fatal("not tagged with 3 distinct users inside the window")
	}
}

func TestDistinctValuesListedAtMost100(t *testing.T) {
	e, _ := newTestEngine(t, distinctRule)
	var d *Detection
	for i := range 150 {
		d = detOf(process(t, e, spray(time.Duration(i)*time.Second, string(rune('a'+i%26))+string(rune('A'+i/26)), string(rune('a'+i%26))+string(rune('A'+i/26)))), "DC")
	}
	if d == nil || d.Count != 150 || len(d.Values) != 100 || !slices.IsSorted(d.Values) {
		t.Fatalf("count %d, %d values", d.Count, len(d.Values))
	}
}

func TestDistinctRedelivery(t *testing.T) {
	e, _ := newTestEngine(t, distinctRule)
	process(t, e, spray(0, "1", "a"))
	process(t, e, spray(time.Minute, "2", "b"))
	process(t, e, spray(time.Minute, "2", "b"))
	if d := detOf(process(t, e, spray(2*time.Minute, "3", "c")), "DC"); d == nil || d.Count != 3 {
		t.Fatalf("%+v", d)
	}
}

// A re-delivered tagged event gets its first tag, values included, although
// a late event has since joined its window, the state went through a
// snapshot, and expiry has passed the first events its values came from.
func TestDistinctRedeliveryKeepsFirstValues(t *testing.T) {
	rs := compileRules(t, distinctRule)
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	process(t, e, spray(0, "1", "a"))
	process(t, e, spray(time.Minute, "2", "b"))
	third := spray(2*time.Minute, "3", "c")
	first := detOf(process(t, e, third), "DC")
	if first == nil || first.Count != 3 || !slices.Equal(first.Values, []string{"a", "b", "c"}) {
		t.Fatalf("third user: %+v", first)
	}
	if d := detOf(process(t, e, spray(30*time.Second, "4", "d")), "DC"); d == nil || d.Count != 4 {
		t.Fatalf("late fourth user: %+v", d)
	}
	same := func(e *Engine, when string) {
		t.Helper()
		d := detOf(process(t, e, third), "DC")
		if d == nil || d.Count != first.Count || !slices.Equal(d.Values, first.Values) || d.AlertID != first.AlertID {
			t.Fatalf("%s: re-delivered %+v, first %+v", when, d, first)
		}
	}
	same(e, "after a late event")
	var snap bytes.Buffer
	must(t, e.WriteSnapshot(&snap))
	changes, err := e.takeChanges()
	must(t, err)
	entries := map[string][]byte{}
	for _, c := range changes {
		entries[string(c.Key)] = c.Value
	}
	fromEntries := NewEngine(rs, EngineOptions{})
	if _, err := fromEntries.restoreEntries(entries); err != nil {
		t.Fatal(err)
	}
	same(fromEntries, "after a restore from changelog entries")
	restored := NewEngine(rs, EngineOptions{})
	if _, err := restored.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	same(restored, "after a snapshot")
	// The horizon passes "1" (at 0) but not "3": cutoff = horizon - window.
	process(t, restored, of(DefaultMaxLateness+11*time.Minute, "w", "other", "z", nil))
	restored.Expire()
	same(restored, "after expiry passed the first events")
}

// --- sequences ---------------------------------------------------------------

func deny(o time.Duration, id string) []byte    { return of(o, id, "deny", "ann", nil) }
func approve(o time.Duration, id string) []byte { return of(o, id, "approve", "ann", nil) }

func TestSequenceExactlyAtCount(t *testing.T) {
	e, _ := newTestEngine(t, sequenceRule)
	process(t, e, deny(0, "d1"))
	if res := process(t, e, approve(time.Minute, "a1")); len(res.Detections) != 0 {
		t.Fatal("one denial was enough")
	}
	process(t, e, deny(2*time.Minute, "d2"))
	process(t, e, deny(3*time.Minute, "d3"))
	d := detOf(process(t, e, approve(4*time.Minute, "a2")), "SQ")
	// Every denial between the window's start and the approval shows,
	// the approval last; a1 is no step of this rule.
	if d == nil || !slices.Equal(d.Sequence, []string{"d1", "d2", "d3", "a2"}) || d.Count != 0 {
		t.Fatalf("%+v", d)
	}
}

func TestSequenceWithinBoundary(t *testing.T) {
	e, _ := newTestEngine(t, sequenceRule)
	process(t, e, deny(0, "d1"))
	process(t, e, deny(time.Minute, "d2"))
	// The first step must be published after t - within.
	if res := process(t, e, approve(10*time.Minute, "a1")); len(res.Detections) != 0 {
		t.Fatal("a denial exactly `within` before the approval counted")
	}
	if d := detOf(process(t, e, approve(10*time.Minute-time.Nanosecond, "a2")), "SQ"); d == nil {
		t.Fatal("denials inside the window did not count")
	}
	// Steps at the approval's own time are not before it.
	e2, _ := newTestEngine(t, sequenceRule)
	process(t, e2, deny(0, "d1"))
	process(t, e2, deny(time.Minute, "d2"))
	if res := process(t, e2, approve(time.Minute, "a1")); len(res.Detections) != 0 {
		t.Fatal("a denial published with the approval counted as before it")
	}
}

// An approval published before the denials is no approval after denials,
// whatever the arrival order.
func TestSequenceApprovalBeforeDenialsNeverCompletes(t *testing.T) {
	events := [][]byte{approve(0, "a"), deny(time.Minute, "d1"), deny(2*time.Minute, "d2")}
	forEachPermutation(len(events), func(perm []int) {
		e, _ := newTestEngine(t, sequenceRule)
		for _, i := range perm {
			if res := process(t, e, events[i]); len(res.Detections) != 0 {
				t.Fatalf("order %v tagged %+v", perm, res.Detections)
			}
		}
	})
}

// The approval arrives first; the denial that completes the sequence is
// the event tagged.
func TestSequenceLateStepCompletes(t *testing.T) {
	e, _ := newTestEngine(t, sequenceRule)
	if res := process(t, e, approve(5*time.Minute, "a")); len(res.Detections) != 0 {
		t.Fatal("approval alone tagged")
	}
	if res := process(t, e, deny(time.Minute, "d1")); len(res.Detections) != 0 {
		t.Fatal("one denial completed it")
	}
	d := detOf(process(t, e, deny(2*time.Minute, "d2")), "SQ")
	if d == nil || !slices.Equal(d.Sequence, []string{"d1", "d2", "a"}) {
		t.Fatalf("late denial: %+v", d)
	}
	// In time order the approval is tagged, with the same alert.
	e2, _ := newTestEngine(t, sequenceRule)
	process(t, e2, deny(time.Minute, "d1"))
	process(t, e2, deny(2*time.Minute, "d2"))
	if d2 := detOf(process(t, e2, approve(5*time.Minute, "a")), "SQ"); d2 == nil || d2.AlertID != d.AlertID {
		t.Fatalf("in time order: %+v, want alert %s", d2, d.AlertID)
	}
	// A further late denial completes nothing new.
	if res := process(t, e, deny(3*time.Minute, "d3")); len(res.Detections) != 0 {
		t.Fatal("a completed sequence was tagged again")
	}
}

func TestSequenceStepsInOrder(t *testing.T) {
	const rule = `// id: ABC
// sequence:
//   by: event.user
//   within: 1h
//   after:
//     - {when: "event.kind == 'a'"}
//     - {when: "event.kind == 'b'"}
event.kind == 'c'
`
	run := func(kinds ...string) bool {
		e, _ := newTestEngine(t, rule)
		tagged := false
		for i, k := range kinds {
			tagged = len(process(t, e, of(time.Duration(i)*time.Minute, k+string(rune('0'+i)), k, "ann", nil)).Detections) > 0
		}
		return tagged
	}
	if !run("a", "b", "c") || run("b", "a", "c") || run("a", "c", "b") || !run("b", "a", "b", "c") {
		t.Fatal("steps not matched in order of event time")
	}
}

func TestSequenceRedelivery(t *testing.T) {
	e, _ := newTestEngine(t, sequenceRule)
	process(t, e, deny(0, "d1"))
	process(t, e, deny(0, "d1"))
	if res := process(t, e, approve(time.Minute, "a1")); len(res.Detections) != 0 {
		t.Fatal("a re-delivered denial counted twice")
	}
	process(t, e, deny(2*time.Minute, "d2"))
	first := detOf(process(t, e, approve(3*time.Minute, "a2")), "SQ")
	process(t, e, deny(3*time.Minute+30*time.Second, "d3"))
	again := detOf(process(t, e, approve(3*time.Minute, "a2")), "SQ")
	if first == nil || again == nil || again.AlertID != first.AlertID || !slices.Equal(again.Sequence, first.Sequence) {
		t.Fatalf("re-delivered approval: %+v, first %+v", again, first)
	}
}

func TestSequenceOrgs(t *testing.T) {
	e, _ := newTestEngine(t, sequenceRule)
	processIn(t, e, "a", deny(0, "d1"))
	processIn(t, e, "b", deny(time.Minute, "d2"))
	if res := processIn(t, e, "a", approve(2*time.Minute, "a1")); len(res.Detections) != 0 {
		t.Fatal("denials of two orgs made one sequence")
	}
}

// --- first seen --------------------------------------------------------------

func loginOn(o time.Duration, id, device string) []byte {
	return of(o, id, "login", "ann", map[string]any{"device": device})
}

func TestFirstSeenHistoryBoundary(t *testing.T) {
	e, _ := newTestEngine(t, firstSeenRule)
	if d := detOf(process(t, e, loginOn(0, "1", "mac")), "FS"); d == nil || d.Title != "ann on new device mac" {
		t.Fatalf("first device: %+v", d)
	}
	if res := process(t, e, loginOn(time.Hour, "2", "mac")); len(res.Detections) != 0 {
		t.Fatal("known device tagged")
	}
	// Seen exactly `history` before: still known.
	if res := process(t, e, loginOn(25*time.Hour, "3", "mac")); len(res.Detections) != 0 {
		t.Fatal("device seen exactly 24h before tagged")
	}
	if res := process(t, e, loginOn(49*time.Hour+time.Nanosecond, "4", "mac")); len(res.Detections) != 1 {
		t.Fatal("device unseen for more than 24h not tagged")
	}
	if res := process(t, e, loginOn(50*time.Hour, "5", "pc")); len(res.Detections) != 1 {
		t.Fatal("second new device not tagged")
	}
}

func TestFirstSeenLearn(t *testing.T) {
	const rule = `// id: FL
// first_seen: {key: event.user, value: event.device, history: 24h, learn: 1h}
event.kind == 'login'
`
	e, _ := newTestEngine(t, rule)
	process(t, e, loginOn(0, "1", "mac"))
	if res := process(t, e, loginOn(30*time.Minute, "2", "pc")); len(res.Detections) != 0 {
		t.Fatal("tagged while learning")
	}
	if res := process(t, e, loginOn(time.Hour, "3", "phone")); len(res.Detections) != 1 {
		t.Fatal("not tagged once learned")
	}
	// Late learning: the key's first event arrives after a new value.
	e2, _ := newTestEngine(t, rule)
	if res := process(t, e2, loginOn(2*time.Hour, "a", "pc")); len(res.Detections) != 0 {
		t.Fatal("a key's first event tagged")
	}
	d := detOf(process(t, e2, loginOn(0, "b", "mac")), "FL")
	want := detOf(func() Result {
		e3, _ := newTestEngine(t, rule)
		process(t, e3, loginOn(0, "b", "mac"))
		return process(t, e3, loginOn(2*time.Hour, "a", "pc"))
	}(), "FL")
	if d == nil || want == nil || d.AlertID != want.AlertID {
		t.Fatalf("late first event: %+v, in time order %+v", d, want)
	}
}

// A key that learned stays learned through a quiet spell longer than its
// history: its next value is new (as Elastic's new terms would say), not
// the start of another learning period.
func TestFirstSeenLearnedKeyOutlastsQuietSpell(t *testing.T) {
	const rule = `// id: FL
// first_seen: {key: event.user, value: event.device, history: 24h, learn: 1h}
event.kind == 'login'
`
	e, _ := newTestEngine(t, rule)
	process(t, e, loginOn(0, "1", "mac"))
	// Three quiet days for ann; other events move event time, and the
	// state is swept as it moves.
	for h := 1; h <= 72; h++ {
		process(t, e, of(time.Duration(h)*time.Hour, "tick"+itoa(h), "other", "bob", nil))
	}
	if d := detOf(process(t, e, loginOn(73*time.Hour, "2", "pc")), "FL"); d == nil {
		t.Fatal("a new device after a quiet spell was taken for learning")
	}
}

func TestFirstSeenRedeliveryAndOrgs(t *testing.T) {
	e, _ := newTestEngine(t, firstSeenRule)
	first := detOf(processIn(t, e, "a", loginOn(0, "1", "mac")), "FS")
	again := detOf(processIn(t, e, "a", loginOn(0, "1", "mac")), "FS")
	if first == nil || again == nil || again.AlertID != first.AlertID {
		t.Fatalf("re-delivered first sighting: %+v, first %+v", again, first)
	}
	other := detOf(processIn(t, e, "b", loginOn(time.Minute, "2", "mac")), "FS")
	if other == nil || other.AlertID == first.AlertID {
		t.Fatalf("org B's first sighting: %+v", other)
	}
}

func TestFirstSeenTupleValue(t *testing.T) {
	const rule = `// id: FT
// first_seen: {key: event.user, value: "[event.device, event.city]", history: 24h}
event.kind == 'login'
`
	e, _ := newTestEngine(t, rule)
	at := func(o time.Duration, id, device, city string) int {
		return len(process(t, e, of(o, id, "login", "ann", map[string]any{"device": device, "city": city})).Detections)
	}
	if at(0, "1", "mac", "Paris") != 1 || at(time.Minute, "2", "mac", "Paris") != 0 || at(2*time.Minute, "3", "mac", "Rome") != 1 {
		t.Fatal("a list value is not one tuple")
	}
}

// --- absence -----------------------------------------------------------------

func start(o time.Duration, id string) []byte { return of(o, id, "start", "ann", nil) }
func done(o time.Duration, id string) []byte  { return of(o, id, "done", "ann", nil) }
func tick(o time.Duration) []byte             { return of(o, "", "tick", "zed", nil) }

func TestAbsenceFiresOnlyPastWithinAndGrace(t *testing.T) {
	e, _ := newTestEngine(t, absenceRule)
	if res := process(t, e, start(0, "s1")); len(res.Detections) != 0 || len(res.Deferred) != 0 {
		t.Fatalf("the opening event was tagged: %+v", res)
	}
	// within 10m + grace 5m: time must reach the first whole minute after
	// 12:15 (absenceTick), 12:16.
	for _, at := range []time.Duration{15 * time.Minute, 15*time.Minute + time.Nanosecond, 16*time.Minute - time.Nanosecond} {
		if res := process(t, e, tick(at)); len(res.Deferred) != 0 {
			t.Fatalf("fired at %v, before the first whole minute past within+grace", at)
		}
	}
	res := process(t, e, tick(16*time.Minute))
	if len(res.Deferred) != 1 || len(res.Detections) != 0 {
		t.Fatalf("not fired once time reached the minute after within+grace: %+v", res)
	}
	dfr := res.Deferred[0]
	var out struct {
		UUID       string      `json:"uuid"`
		Detections []Detection `json:"detections"`
	}
	if err := json.Unmarshal(dfr.Out, &out); err != nil || out.UUID != "s1" || len(out.Detections) != 1 ||
		out.Detections[0].Title != "ann never finished" || out.Detections[0].AlertID != dfr.Detections[0].AlertID {
		t.Fatalf("deferred message %s (%v)", dfr.Out, err)
	}
	if res := process(t, e, tick(time.Hour)); len(res.Deferred) != 0 {
		t.Fatal("fired twice")
	}
}

func TestAbsenceNeverFiresWhenClosedInTime(t *testing.T) {
	cases := map[string][][]byte{
		"closed at the window's end":                  {start(0, "s"), done(10*time.Minute, "d")},
		"closing event first (arrival order)":         {done(5*time.Minute, "d"), start(0, "s")},
		"closing event late, before the deadline":     {start(0, "s"), tick(14 * time.Minute), done(5*time.Minute, "d")},
		"closing event late, in the grace":            {start(0, "s"), tick(15 * time.Minute), done(10*time.Minute, "d")},
		"closing event of the same uuid re-delivered": {start(0, "s"), done(time.Minute, "d"), done(time.Minute, "d")},
	}
	for name, evs := range cases {
		t.Run(name, func(t *testing.T) {
			e, _ := newTestEngine(t, absenceRule)
			for _, raw := range append(evs, tick(2*time.Hour)) {
				if res := process(t, e, raw); len(res.Deferred) != 0 {
					t.Fatalf("fired: %s", res.Deferred[0].Out)
				}
			}
		})
	}
	fires := map[string][][]byte{
		"closed after the window":        {start(0, "s"), done(10*time.Minute+time.Nanosecond, "d")},
		"closed before the opening":      {done(0, "d"), start(0, "s")},
		"closing event after it fired":   {start(0, "s"), tick(16 * time.Minute), done(5*time.Minute, "d")},
		"opening event re-delivered":     {start(0, "s"), start(0, "s")},
		"opening event already past due": {tick(time.Hour), start(0, "s")},
	}
	for name, evs := range fires {
		t.Run(name, func(t *testing.T) {
			e, _ := newTestEngine(t, absenceRule)
			fired := 0
			for _, raw := range append(evs, tick(2*time.Hour)) {
				fired += len(processIn(t, e, "a", raw).Deferred)
			}
			if fired != 1 {
				t.Fatalf("fired %d times, want once", fired)
			}
		})
	}
}

func TestAbsenceOrgs(t *testing.T) {
	e, _ := newTestEngine(t, absenceRule)
	processIn(t, e, "a", start(0, "s"))
	processIn(t, e, "b", done(time.Minute, "d"))
	res := processIn(t, e, "a", tick(time.Hour))
	if len(res.Deferred) != 1 || !slices.Equal(res.Deferred[0].Meta, inOrg("a")) {
		t.Fatalf("org B's closing event closed org A's expectation, or the org was lost: %+v", res.Deferred)
	}
}

// An org catching up a backlog runs behind the others: its expectations
// fire by its own event time, never by another org's, or its closing
// events, still to be read, would come too late (an invented alert).
func TestAbsenceFiresByItsOrgsTime(t *testing.T) {
	e, _ := newTestEngine(t, absenceRule)
	steps := []struct {
		org   string // "" unscoped
		raw   []byte
		fires int
	}{
		{"lagging", start(0, "s"), 0},
		{"ahead", tick(3 * time.Hour), 0},
		{"", tick(4 * time.Hour), 0},
		// the lagging org's backlog goes on, and reaches the closing event
		{"lagging", tick(time.Minute), 0},
		{"lagging", done(5*time.Minute, "d"), 0},
		{"lagging", tick(time.Hour), 0},
		// without a closing event, its own time fires it, once, and only
		// past its deadline (within 10m + grace 5m)
		{"lagging", start(2*time.Hour, "s2"), 0},
		{"ahead", tick(5 * time.Hour), 0},
		{"lagging", tick(2*time.Hour + 15*time.Minute), 0},
		{"lagging", tick(2*time.Hour + 16*time.Minute), 1},
		{"lagging", tick(6 * time.Hour), 0},
	}
	for i, st := range steps {
		var res Result
		if st.org == "" {
			res = process(t, e, st.raw)
		} else {
			res = processIn(t, e, st.org, st.raw)
		}
		if len(res.Deferred) != st.fires {
			t.Fatalf("step %d (%s): %d absences fired, want %d", i, st.org, len(res.Deferred), st.fires)
		}
		for _, d := range res.Deferred {
			if !slices.Equal(d.Meta, inOrg("lagging")) {
				t.Fatalf("fired with the metadata of another org: %+v", d.Meta)
			}
		}
	}
}

// Expectations of several orgs restored from a snapshot fire each by its
// own org's time.
func TestRestoredAbsencesFireByTheirOrgsTime(t *testing.T) {
	rs := compileRules(t, absenceRule)
	e := NewEngine(rs, EngineOptions{})
	processIn(t, e, "a", start(0, "sa"))
	processIn(t, e, "b", start(time.Hour, "sb"))
	r := restoredCopy(t, e, rs)
	for _, st := range []struct {
		org string
		at  time.Duration
	}{{"b", time.Hour + 10*time.Minute}, {"a", time.Minute}} {
		if res := processIn(t, r, st.org, tick(st.at)); len(res.Deferred) != 0 {
			t.Fatalf("org B's time fired org A's absence (or its own too early): %s", res.Deferred[0].Out)
		}
	}
	if res := processIn(t, r, "a", tick(16*time.Minute)); len(res.Deferred) != 1 || !slices.Equal(res.Deferred[0].Meta, inOrg("a")) {
		t.Fatalf("org A's absence: %+v", res.Deferred)
	}
	if res := processIn(t, r, "b", tick(time.Hour+16*time.Minute)); len(res.Deferred) != 1 || !slices.Equal(res.Deferred[0].Meta, inOrg("b")) {
		t.Fatalf("org B's absence: %+v", res.Deferred)
	}
}

// Threads opening, closing and firing the absences of several orgs at once
// (Benthos runs processors on several threads): every unanswered
// expectation fires exactly once, no answered one fires, and the race
// detector sees the per-org deadlines shared safely.
func TestAbsencesOfManyOrgsUnderConcurrentThreads(t *testing.T) {
	e, _ := newTestEngine(t, absenceRule)
	const orgs, users = 4, 30
	var wg sync.WaitGroup
	fired := make([]int, orgs)
	for o := range orgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			org := fmt.Sprintf("org%d", o)
			// at is the processed event's time: an absence fires once the
			// org's time is past the minute after its deadline (within 10m
			// + grace 5m), and the org's events here jump at most 5m ahead.
			run := func(at time.Duration, raw []byte) {
				res, err := e.ProcessWithMeta(raw, inOrg(org))
				if err != nil {
					t.Error(err)
				}
				for _, d := range res.Deferred {
					var opening struct {
						Published time.Time `json:"published"`
					}
					if err := json.Unmarshal(d.Out, &opening); err != nil {
						t.Error(err)
					}
					if due := opening.Published.Sub(base) + 21*time.Minute; at > due && at < time.Hour {
						t.Errorf("%s: the absence opened at %v fired at %v, later than %v", org, opening.Published.Sub(base), at, due)
					}
				}
				fired[o] += len(res.Deferred)
			}
			for u := range users {
				user := fmt.Sprintf("u%d", u)
				at := time.Duration(u) * time.Minute
				run(at, of(at, org+"-s-"+user, "start", user, nil))
				if u%2 == 0 { // every other user finishes in time
					run(at+5*time.Minute, of(at+5*time.Minute, org+"-d-"+user, "done", user, nil))
				}
			}
			run(3*time.Hour, tick(3*time.Hour))
			run(4*time.Hour, tick(4*time.Hour))
		}()
	}
	wg.Wait()
	for o, n := range fired {
		if n != users/2 {
			t.Errorf("org%d: %d absences fired, want %d (its unanswered starts, once each)", o, n, users/2)
		}
	}
}
