package detect

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSnapshotRestoresState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e, _ := newTestEngine(t, thresholdRule, previousRule, dedupRule)
	process(t, e, fail(0, "a"))
	process(t, e, fail(time.Minute, "a"))
	process(t, e, login(0, "u", "Paris"))
	first := detOf(process(t, e, ev(0, map[string]any{"kind": "login", "user": "z"})), "D")
	if err := e.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}

	restarted, _ := newTestEngine(t, thresholdRule, previousRule, dedupRule)
	n, err := restarted.LoadSnapshot(path)
	if err != nil || n != 3 {
		t.Fatalf("restored %d, err %v", n, err)
	}
	if len(process(t, restarted, fail(2*time.Minute, "a")).Detections) != 1 {
		t.Fatal("threshold forgotten over a restart")
	}
	if d := detOf(process(t, restarted, login(time.Hour, "u", "Rome")), "P"); d == nil {
		t.Fatal("previous forgotten over a restart")
	}
	again := detOf(process(t, restarted, ev(time.Minute, map[string]any{"kind": "login", "user": "z"})), "D")
	if again.AlertID != first.AlertID {
		t.Fatal("dedup period forgotten over a restart")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestSnapshotSkipsChangedRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e, _ := newTestEngine(t, thresholdRule)
	process(t, e, fail(0, "a"))
	if err := e.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	changed, _ := newTestEngine(t, thresholdRule+"&& true\n")
	if n, err := changed.LoadSnapshot(path); n != 0 || err != nil {
		t.Fatalf("restored %d into a changed rule (err %v)", n, err)
	}
}

func TestSnapshotCorruptOrMissing(t *testing.T) {
	dir := t.TempDir()
	e, _ := newTestEngine(t, thresholdRule)
	if n, err := e.LoadSnapshot(filepath.Join(dir, "missing")); n != 0 || err != nil {
		t.Fatalf("missing file: %d %v", n, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"rules":{`), 0o600)
	if _, err := e.LoadSnapshot(bad); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
	if len(process(t, e, fail(0, "a")).Detections) != 0 {
		t.Fatal("engine unusable after a corrupt snapshot")
	}
}

// An absence restored from a snapshot fires with its rule described, as
// one that never left memory does (alerts carry the rule).
func TestRestoredAbsenceCarriesItsRule(t *testing.T) {
	rs := compileRules(t, absenceRule)
	e := NewEngine(rs, EngineOptions{})
	process(t, e, start(0, "s1"))
	restored := restoredCopy(t, e, rs)
	res := process(t, restored, tick(20*time.Minute))
	if len(res.Deferred) != 1 || len(res.Deferred[0].Detections) != 1 {
		t.Fatalf("deferred %+v, want the absence", res.Deferred)
	}
	if d := res.Deferred[0].Detections[0]; d.Rule == nil || d.Rule.ID != "AB" {
		t.Fatalf("restored absence fired without its rule: %+v", d)
	}
}
