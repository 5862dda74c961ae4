package detect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// RuleExt and TestExt name rule files and their tests: rule.cel is tested
// by rule.test.yaml beside it.
const (
	RuleExt = ".cel"
	TestExt = ".test.yaml"
)

// ruleFile is a rule's bytes and where they came from.
type ruleFile struct {
	path string
	data []byte
	// readTest reads <name>.test.yaml beside the rule (fs.ErrNotExist if none).
	readTest func() ([]byte, error)
	// builtin: from the pack built into the binary; a rule on disk with
	// the same id replaces it.
	builtin bool
}

// MaxRuleFileBytes bounds a rule file (and its test file). Rules are a
// header and a condition, a few KiB; the bound keeps a mistaken path (a log,
// an image) from being read whole.
const MaxRuleFileBytes = 1 << 20

// findRuleFiles expands files, directories (recursively) and globs into
// rule files, sorted and without duplicates.
func findRuleFiles(paths []string) ([]ruleFile, error) {
	seen := map[string]bool{}
	var names []string
	for _, p := range paths {
		matches, err := expandPath(p)
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				names = append(names, m)
			}
		}
	}
	sort.Strings(names)
	files := make([]ruleFile, 0, len(names))
	for _, n := range names {
		data, err := readRuleFile(n)
		if err != nil {
			return nil, err
		}
		testPath := strings.TrimSuffix(n, RuleExt) + TestExt
		files = append(files, ruleFile{path: n, data: data, readTest: func() ([]byte, error) { return readRuleFile(testPath) }})
	}
	return files, nil
}

// readRuleFile reads a plain file of at most MaxRuleFileBytes. Anything
// else is refused before it is read: a device (/dev/zero never ends), a
// FIFO (a read blocks until someone writes, stalling reload and shutdown),
// a socket. The open does not block on a FIFO (O_NONBLOCK), and the checks
// are made on the opened file, so a swap after a check cannot slip through.
func readRuleFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading rule file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading rule file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("rule file %s is not a regular file (%s): rules must be plain files (symlinks to plain files are fine); remove it or point it at the rule", name, fileKind(info.Mode()))
	}
	if info.Size() > MaxRuleFileBytes {
		return nil, tooLarge(name, info.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxRuleFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading rule file %s: %w", name, err)
	}
	if len(data) > MaxRuleFileBytes { // grew while read
		return nil, tooLarge(name, int64(len(data)))
	}
	return data, nil
}

