package rules_test

import (
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/oktadetect/oktadetect/plugin/detect"
	"github.com/oktadetect/oktadetect/rules"
)

// TestDisabledRulesWhenEnabled runs <rule>.enabled-test.yaml against its
// rule switched on. Rules that ship with `enabled: false` tag nothing, so
// their <rule>.test.yaml can only show that; what they detect once a user
// enables them is tested here.
func TestDisabledRulesWhenEnabled(t *testing.T) {
	sidecars, err := fs.Glob(rules.FS, path.Join(rules.Root, "*.enabled-test.yaml"))
	if err != nil || len(sidecars) == 0 {
		t.Fatalf("no enabled-test files (%v)", err)
	}
	for _, sc := range sidecars {
		name := strings.TrimSuffix(path.Base(sc), ".enabled-test.yaml")
		t.Run(name, func(t *testing.T) {
			src, err := fs.ReadFile(rules.FS, path.Join(rules.Root, name+".cel"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), "\n// enabled: false\n") {
				t.Fatalf("%s has an enabled-test file but is not disabled", name)
			}
			tests, err := fs.ReadFile(rules.FS, sc)
			if err != nil {
				t.Fatal(err)
			}
			on := strings.Replace(string(src), "\n// enabled: false\n", "\n// enabled: true\n", 1)
			mem := fstest.MapFS{
				"r/" + name + ".cel":       {Data: []byte(on)},
				"r/" + name + ".test.yaml": {Data: tests},
			}
			var out strings.Builder
			passed, failed, err := detect.RunTestsFS(mem, "r", &out)
			if err != nil || failed > 0 || passed == 0 {
				t.Errorf("%d passed, %d failed, err %v\n%s", passed, failed, err, out.String())
			}
		})
	}
}
