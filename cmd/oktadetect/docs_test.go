package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The checked-in docs/components pages are what the specs render today.
func TestComponentDocsAreCurrent(t *testing.T) {
	dir := filepath.Join(repoRoot(t), docsDir)
	fresh := t.TempDir()
	if out, code := run(t, t.TempDir(), "docs", "--out", fresh); code != 0 {
		t.Fatalf("oktadetect docs: exit %d\n%s", code, out)
	}
	want, _ := filepath.Glob(filepath.Join(fresh, "*.md"))
	have, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	stale := map[string]bool{}
	for _, f := range have {
		stale[filepath.Base(f)] = true
	}
	var problems []string
	for _, f := range want {
		name := filepath.Base(f)
		delete(stale, name)
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case err != nil:
			problems = append(problems, name+" is missing")
		case !bytes.Equal(a, b):
			problems = append(problems, name+" differs from its spec")
		}
	}
	for name := range stale {
		problems = append(problems, name+" documents no registered component")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("%s is not current (%s): regenerate it from the repository root with\n\n  %s\n",
			docsDir, strings.Join(problems, "; "), docsRegenCommand)
	}
}

// ourComponents names every component registered under plugin/, so that a
// new component gets its page.
func TestOurComponentsListsEveryRegistration(t *testing.T) {
	register := regexp.MustCompile(`service\.(?:Must)?Register(Batch)?(Input|Processor|Output|Cache|MetricsExporter)\(\s*"([a-z0-9_]+)"`)
	kinds := map[string]string{"Input": "input", "Processor": "processor", "Output": "output", "Cache": "cache", "MetricsExporter": "metrics"}
	found := map[component]bool{}
	err := filepath.Walk(filepath.Join(repoRoot(t), "plugin"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range register.FindAllStringSubmatch(string(src), -1) {
			found[component{kinds[m[2]], m[3]}] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ourComponents {
		if !found[c] {
			t.Errorf("ourComponents lists %s %s, which nothing under plugin/ registers", c.kind, c.name)
		}
		delete(found, c)
	}
	for c := range found {
		t.Errorf("plugin/ registers %s %s: add it to ourComponents in cmd/oktadetect/docs.go, then run %s", c.kind, c.name, docsRegenCommand)
	}
}
