package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	rulePath := filepath.Join(dir, "r.cel")
	write := func(src string) {
		t.Helper()
		// Write then rename, as editors do.
		tmp := rulePath + ".swp"
		if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, rulePath); err != nil {
			t.Fatal(err)
		}
	}
	write(thresholdRule)
	write(thresholdRule)
	os.WriteFile(filepath.Join(dir, "other.cel"), []byte("// id: Other\nevent.kind == 'x'\n"), 0o600)
	rs, err := LoadPaths([]string{dir}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs, EngineOptions{})
	var mu sync.Mutex
	var reloads [][]string
	var errs []error
	rl, err := NewReloader(e, RuleSources{Paths: []string{dir}}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning},
		func(ids []string) { mu.Lock(); reloads = append(reloads, ids); mu.Unlock() },
		func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.Run(ctx)

	process(t, e, ev(0, map[string]any{"kind": "x"}))
	// A broken edit keeps the old set and reports file:line:col.
	write("// id: T\nevent.kind ==\n")
	waitFor(t, "the broken edit to be reported", func() bool { mu.Lock(); defer mu.Unlock(); return len(errs) > 0 })
	mu.Lock()
	if !strings.Contains(errs[0].Error(), "r.cel:3:1") && !strings.Contains(errs[0].Error(), "r.cel:2:") {
		t.Errorf("error without position: %v", errs[0])
	}
	mu.Unlock()
	if got := e.RuleIDs(); len(got) != 2 || got[1] != "T" {
		t.Fatalf("broken edit changed the set: %v", got)
	}
	// A good edit is swapped in. How soon is the reloader's design (an edit
	// settles for reloadDebounce, then compiles), asserted below without a
	// clock: a timed assertion would measure the machine's speed.
	write(strings.Replace(thresholdRule, "id: T", "id: T2", 1))
	waitFor(t, "the good edit to be swapped in", func() bool { mu.Lock(); defer mu.Unlock(); return len(reloads) > 0 })
	if reloadDebounce > time.Second {
		t.Fatalf("reloadDebounce %v leaves too little of the 2 s a reload is promised in", reloadDebounce)
	}
	if got := e.RuleIDs(); got[1] != "T2" {
		t.Fatalf("rules after reload: %v", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Until(t, what, func() (bool, string) { return cond(), "not yet" })
}
