package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
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

// A state_file whose directory is missing: cel_detect creates it (0700) at
// start, and the snapshot lands there.
func TestStateFileDirectoryCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "oktadetect")
	path := filepath.Join(dir, "state.json")
	p := newTestProcessor(t, "state_file: "+path)
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v, err %v; want created with mode 0700", info, err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no snapshot after close: %v", err)
	}
}

// A state_file that cannot be written (its "directory" is a file, or is
// read-only) stops cel_detect at start with an error naming the directory,
// instead of events flowing while every save fails.
func TestStateFileUnwritableRefusesToStart(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(base, "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{filepath.Join(file, "sub", "state.json"): filepath.Join(file, "sub")}
	if os.Geteuid() != 0 { // root writes anywhere
		cases[filepath.Join(readOnly, "state.json")] = readOnly
	}
	for path, dir := range cases {
		conf, err := ConfigSpec().ParseYAML("state_file: "+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newProcessorFromConfig(conf, service.MockResources())
		if err == nil {
			p.Close(context.Background())
			t.Fatalf("state_file %s: cel_detect started", path)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "state_file") {
			t.Errorf("state_file %s: error %q does not name the directory %s", path, err, dir)
		}
	}
}
