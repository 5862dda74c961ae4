package detect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce gathers the several writes an editor makes into one
// reload, well within the 2 s promise.
const reloadDebounce = 250 * time.Millisecond

// ruleSwapper installs a new rule set: an Engine, or partitioned state's
// engines.
type ruleSwapper interface{ Swap(*RuleSet) }

// Reloader watches rule files on disk and swaps recompiled rule sets into
// an engine. A set that fails to compile is reported and the old one kept.
type Reloader struct {
	engine   ruleSwapper
	paths    []string
	opts     CompileOptions
	watcher  *fsnotify.Watcher
	onReload func(ids []string)
	onError  func(err error)
}

// NewReloader watches the directories holding paths (directories are
// watched recursively; files and globs through their parent directory, so
// that editors' rename-over-save is seen).
func NewReloader(e ruleSwapper, paths []string, opts CompileOptions, onReload func([]string), onError func(error)) (*Reloader, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("starting rule watcher: %w", err)
	}
	r := &Reloader{engine: e, paths: paths, opts: opts, watcher: w, onReload: onReload, onError: onError}
	for _, dir := range watchDirs(paths) {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	return r, nil
}

func watchDirs(paths []string) []string {
	seen := map[string]bool{}
	var dirs []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, p := range paths {
		base := p
		for strings.ContainsAny(base, "*?[") {
			base = filepath.Dir(base)
		}
		info, err := os.Stat(base)
		if err != nil {
			continue
		}
		if !info.IsDir() {
			add(filepath.Dir(base))
			continue
		}
		_ = filepath.WalkDir(base, func(name string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				add(name)
			}
			return nil
		})
	}
	return dirs
}

// Run reloads on changes until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	defer r.watcher.Close()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-r.watcher.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					_ = r.watcher.Add(ev.Name)
				}
			}
			if strings.HasSuffix(ev.Name, RuleExt) {
				timer = time.After(reloadDebounce)
			}
		case err, ok := <-r.watcher.Errors:
			if !ok {
				return
			}
			r.onError(fmt.Errorf("rule watcher: %w", err))
		case <-timer:
			timer = nil
			r.Reload()
		}
	}
}

// Reload recompiles the rules and swaps them in, or reports why not.
func (r *Reloader) Reload() {
	rs, err := LoadPaths(r.paths, r.opts)
	if err != nil {
		r.onError(fmt.Errorf("rules not reloaded, the previous set keeps running: %w", err))
		return
	}
	r.engine.Swap(rs)
	r.onReload(rs.IDs())
}
