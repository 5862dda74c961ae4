package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchRuleDir holds a rule matching failed sign-ins, one erroring on every
// sign-in (a field missing), and one whose event type never occurs.
func benchRuleDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{
		"fail.cel":  "// id: Bench.Failure\n// title: failed\n// severity: LOW\nevent.eventType == 'user.session.start' && event.outcome.result == 'FAILURE'\n",
		"error.cel": "// id: Bench.Error\n// title: broken\n// severity: LOW\nevent.eventType == 'user.session.start' && event.nothing.here == 'x'\n",
		"idle.cel":  "// id: Bench.Idle\n// title: never\n// severity: LOW\nevent.eventType == 'system.api_token.create'\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// benchEventsFile writes sign-ins, one in three failed, as JSON lines.
func benchEventsFile(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		result := "SUCCESS"
		if i%3 == 0 {
			result = "FAILURE"
		}
		fmt.Fprintf(&b, `{"uuid":"u%d","published":"2026-12-01T10:%02d:00Z","eventType":"user.session.start","outcome":{"result":%q}}`+"\n", i, i%60, result)
	}
	b.WriteString("\n") // a blank line is skipped
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A rule author's own events: each rule's calls (the events the index and
// its field guards let through), matches and errors are counted exactly; the
// rule the index skips is reported as not evaluated.
func TestRulesBenchOnOwnEvents(t *testing.T) {
	dir, events := benchRuleDir(t), benchEventsFile(t, 30)
	var out strings.Builder
	if err := runRulesBench([]string{dir}, 1000, events, true, &out); err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Events != 30 || rep.EnabledRules != 3 || rep.Source != events || rep.NsPerEvent <= 0 {
		t.Errorf("report %+v, want 30 events of %s and 3 rules", rep, events)
	}
	got := map[string]ruleCost{}
	for _, c := range rep.Rules {
		got[c.ID] = *c
	}
	if c := got["Bench.Failure"]; c.Calls != 10 || c.Matches != 10 || c.Errors != 0 || c.NsPerCall <= 0 {
		t.Errorf("Bench.Failure: %+v, want 10 calls (the guard on outcome.result skips successes), 10 matches", c)
	}
	if c := got["Bench.Error"]; c.Calls != 30 || c.Matches != 0 || c.Errors != 30 {
		t.Errorf("Bench.Error: %+v, want 30 calls, 30 errors", c)
	}
	if _, ok := got["Bench.Idle"]; ok || len(rep.Rules) != 2 {
		t.Errorf("rules evaluated: %+v, want the two sign-in rules only", rep.Rules)
	}

	out.Reset()
	if err := runRulesBench([]string{dir}, 12, events, false, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"12 events (" + events + "), 3 enabled rules", "RULE", "Bench.Failure", "1 enabled rule(s) were evaluated on none of these events"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// Without paths and --from: the embedded pack on simulated traffic, the
// costliest rule first.
func TestRulesBenchPackOnSimulatedTraffic(t *testing.T) {
	var out strings.Builder
	if err := runRulesBench(nil, 2000, "", true, &out); err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Events != 2000 || rep.EnabledRules < 50 || len(rep.Rules) < 20 {
		t.Fatalf("%d events, %d enabled rules, %d evaluated: want 2000 simulated events through the pack", rep.Events, rep.EnabledRules, len(rep.Rules))
	}
	share := 0.0
	for i, c := range rep.Rules {
		share += c.Share
		if i > 0 && c.NsPerEvent > rep.Rules[i-1].NsPerEvent {
			t.Errorf("%s (%.0f ns/event) after %s (%.0f): not costliest first", c.ID, c.NsPerEvent, rep.Rules[i-1].ID, rep.Rules[i-1].NsPerEvent)
		}
	}
	if share < 0.999 || share > 1.001 {
		t.Errorf("shares add up to %.4f, want 1", share)
	}
}

// Bad input names the problem and the fix.
func TestRulesBenchBadInput(t *testing.T) {
	dir := benchRuleDir(t)
	notJSON := filepath.Join(t.TempDir(), "export.json")
	os.WriteFile(notJSON, []byte(`{"uuid":"a","published":"2026-12-01T10:00:00Z"}`+"\n"+`[{"uuid":"b"}]`+"\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	os.WriteFile(empty, []byte("\n\n"), 0o600)
	for _, c := range []struct {
		name  string
		paths []string
		n     int
		from  string
		want  string
	}{
		{"no events", []string{dir}, 0, "", "--events 0: give 1 to 1000000"},
		{"too many", []string{dir}, 2_000_000, "", "--events 2000000: give 1 to 1000000"},
		{"missing file", []string{dir}, 10, filepath.Join(dir, "nope.jsonl"), "no such file"},
		{"a JSON array", []string{dir}, 10, notJSON, "line 2 is not a JSON object: give one event per line"},
		{"empty file", []string{dir}, 10, empty, "no events in the file"},
		{"missing rules", []string{filepath.Join(dir, "nope")}, 10, "", "rules bench:"},
	} {
		var out strings.Builder
		err := runRulesBench(c.paths, c.n, c.from, false, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}
