package detect

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// correlationRules are one rule of each kind that keeps state.
var correlationRules = []string{thresholdRule, distinctRule, sequenceRule, firstSeenRule, absenceRule}

// feedHalf gives each rule half of what it needs to alert.
func feedHalf(t testing.TB, e *Engine) {
	for _, raw := range [][]byte{
		of(0, "f1", "fail", "ann", nil), of(time.Minute, "f2", "fail", "ann", nil),
		spray(0, "s1", "a"), spray(time.Minute, "s2", "b"),
		deny(0, "d1"), deny(time.Minute, "d2"),
		loginOn(0, "l1", "mac"),
		start(0, "st1"),
	} {
		processIn(t, e, "acme", raw)
	}
}

// checkSecondHalf checks that each rule alerts as if it had seen the first
// half, and that the absence fires once.
func checkSecondHalf(t *testing.T, e *Engine) {
	t.Helper()
	for raw, id := range map[string]string{
		string(of(2*time.Minute, "f3", "fail", "ann", nil)): "T",
		string(spray(2*time.Minute, "s3", "c")):             "DC",
		string(approve(2*time.Minute, "a1")):                "SQ",
	} {
		if d := detOf(processIn(t, e, "acme", []byte(raw)), id); d == nil {
			t.Errorf("%s forgot its state", id)
		}
	}
	if res := processIn(t, e, "acme", loginOn(3*time.Minute, "l2", "mac")); len(res.Detections) != 0 {
		t.Error("first_seen forgot its history")
	}
	if res := processIn(t, e, "acme", spray(time.Minute, "s2", "b")); len(res.Detections) != 0 {
		t.Error("a re-delivered event counted again after the restore")
	}
	fired := processIn(t, e, "acme", tick(time.Hour)).Deferred
	if len(fired) != 1 || !bytes.Contains(fired[0].Out, []byte(`"uuid":"st1"`)) || fired[0].Meta[0].Value != "acme" {
		t.Errorf("absence after restore: %+v", fired)
	}
}

func TestSnapshotRestoresCorrelationState(t *testing.T) {
	e, _ := newTestEngine(t, correlationRules...)
	feedHalf(t, e)
	var buf bytes.Buffer
	if err := e.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	restarted, _ := newTestEngine(t, correlationRules...)
	if n, err := restarted.ReadSnapshot(&buf); err != nil || n != len(correlationRules) {
		t.Fatalf("restored %d rules, err %v", n, err)
	}
	checkSecondHalf(t, restarted)
}

func TestChangelogEntriesRestoreCorrelationState(t *testing.T) {
	rs := compileRules(t, correlationRules...)
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	feedHalf(t, e)
	changes, err := e.takeChanges()
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string][]byte{}
	kinds := map[byte]bool{}
	for _, c := range changes {
		entries[string(c.Key)] = c.Value
		kinds[c.Key[0]] = true
	}
	for _, k := range entryKinds {
		if k != entryPrevious && k != entryDedup && !kinds[byte(k)] { // no rule here remembers or opens single-event alerts
			t.Errorf("no %q entry written", k)
		}
	}
	restored := NewEngine(rs, EngineOptions{TrackChanges: true})
	if stale, err := restored.restoreEntries(entries); err != nil || len(stale) != 0 {
		t.Fatalf("stale %v, err %v", stale, err)
	}
	checkSecondHalf(t, restored)
}

// A version 1 snapshot (threshold times without identities) is read.
func TestSnapshotVersion1(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	fp := e.active.Load().rules[0].fingerprint
	v1 := `{"version":1,"watermark":0,"rules":{"T":{"fingerprint":"` + fp + `","threshold":{"ann":[` +
		strconv.FormatInt(base.UnixNano(), 10) + `,` + strconv.FormatInt(base.Add(time.Minute).UnixNano(), 10) + `]}}}}`
	if n, err := e.ReadSnapshot(strings.NewReader(v1)); n != 1 || err != nil {
		t.Fatalf("restored %d, err %v", n, err)
	}
	if d := detOf(process(t, e, of(2*time.Minute, "x", "fail", "ann", nil)), "T"); d == nil || d.Count != 3 {
		t.Fatalf("%+v", d)
	}
}

// Expire frees the new kinds of state once event time has moved on.
func TestExpireFreesCorrelationState(t *testing.T) {
	rs := compileRules(t, correlationRules...)
	e := NewEngine(rs, EngineOptions{MaxLateness: time.Minute})
	feedHalf(t, e)
	keys := func() map[string]int {
		out := map[string]int{}
		for _, r := range e.active.Load().rules {
			for i := range stateShards {
				out[r.ID] += r.state.threshold[i].count() + r.state.sequence[i].count() + r.state.firstSeen[i].count() + r.state.absence.shards[i].count()
			}
		}
		return out
	}
	before := keys()
	// Another org three days on sweeps none of acme's state: acme's own
	// events have not moved on.
	processIn(t, e, "globex", tick(72*time.Hour))
	e.Expire()
	if got := keys(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("another org's events swept acme's state: %v, was %v", got, before)
	}
	processIn(t, e, "acme", tick(72*time.Hour))
	e.Expire()
	for id, n := range keys() {
		if n != 0 {
			t.Errorf("%s keeps %d keys three days later", id, n)
		}
	}
}
