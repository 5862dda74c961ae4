package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
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

// ourComponents names every component registered under plugin/ or
// internal/impl/, so that a new component gets its page.
func TestOurComponentsListsEveryRegistration(t *testing.T) {
	register := regexp.MustCompile(`service\.(?:Must)?Register(Batch)?(Input|Processor|Output|Cache|MetricsExporter)\(\s*"([a-z0-9_]+)"`)
	kinds := map[string]string{"Input": "input", "Processor": "processor", "Output": "output", "Cache": "cache", "MetricsExporter": "metrics"}
	found := map[component]bool{}
	for _, dir := range []string{"plugin", filepath.Join("internal", "impl")} {
		err := filepath.Walk(filepath.Join(repoRoot(t), dir), func(path string, info os.FileInfo, err error) error {
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
	}
	for _, c := range ourComponents {
		if !found[c] {
			t.Errorf("ourComponents lists %s %s, which nothing under plugin/ or internal/impl/ registers", c.kind, c.name)
		}
		delete(found, c)
	}
	for c := range found {
		t.Errorf("plugin/ or internal/impl/ registers %s %s: add it to ourComponents in cmd/oktadetect/docs.go, then run %s", c.kind, c.name, docsRegenCommand)
	}
}

// Every example on our components' pages passes `oktadetect lint` (its
// ${VARS} left unset), start checks included: they are what users copy. They
// run where the rule directories they name exist: the pack as ./rules/okta,
// and a rule of the user's own in ./rules/local.
func TestComponentExamplesPassLint(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join(repoRoot(t), "rules", "okta"), filepath.Join(dir, "rules", "okta"))
	writeFile(t, dir, "rules/local/own.cel", "// id: Local.Own\nevent.eventType == 'user.session.start'\n")
	for _, c := range ourComponents {
		view, ok := componentView(service.GlobalEnvironment(), c)
		if !ok {
			t.Fatalf("%s is not registered", c.name)
		}
		data, err := view.TemplateData()
		if err != nil {
			t.Fatal(err)
		}
		for i, ex := range data.Examples {
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.yaml", c.name, i))
			if err := os.WriteFile(path, []byte(ex.Config), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, code := run(t, dir, "lint", "--skip-env-var-check", path); code != 0 {
				t.Errorf("%s example %q fails lint (exit %d):\n%s\n--- example:\n%s", c.name, ex.Title, code, out, ex.Config)
			}
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
