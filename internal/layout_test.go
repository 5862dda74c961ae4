package internal_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The layout's rules (../shared/design.md, "Layout"), checked on the
// module's real import graph:
//   - engines are plain libraries: they depend on neither Benthos nor franz-go;
//   - Benthos components are thin adapters: no internal/impl package imports
//     another;
//   - tests/ holds black-box tests and benchmarks: nothing else imports it.

const module = "github.com/oktadetect/oktadetect"

// engines are the packages (and their subpackages) that must stay plain Go
// libraries. Those not written yet are checked once they exist.
var engines = []string{
	module + "/internal/detect",
	module + "/internal/okta",
	module + "/internal/jsonbytes",
	module + "/internal/oktasim",
}

var forbiddenInEngines = []string{
	"github.com/redpanda-data/benthos",
	"github.com/twmb/franz-go",
}

type listedPackage struct {
	ImportPath   string
	Deps         []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func TestEnginesDependOnNeitherBenthosNorFranzGo(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		if !under(p.ImportPath, engines) {
			continue
		}
		checked++
		for _, dep := range p.Deps {
			if under(dep, forbiddenInEngines) {
				t.Errorf("%s depends on %s: an engine is a plain library; the Benthos or Kafka side belongs in internal/impl or plugin/", p.ImportPath, dep)
				break // one line per package is enough to act on
			}
		}
	}
	if checked == 0 {
		t.Fatal("no engine package found: the list above no longer matches the tree")
	}
}

func TestImplPackagesDoNotImportEachOther(t *testing.T) {
	impl := module + "/internal/impl/"
	for _, p := range listPackages(t) {
		if !strings.HasPrefix(p.ImportPath, impl) {
			continue
		}
		own := family(p.ImportPath, impl)
		for _, imp := range allImports(p) {
			if strings.HasPrefix(imp, impl) && family(imp, impl) != own {
				t.Errorf("%s imports %s: components share code through engine packages, not through each other", p.ImportPath, imp)
			}
		}
	}
}

func TestNothingOutsideTestsImportsTests(t *testing.T) {
	tests := module + "/tests/"
	for _, p := range listPackages(t) {
		if strings.HasPrefix(p.ImportPath, tests) {
			continue
		}
		for _, imp := range allImports(p) {
			if strings.HasPrefix(imp, tests) {
				t.Errorf("%s imports %s: tests/ holds black-box tests and benchmarks only; shared code belongs in internal/", p.ImportPath, imp)
			}
		}
	}
}

// listPackages is `go list -json ./...` over the module.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("go list: %v\n%s", err, exitErr.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []listedPackage
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: not the module's tree", len(pkgs))
	}
	return pkgs
}

func allImports(p listedPackage) []string {
	return append(append(append([]string{}, p.Imports...), p.TestImports...), p.XTestImports...)
}

func under(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

// family is the component family of an internal/impl package (okta, detect…).
func family(path, impl string) string {
	rest := strings.TrimPrefix(path, impl)
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return rest
}