func tooLarge(name string, size int64) error {
	return fmt.Errorf("rule file %s is %d bytes, over the limit of %d bytes (1 MiB): a rule is a header and a condition; check that the path names rule files", name, size, MaxRuleFileBytes)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// hidden entries are skipped in rules directories: Kubernetes' ConfigMap
// and Secret volumes keep the real files in `..<timestamp>/` behind a
// `..data` symlink (the visible names link through it), and editors keep
// lock and swap files under dot names.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

func expandPath(p string) ([]string, error) {
	if strings.ContainsAny(p, "*?[") {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("rules glob %q: %w", p, err)
		}
		var out []string
		for _, m := range matches {
			if hidden(filepath.Base(m)) && !hidden(filepath.Base(p)) {
				continue
			}
			if sub, err := expandPath(m); err == nil {
				out = append(out, sub...)
			}
		}
		return out, nil
	}
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("rules path: %w", err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = walkRulesDir(p, info, func(name string, info fs.FileInfo) {
		if !info.IsDir() && strings.HasSuffix(name, RuleExt) {
			out = append(out, name)
		}
	})
	return out, err
}

// walkRulesDir calls visit for every entry under dir (info is dir's),
// following symlinks as a Kubernetes volume needs, skipping hidden entries,
// and visiting each directory once (a symlink loop ends there).
func walkRulesDir(dir string, info fs.FileInfo, visit func(name string, info fs.FileInfo)) error {
	var seen []fs.FileInfo
	var walk func(dir string, info fs.FileInfo) error
	walk = func(dir string, info fs.FileInfo) error {
		for _, s := range seen {
			if os.SameFile(s, info) {
				return nil
			}
		}
		seen = append(seen, info)
		visit(dir, info)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("reading rules directory %s: %w", dir, err)
		}
		for _, e := range entries {
			if hidden(e.Name()) {
				continue
			}
			name := filepath.Join(dir, e.Name())
			fi, err := os.Stat(name) // follows symlinks
			if err != nil {
				if strings.HasSuffix(name, RuleExt) {
					return fmt.Errorf("rule file %s: %w", name, err) // e.g. a dangling symlink
				}
				continue
			}
			if !fi.IsDir() {
				visit(name, fi)
			} else if err := walk(name, fi); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(dir, info)
}

// findFSRuleFiles lists every rule file under root in fsys.
func findFSRuleFiles(fsys fs.FS, root string) ([]ruleFile, error) {
	var files []ruleFile
	err := fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, RuleExt) {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		testPath := strings.TrimSuffix(name, RuleExt) + TestExt
		files = append(files, ruleFile{path: path.Clean(name), data: data, readTest: func() ([]byte, error) { return fs.ReadFile(fsys, testPath) }})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded rules: %w", err)
	}
	return files, nil
}

// compileFiles parses and compiles every file and checks the set. All
// problems are returned together, each as "file:line:col: message".
func compileFiles(files []ruleFile, opts CompileOptions) (*RuleSet, error) {
	if len(files) == 0 {
		return nil, errors.New("no rule files (*.cel) found")
	}
	var compiled []*compiledRule
	var errs []error
	for _, f := range files {
		cr, err := compileFile(f, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		compiled = append(compiled, cr)
	}
	compiled, replaced := replaceBuiltins(compiled)
	exceptions, err := opts.Tuning.tune(compiled, opts)
	if err != nil {
		errs = append(errs, err)
	}
	rs, err := NewRuleSet(compiled)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rs.exceptions, rs.lists, rs.replaced = exceptions, listsValue(opts.Tuning.Lists), replaced
	return rs, nil
}

func compileFile(f ruleFile, opts CompileOptions) (*compiledRule, error) {
	r, headerErr := ParseRule(f.path, f.data)
	if r == nil {
		return nil, headerErr
	}
	if o, ok := opts.Tuning.Overrides[r.ID]; ok {
		headerErr = errors.Join(headerErr, applyOverride(r, o))
	}
	// Compile even with header problems, so that all are reported at once.
	cr, err := Compile(r, opts)
	if err = errors.Join(headerErr, err); err != nil {
		return nil, err
	}
	cr.builtin = f.builtin
	return cr, nil
}

// RuleSources are where a rule set's files come from: the pack built into
// the binary (cel_detect's `builtin`) and files on disk.
type RuleSources struct {
	Builtin     fs.FS // nil: no built-in pack
	BuiltinRoot string
	Paths       []string // files, directories, globs
}

func (s RuleSources) files() ([]ruleFile, error) {
	var files []ruleFile
	if s.Builtin != nil {
		fsFiles, err := findFSRuleFiles(s.Builtin, s.BuiltinRoot)
		if err != nil {
			return nil, err
		}
		for i := range fsFiles {
			fsFiles[i].builtin = true
		}
		files = fsFiles
	}
	if len(s.Paths) > 0 {
		disk, err := findRuleFiles(s.Paths)
		if err != nil {
			return nil, err
		}
		files = append(files, disk...)
	}
	return files, nil
}

// Load compiles the rules of srcs. A rule on disk whose id is a built-in
// rule's replaces it (RuleSet.Replaced lists them); two rules on disk with
// one id are an error.
func Load(srcs RuleSources, opts CompileOptions) (*RuleSet, error) {
	files, err := srcs.files()
	if err != nil {
		return nil, err
	}
	return compileFiles(files, opts)
}

// replaceBuiltins drops each built-in rule that a rule on disk replaces.
func replaceBuiltins(rules []*compiledRule) ([]*compiledRule, []string) {
	local := map[string]bool{}
	for _, r := range rules {
		if !r.builtin {
			local[r.ID] = true
		}
	}
	var replaced []string
	out := rules[:0:0]
	for _, r := range rules {
		if r.builtin && local[r.ID] {
			replaced = append(replaced, r.ID)
			continue
		}
		out = append(out, r)
	}
	return out, replaced
}

// LoadPaths compiles the rules at paths (files, directories, globs).
func LoadPaths(paths []string, opts CompileOptions) (*RuleSet, error) {
	files, err := findRuleFiles(paths)
	if err != nil {
		return nil, err
	}
	return compileFiles(files, opts)
}

// LoadFS compiles every rule under root in fsys (the embedded pack).
func LoadFS(fsys fs.FS, root string, opts CompileOptions) (*RuleSet, error) {
	files, err := findFSRuleFiles(fsys, root)
	if err != nil {
		return nil, err
	}
	return compileFiles(files, opts)
}

// Lint compiles the rules at paths and returns every problem found
// (unknown header keys, bad durations, CEL errors, duplicate ids), or nil.
func Lint(paths []string, opts CompileOptions) []error {
	_, err := LoadPaths(paths, opts)
	return unjoin(err)
}

// LintFS is Lint for rules in a file system.
func LintFS(fsys fs.FS, root string, opts CompileOptions) []error {
	_, err := LoadFS(fsys, root, opts)
	return unjoin(err)
}

// unjoin flattens errors.Join trees into their leaves.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// TestableRule is one rule file compiled for its tests: the rule switched on
// whatever its `enabled` says, and its test file's bytes.
type TestableRule struct {
	ID    string
	Path  string
	Rules *RuleSet // the rule alone
	// ReadTest reads <name>.test.yaml beside the rule (fs.ErrNotExist if none).
	ReadTest func() ([]byte, error)
}

// TestableRules finds and compiles the rules at paths for their tests
// (internal/detect/ruletest). A rule that does not compile is returned with
// its error, so that one broken file does not hide the others' results.
func TestableRules(paths []string, opts CompileOptions) ([]TestableRule, []error, error) {
	files, err := findRuleFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	rules, errs := compileTestable(files, opts)
	return rules, errs, nil
}

// TestableRulesFS is TestableRules for rules in a file system.
func TestableRulesFS(fsys fs.FS, root string, opts CompileOptions) ([]TestableRule, []error, error) {
	files, err := findFSRuleFiles(fsys, root)
	if err != nil {
		return nil, nil, err
	}
	rules, errs := compileTestable(files, opts)
	return rules, errs, nil
}

func compileTestable(files []ruleFile, opts CompileOptions) ([]TestableRule, []error) {
	var out []TestableRule
	var errs []error
	for _, f := range files {
		r, err := compileFile(f, opts)
		if err != nil {
			if !strings.HasPrefix(err.Error(), f.path) {
				err = fmt.Errorf("%s: %w", f.path, err)
			}
			errs = append(errs, err)
			continue
		}
		r.Enabled = true
		rs, _ := NewRuleSet([]*compiledRule{r})
		rs.lists = listsValue(opts.Tuning.Lists)
		out = append(out, TestableRule{ID: r.ID, Path: f.path, Rules: rs, ReadTest: f.readTest})
	}
	return out, errs
}
