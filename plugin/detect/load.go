package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
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
}

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
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading rule: %w", err)
		}
		testPath := strings.TrimSuffix(n, RuleExt) + TestExt
		files = append(files, ruleFile{path: n, data: data, readTest: func() ([]byte, error) { return os.ReadFile(testPath) }})
	}
	return files, nil
}

func expandPath(p string) ([]string, error) {
	if strings.ContainsAny(p, "*?[") {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("rules glob %q: %w", p, err)
		}
		var out []string
		for _, m := range matches {
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
	err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(name, RuleExt) {
			out = append(out, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking rules directory %s: %w", p, err)
	}
	return out, nil
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
	rs, err := NewRuleSet(compiled)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

func compileFile(f ruleFile, opts CompileOptions) (*compiledRule, error) {
	r, headerErr := ParseRule(f.path, f.data)
	if r == nil {
		return nil, headerErr
	}
	// Compile even with header problems, so that all are reported at once.
	cr, err := Compile(r, opts)
	if err = errors.Join(headerErr, err); err != nil {
		return nil, err
	}
	return cr, nil
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
func Lint(paths []string) []error {
	_, err := LoadPaths(paths, CompileOptions{})
	return unjoin(err)
}

// LintFS is Lint for rules in a file system.
func LintFS(fsys fs.FS, root string) []error {
	_, err := LoadFS(fsys, root, CompileOptions{})
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
