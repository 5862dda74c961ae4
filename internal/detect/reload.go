package detect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce gathers the several writes an editor (or a Kubernetes
// volume update) makes into one reload, well within the 2 s promise.
const reloadDebounce = 250 * time.Millisecond

// ruleSwapper installs a new rule set: an Engine, or partitioned state's
// engines.
type ruleSwapper interface{ Swap(*RuleSet) }

// Reloader watches rule files on disk and swaps recompiled rule sets into
// an engine. A set that fails to compile is reported and the old one kept.
//
// It watches the directories holding the rules (recursively, following
// symlinks) and, to see a rules directory deleted and created again, their
// parents. Kubernetes updates a ConfigMap volume by swapping its `..data`
// symlink: an event in the rules directory like any other.
type Reloader struct {
	engine   ruleSwapper
	srcs     RuleSources
	opts     CompileOptions
	watcher  *fsnotify.Watcher
	onReload func(ids []string)
	onError  func(err error)

	mu      sync.Mutex
	watched map[string]bool // content directories: any event there counts
	parents map[string]bool // parents of the roots: only the roots' own events count
	roots   map[string]bool
	last    [sha256.Size]byte // the files of the set running, to skip no-op reloads
}

// NewReloader watches the directories holding paths (directories are
// watched recursively; files and globs through their parent directory, so
// that editors' rename-over-save is seen).
func NewReloader(e ruleSwapper, srcs RuleSources, opts CompileOptions, onReload func([]string), onError func(error)) (*Reloader, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("starting rule watcher: %w", err)
	}
	r := &Reloader{engine: e, srcs: srcs, opts: opts, watcher: w, onReload: onReload, onError: onError}
	if err := r.rewatch(); err != nil {
		w.Close()
		return nil, err
	}
	return r, nil
}

// watchPlan is what to watch for paths as they are on disk now.
func watchPlan(paths []string) (content, parents, roots map[string]bool) {
	content, parents, roots = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range paths {
		base := p
		for strings.ContainsAny(base, "*?[") {
			base = filepath.Dir(base)
		}
		base = filepath.Clean(base)
		roots[base] = true
		parents[filepath.Dir(base)] = true
		info, err := os.Stat(base)
		if err != nil {
			continue // gone for now: its parent shows it coming back
		}
		if !info.IsDir() {
			content[filepath.Dir(base)] = true
			continue
		}
		_ = walkRulesDir(base, info, func(name string, fi fs.FileInfo) {
			if fi.IsDir() {
				content[name] = true
			}
		})
	}
	return content, parents, roots
}

// rewatch adds watches for the directories that exist now (a watch ends
// with its directory; a recreated one needs a new watch). A directory that
// cannot be watched is an error only at start, and a parent never is (its
// watch only helps a replaced directory be seen).
func (r *Reloader) rewatch() error {
	content, parents, roots := watchPlan(r.srcs.Paths)
	have := map[string]bool{}
	for _, w := range r.watcher.WatchList() {
		have[w] = true
	}
	var firstErr error
	for _, set := range []map[string]bool{content, parents} {
		for dir := range set {
			if have[dir] {
				continue
			}
			if err := r.watcher.Add(dir); err != nil && firstErr == nil && content[dir] {
				firstErr = fmt.Errorf("watching %s: %w", dir, err)
			}
			have[dir] = true
		}
	}
	r.mu.Lock()
	r.watched, r.parents, r.roots = content, parents, roots
	r.mu.Unlock()
	return firstErr
}

// relevant: every event in a rules directory (rules, `..data` swaps,
// subdirectories); in a parent, only those of a rules path itself.
func (r *Reloader) relevant(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	name = filepath.Clean(name)
	dir := filepath.Dir(name)
	return r.watched[dir] || r.roots[name] || !r.parents[dir]
}

// Run reloads on changes until ctx is done. A reload runs beside the loop,
// so that shutdown never waits for one (a rules directory on a stalled
// network mount, a huge set compiling).
func (r *Reloader) Run(ctx context.Context) {
	defer r.watcher.Close()
	var timer <-chan time.Time
	done := make(chan struct{}, 1)
	reloading, again := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-r.watcher.Events:
			if !ok {
				return
			}
			if r.relevant(ev.Name) {
				timer = time.After(reloadDebounce)
			}
		case err, ok := <-r.watcher.Errors:
			if !ok {
				return
			}
			r.onError(fmt.Errorf("rule watcher: %w", err))
		case <-timer:
			timer = nil
			if reloading {
				again = true
				continue
			}
			reloading = true
			go func() {
				_ = r.rewatch()
				r.reload(ctx)
				done <- struct{}{}
			}()
		case <-done:
			reloading = false
			if again { // changes arrived during the reload
				again = false
				timer = time.After(0)
			}
		}
	}
}

// Reload recompiles the rules and swaps them in, or reports why not.
func (r *Reloader) Reload() { r.reload(context.Background()) }

func (r *Reloader) reload(ctx context.Context) {
	files, err := r.srcs.files()
	var rs *RuleSet
	if err == nil {
		rs, err = compileFiles(files, r.opts)
	}
	if ctx.Err() != nil {
		return // shutting down: nothing to swap into
	}
	if err != nil {
		r.onError(fmt.Errorf("rules not reloaded, the previous set keeps running: %w", err))
		return
	}
	sum := filesSum(files)
	r.mu.Lock()
	same := sum == r.last
	r.last = sum
	r.mu.Unlock()
	if same {
		return // an event that changed no rule (a test file, a touch)
	}
	r.engine.Swap(rs)
	r.onReload(rs.IDs())
}

func filesSum(files []ruleFile) [sha256.Size]byte {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%s\x00%d\x00", f.path, len(f.data))
		b.Write(f.data)
	}
	return sha256.Sum256(b.Bytes())
}
