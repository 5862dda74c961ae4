package detect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// kindRule is a rule tagging events of one kind.
func kindRule(id, kind string) string {
	return fmt.Sprintf("// id: %s\nevent.kind == '%s'\n", id, kind)
}

// configMap lays out dir as Kubernetes mounts a ConfigMap volume: the
// files in a `..<timestamp>` directory, `..data` linking to it, and each
// key a symlink through `..data`. Called again, it makes the atomic update
// the kubelet makes: a new timestamped directory, `..data` swapped by
// renaming a new symlink over it, new keys linked, the old directory gone.
func configMap(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	version := filepath.Join(dir, "..2026_12_06_"+stamp)
	must(t, os.MkdirAll(version, 0o755))
	for name, src := range files {
		must(t, os.WriteFile(filepath.Join(version, name), []byte(src), 0o644))
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	must(t, os.Symlink(filepath.Base(version), filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			must(t, os.Symlink(filepath.Join("..data", name), link))
		}
	}
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// watchedEngine runs a Reloader over paths and records its reloads and
// errors; the reloader stops when the test ends.
type watchedEngine struct {
	*Engine
	mu      sync.Mutex
	reloads int
	errs    []error
}

func startWatched(t *testing.T, paths ...string) *watchedEngine {
	t.Helper()
	rs, err := LoadPaths(paths, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	w := &watchedEngine{Engine: NewEngine(rs, EngineOptions{})}
	rl, err := NewReloader(w.Engine, RuleSources{Paths: paths}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning},
		func([]string) { w.mu.Lock(); w.reloads++; w.mu.Unlock() },
		func(err error) { w.mu.Lock(); w.errs = append(w.errs, err); w.mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { rl.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return w
}

// waitTagged waits until an event of kind is tagged by rule id.
func (w *watchedEngine) waitTagged(t *testing.T, kind, id string) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("an event of kind %s tagged %s", kind, id), func() (bool, string) {
		res := process(t, w.Engine, ev(0, map[string]any{"kind": kind}))
		w.mu.Lock()
		defer w.mu.Unlock()
		return detOf(res, id) != nil, fmt.Sprintf("rules %v, %d reloads, errors %v", w.RuleIDs(), w.reloads, w.errs)
	})
}

func (w *watchedEngine) waitError(t *testing.T, want ...string) error {
	t.Helper()
	var found error
	testkit.Until(t, fmt.Sprintf("a reload error saying %q", want), func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, err := range w.errs {
			if containsAll(err.Error(), want...) {
				found = err
				return true, ""
			}
		}
		return false, fmt.Sprintf("errors %v", w.errs)
	})
	return found
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// A rules directory mounted from a ConfigMap starts (each rule once, not
// also through `..data` and the timestamped directory), and the kubelet's
// atomic `..data` swap is picked up by hot reload: the new rule tags events.
func TestConfigMapRulesLoadAndHotReload(t *testing.T) {
	dir := t.TempDir()
	configMap(t, dir, "01_02_03.123", map[string]string{"a.cel": kindRule("A", "a"), "b.cel": kindRule("B", "b")})
	w := startWatched(t, dir)
	if got := w.RuleIDs(); len(got) != 2 {
		t.Fatalf("rules %v, want A and B once each", got)
	}
	w.waitTagged(t, "a", "A")

	started := time.Now()
	configMap(t, dir, "01_05_00.456", map[string]string{"a.cel": kindRule("A", "a2"), "b.cel": kindRule("B", "b"), "c.cel": kindRule("C", "c")})
	w.waitTagged(t, "a2", "A")
	t.Logf("..data swap picked up in %v", time.Since(started).Round(time.Millisecond))
	w.waitTagged(t, "c", "C")
	if got := w.RuleIDs(); len(got) != 3 {
		t.Fatalf("rules after the swap %v, want A, B, C", got)
	}
	// The same layout through a glob.
	if rs, err := LoadPaths([]string{filepath.Join(dir, "*")}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning}); err != nil || len(rs.IDs()) != 3 {
		t.Fatalf("glob over the ConfigMap: %v, %v", rs, err)
	}
}

// A rule file that is a device or a FIFO is refused with an error naming
// it, at start and at reload, and never hangs: /dev/zero never ends (it
// used to exhaust memory), a FIFO blocks its reader until someone writes
// (it used to stop hot reload and block shutdown). After the bad file is
// gone, hot reload works again.
func TestSpecialRuleFilesRefused(t *testing.T) {
	for _, kind := range []string{"device", "FIFO"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, "good.cel"), []byte(kindRule("G", "g")), 0o644))
			bad := filepath.Join(dir, "bad.cel")
			makeBad := func() {
				if kind == "device" {
					must(t, os.Symlink("/dev/zero", bad))
				} else {
					must(t, syscall.Mkfifo(bad, 0o644))
				}
			}
			makeBad()
			loaded := make(chan error, 1)
			go func() {
				_, err := LoadPaths([]string{dir}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
				loaded <- err
			}()
			var err error
			testkit.Until(t, "loading the rules to end", func() (bool, string) {
				select {
				case err = <-loaded:
					return true, ""
				default:
					return false, "still loading"
				}
			})
			if err == nil || !containsAll(err.Error(), bad, "not a regular file", kind) {
				t.Fatalf("start with %s: error %v, want one naming %s", kind, err, bad)
			}

			must(t, os.Remove(bad))
			w := startWatched(t, dir)
			makeBad()
			w.waitError(t, bad, "not a regular file")
			w.waitTagged(t, "g", "G") // the previous set keeps running
			must(t, os.Remove(bad))
			must(t, os.WriteFile(filepath.Join(dir, "new.cel"), []byte(kindRule("N", "n")), 0o644))
			w.waitTagged(t, "n", "N")
		})
	}
}

