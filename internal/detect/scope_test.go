package detect

import (
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
)

var of = detecttest.Of

func inOrg(org string) []MetaField { return []MetaField{{Name: "org", Value: org}} }

func processIn(t testing.TB, e *Engine, org string, raw []byte) Result {
	t.Helper()
	res, err := e.ProcessWithMeta(raw, inOrg(org))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// 3 failures in org A and 2 in org B are no brute force of 5: each org
// counts its own (here: the threshold rule's 3).
func TestOrgScopesThreshold(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	processIn(t, e, "a.okta.com", fail(0, "ann"))
	processIn(t, e, "b.okta.com", fail(time.Minute, "ann"))
	if d := detOf(processIn(t, e, "a.okta.com", fail(2*time.Minute, "ann")), "T"); d != nil {
		t.Fatalf("2 failures in org A and 1 in org B alerted: %+v", d)
	}
	if d := detOf(processIn(t, e, "a.okta.com", fail(3*time.Minute, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("third failure in org A: %+v, want count 3", d)
	}
	// The org in the event itself (rule tests write it there) scopes too.
	e2, _ := newTestEngine(t, thresholdRule)
	for i, org := range []string{"a", "b", "a"} {
		raw := ev(time.Duration(i)*time.Minute, map[string]any{"kind": "fail", "user": "ann", "oktadetect": map[string]any{"org": org}})
		if res := process(t, e2, raw); len(res.Detections) != 0 {
			t.Fatal("orgs written in the event mixed")
		}
	}
}

// One grant in two orgs: two alerts, the same dedup value.
func TestOrgScopesAlertIDs(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule)
	login := func(org string) *Detection {
		return detOf(processIn(t, e, org, ev(0, map[string]any{"kind": "login", "user": "ann"})), "D")
	}
	a, b := login("a.okta.com"), login("b.okta.com")
	if a.AlertID == b.AlertID {
		t.Fatal("two orgs share an alert id")
	}
	if a.Dedup != "ann" || b.Dedup != "ann" {
		t.Fatalf("dedup values %q, %q: the visible key is not scoped", a.Dedup, b.Dedup)
	}
	if again := login("a.okta.com"); again.AlertID != a.AlertID {
		t.Fatal("same org, same period: a new alert")
	}
	// Without an org, ids are what they were before orgs scoped them.
	unscoped := detOf(process(t, e, ev(0, map[string]any{"kind": "login", "user": "ann"})), "D")
	if unscoped.AlertID == a.AlertID || unscoped.AlertID != alertID("D", "ann", openingText(base.UnixNano()), "") {
		t.Fatalf("unscoped alert id %s", unscoped.AlertID)
	}
}

func TestOrgScopesPrevious(t *testing.T) {
	e, _ := newTestEngine(t, previousRule)
	processIn(t, e, "a.okta.com", login(0, "ann", "Paris"))
	if res := processIn(t, e, "b.okta.com", login(time.Hour, "ann", "Rome")); len(res.Detections) != 0 {
		t.Fatal("org B read org A's remembered city")
	}
	if d := detOf(processIn(t, e, "a.okta.com", login(2*time.Hour, "ann", "Oslo")), "P"); d == nil || d.Title != "ann moved from Paris to Oslo" {
		t.Fatalf("org A: %+v", d)
	}
}

// A re-delivered event (same uuid) is not counted again and is tagged as
// it was the first time.
func TestUUIDRedeliveryThreshold(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	f := func(o time.Duration, id string) []byte { return of(o, id, "fail", "ann", nil) }
	process(t, e, f(0, "u1"))
	process(t, e, f(time.Minute, "u2"))
	if res := process(t, e, f(time.Minute, "u2")); len(res.Detections) != 0 {
		t.Fatal("a re-delivered failure counted twice")
	}
	first := detOf(process(t, e, f(2*time.Minute, "u3")), "T")
	if first == nil || first.Count != 3 {
		t.Fatalf("third failure: %+v", first)
	}
	if d := detOf(process(t, e, f(3*time.Minute, "u4")), "T"); d == nil || d.Count != 4 {
		t.Fatalf("fourth failure: %+v", d)
	}
	again := detOf(process(t, e, f(2*time.Minute, "u3")), "T")
	if again == nil || again.AlertID != first.AlertID || again.Count != 3 {
		t.Fatalf("re-delivered third failure: %+v, want its first tags %+v", again, first)
	}
	if res := process(t, e, f(0, "u1")); len(res.Detections) != 0 {
		t.Fatal("a re-delivered untagged event got tagged")
	}
	// Events without a uuid are counted every time, as before.
	e2, _ := newTestEngine(t, thresholdRule)
	for i, want := range []bool{false, false, true} {
		if got := len(process(t, e2, fail(0, "bob")).Detections) > 0; got != want {
			t.Fatalf("event %d without uuid: tagged %v", i, got)
		}
	}
}

// Stateful rules open their alerts at the dedup bucket of the evidence:
// the bucket of the earliest event of the window, whichever event arrived
// last.
func TestThresholdAlertOpensAtEvidence(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	process(t, e, of(9*time.Minute, "c", "fail", "ann", nil))
	process(t, e, of(8*time.Minute, "b", "fail", "ann", nil))
	d := detOf(process(t, e, of(7*time.Minute, "a", "fail", "ann", nil)), "T")
	if d == nil || d.AlertID != alertID("T", "fails of ann", openingText(base.UnixNano()), "") {
		t.Fatalf("%+v: want the alert of the hour holding 12:07", d)
	}
}

// After a restart, a lagging org is still swept by its own event time, not
// by the orgs ahead of it: its failures from hours before the others'
// newest events still count, restored from a snapshot or from the
// changelog, as they do without a restart.
func TestRestoredLaggingOrgKeepsItsState(t *testing.T) {
	h := time.Hour
	before := func(e *Engine) {
		processIn(t, e, "b.okta.com", fail(0, "bob"))
		processIn(t, e, "b.okta.com", fail(time.Minute, "bob"))
		processIn(t, e, "a.okta.com", fail(5*h, "ann"))
	}
	after := func(e *Engine) *Detection {
		processIn(t, e, "a.okta.com", fail(5*h+10*time.Minute, "ann")) // a sweep
		return detOf(processIn(t, e, "b.okta.com", fail(2*time.Minute, "bob")), "T")
	}
	rs := compileRules(t, thresholdRule)

	control := NewEngine(rs, EngineOptions{})
	before(control)
	if d := after(control); d == nil || d.Count != 3 {
		t.Fatalf("without a restart: %+v, want bob's third failure tagged", d)
	}

	snap := NewEngine(rs, EngineOptions{})
	before(snap)
	if d := after(restoredCopy(t, snap, rs)); d == nil || d.Count != 3 {
		t.Fatalf("restored from a snapshot: %+v, want bob's third failure tagged", d)
	}

	logged := NewEngine(rs, EngineOptions{TrackChanges: true})
	restore, err := NewStateRestore(NewEngine(rs, EngineOptions{TrackChanges: true}))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		org string
		raw []byte
	}{{"b.okta.com", fail(0, "bob")}, {"b.okta.com", fail(time.Minute, "bob")}, {"a.okta.com", fail(5*h, "ann")}} {
		processIn(t, logged, x.org, x.raw)
		changes, err := logged.TakeBatchChanges()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			must(t, restore.Apply(c.Key, c.Value))
		}
	}
	if _, err := restore.Finish(); err != nil {
		t.Fatal(err)
	}
	if d := after(restore.engine); d == nil || d.Count != 3 {
		t.Fatalf("restored from the changelog: %+v, want bob's third failure tagged", d)
	}
}
