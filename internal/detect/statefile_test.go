package detect

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func trackingEngine(t *testing.T, srcs ...string) *Engine {
	t.Helper()
	return NewEngine(compileRules(t, srcs...), EngineOptions{TrackChanges: true})
}

func openStateFile(t *testing.T, path string, e *Engine) (*StateFile, int) {
	t.Helper()
	f, _, replayed, err := OpenStateFile(path, e)
	if err != nil {
		t.Fatal(err)
	}
	return f, replayed
}

// A crash after a commit and before any snapshot loses nothing the
// journal holds: the next process goes on counting from there.
func TestStateFileJournalSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := trackingEngine(t, thresholdRule, previousRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	process(t, e, login(0, "bob", "Paris"))
	must(t, f.Commit())
	process(t, e, fail(time.Second, "ann"))
	must(t, f.Commit())
	// crash: no Close, no snapshot

	e2 := trackingEngine(t, thresholdRule, previousRule)
	_, replayed := openStateFile(t, path, e2)
	if replayed != 2 {
		t.Fatalf("%d commits replayed, want 2", replayed)
	}
	if d := detOf(process(t, e2, fail(2*time.Second, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("third failure after the crash: %+v, want the threshold counting 3", d)
	}
	if d := detOf(process(t, e2, login(time.Hour, "bob", "Rome")), "P"); d == nil {
		t.Fatal("remembered city lost over the crash")
	}
}

// Snapshot, then more commits, then a crash: the snapshot plus the later
// commits; and a crash between writing a snapshot and dropping the
// journals it covers replays nothing twice.
func TestStateFileSnapshotAndLaterCommits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	e := trackingEngine(t, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	must(t, f.Commit())
	old, err := os.ReadFile(f.journalPath(1))
	must(t, err)
	must(t, f.Snapshot())
	process(t, e, fail(time.Second, "ann"))
	must(t, f.Commit())
	// The covered journal comes back, as if the crash came before its removal.
	must(t, os.WriteFile(f.journalPath(1), old, 0o600))

	e2 := trackingEngine(t, thresholdRule)
	_, replayed := openStateFile(t, path, e2)
	if replayed != 1 {
		t.Fatalf("%d commits replayed over the snapshot, want only the later one", replayed)
	}
	if d := detOf(process(t, e2, fail(2*time.Second, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("third failure: %+v", d)
	}
}

// A commit torn by a crash while appending ends the journal: the commits
// before it are replayed, the torn one is not, and nothing fails.
func TestStateFileTornCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := trackingEngine(t, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	must(t, f.Commit())
	process(t, e, fail(time.Second, "ann"))
	must(t, f.Commit())
	jp := f.journalPath(1)
	info, err := os.Stat(jp)
	must(t, err)
	must(t, os.Truncate(jp, info.Size()-3))

	e2 := trackingEngine(t, thresholdRule)
	_, replayed := openStateFile(t, path, e2)
	if replayed != 1 {
		t.Fatalf("%d commits replayed, want the whole one", replayed)
	}
	if d := detOf(process(t, e2, fail(2*time.Second, "ann")), "T"); d != nil {
		t.Fatalf("the torn commit's failure was counted: %+v", d)
	}
}

// A crash tearing the first commit of a journal, then a restart: the new
// process's commits are not appended after the torn bytes (where a later
// restore would stop reading), and a second crash loses none of them.
func TestStateFileTornFirstCommitThenRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := trackingEngine(t, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	must(t, f.Commit())
	must(t, f.Snapshot()) // journal 2 is next
	process(t, e, fail(time.Second, "ann"))
	must(t, f.Commit())
	jp := f.journalPath(2)
	info, err := os.Stat(jp)
	must(t, err)
	must(t, os.Truncate(jp, info.Size()-3)) // the crash tore journal 2's first commit

	e2 := trackingEngine(t, thresholdRule)
	f2, _ := openStateFile(t, path, e2)
	process(t, e2, fail(2*time.Second, "ann"))
	must(t, f2.Commit())
	// crash again

	e3 := trackingEngine(t, thresholdRule)
	openStateFile(t, path, e3)
	// ann's failures: at 0 (snapshot), 1s (torn: lost, and never
	// acknowledged), 2s (committed between the crashes), 3s.
	if d := detOf(process(t, e3, fail(3*time.Second, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("after two crashes: %+v, want the commit made between them counted (3 failures)", d)
	}
}

// A commit that fails (a disk full, an I/O error) keeps its changes: the
// next commit writes them, after cutting off whatever part of the failed one
// reached the file, and a restart restores every change.
func TestStateFileFailedCommitIsWrittenByTheNext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := trackingEngine(t, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	must(t, f.Commit())
	good, err := os.Stat(f.journalPath(1))
	must(t, err)
	// The disk fails: the buffered commit reaches the file in part, then
	// writing fails.
	process(t, e, fail(time.Second, "ann"))
	must(t, f.cur.f.Close())
	if err := f.Commit(); err == nil {
		t.Fatal("a commit to a closed journal succeeded")
	}
	// The disk is back; ann fails again, and this commit carries both.
	reopened, err := os.OpenFile(f.journalPath(1), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = reopened.WriteString("torn bytes of the failed commit")
	must(t, err)
	f.cur.f = reopened
	process(t, e, fail(2*time.Second, "bob"))
	must(t, f.Commit())
	if info, err := os.Stat(f.journalPath(1)); err != nil || info.Size() <= good.Size() {
		t.Fatalf("journal %v after the second commit (was %d bytes): %v", info.Size(), good.Size(), err)
	}
	// crash
	e2 := trackingEngine(t, thresholdRule)
	_, replayed := openStateFile(t, path, e2)
	if replayed != 2 {
		t.Fatalf("%d commits replayed, want 2 (the failed one went with the next)", replayed)
	}
	if d := detOf(process(t, e2, fail(3*time.Second, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("third failure of ann: %+v, want the failed commit's failure counted", d)
	}
}

// Expired state is journaled as deletions: a restore does not bring it back.
func TestStateFileJournalsDeletions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := trackingEngine(t, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	must(t, f.Snapshot())
	process(t, e, ev(5*time.Hour, map[string]any{"kind": "other"}))
	e.Expire()
	must(t, f.Commit())

	e2 := trackingEngine(t, thresholdRule)
	openStateFile(t, path, e2)
	if times, _, _ := e2.active.Load().rules[0].state.size(); times != 0 {
		t.Fatalf("%d expired threshold times restored", times)
	}
}

// Close commits and snapshots: the next start has no journal to replay.
func TestStateFileClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := trackingEngine(t, thresholdRule)
	f, _ := openStateFile(t, path, e)
	process(t, e, fail(0, "ann"))
	process(t, e, fail(time.Second, "ann"))
	must(t, f.Close())
	e2 := trackingEngine(t, thresholdRule)
	_, replayed := openStateFile(t, path, e2)
	if replayed != 0 {
		t.Fatalf("%d commits replayed after a clean close", replayed)
	}
	if d := detOf(process(t, e2, fail(2*time.Second, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("third failure: %+v", d)
	}
	if _, _, _, err := OpenStateFile(path, NewEngine(compileRules(t, thresholdRule), EngineOptions{})); err == nil {
		t.Fatal("opened with an engine that does not track changes")
	}
}