// A rule file over MaxRuleFileBytes is refused, naming it, its size and
// the limit.
func TestOversizedRuleFileRefused(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.cel")
	src := kindRule("Big", "x") + "// " + strings.Repeat("x", MaxRuleFileBytes) + "\n"
	must(t, os.WriteFile(big, []byte(src), 0o644))
	_, err := LoadPaths([]string{dir}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	want := []string{big, fmt.Sprint(len(src)), fmt.Sprint(MaxRuleFileBytes)}
	if err == nil || !containsAll(err.Error(), want...) {
		t.Fatalf("error %v, want one naming %v", err, want)
	}
}

// A rules directory deleted (the previous set keeps running, the error is
// reported) and created again, or replaced by renaming another directory
// over it, is watched again: later edits are picked up.
func TestReplacedRulesDirectoryStillWatched(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules")
	must(t, os.Mkdir(rules, 0o755))
	must(t, os.WriteFile(filepath.Join(rules, "a.cel"), []byte(kindRule("A", "a")), 0o644))
	w := startWatched(t, rules)

	must(t, os.RemoveAll(rules))
	w.waitError(t, "rules not reloaded", rules)
	w.waitTagged(t, "a", "A")
	must(t, os.Mkdir(rules, 0o755))
	must(t, os.WriteFile(filepath.Join(rules, "b.cel"), []byte(kindRule("B", "b")), 0o644))
	w.waitTagged(t, "b", "B")
	must(t, os.WriteFile(filepath.Join(rules, "b.cel"), []byte(kindRule("B", "b2")), 0o644))
	w.waitTagged(t, "b2", "B")

	next := rules + ".next"
	must(t, os.Mkdir(next, 0o755))
	must(t, os.WriteFile(filepath.Join(next, "c.cel"), []byte(kindRule("C", "c")), 0o644))
	must(t, os.Rename(rules, rules+".old"))
	must(t, os.Rename(next, rules))
	w.waitTagged(t, "c", "C")
	must(t, os.WriteFile(filepath.Join(rules, "c.cel"), []byte(kindRule("C", "c2")), 0o644))
	w.waitTagged(t, "c2", "C")
}

// blockingSwapper never finishes a swap until released: a reload stuck
// (as on a stalled mount) must not hold up shutdown.
type blockingSwapper struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSwapper) Swap(*RuleSet) {
	close(b.entered)
	<-b.release
}

func TestReloaderShutdownBoundedDuringReload(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.cel"), []byte(kindRule("A", "a")), 0o644))
	sw := &blockingSwapper{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(sw.release)
	rl, err := NewReloader(sw, RuleSources{Paths: []string{dir}}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning}, func([]string) {}, func(error) {})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { rl.Run(ctx); close(stopped) }()
	must(t, os.WriteFile(filepath.Join(dir, "a.cel"), []byte(kindRule("A", "a2")), 0o644))
	testkit.Until(t, "a reload in progress", func() (bool, string) {
		select {
		case <-sw.entered:
			return true, ""
		default:
			return false, "no reload yet"
		}
	})
	cancel()
	testkit.Until(t, "the reloader to stop while its reload is stuck", func() (bool, string) {
		select {
		case <-stopped:
			return true, ""
		default:
			return false, "still running"
		}
	})
}
