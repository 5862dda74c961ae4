package rules_test

import (
	"strings"
	"testing"

	"github.com/google/cel-go/cel"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/oktalib"
	"github.com/oktadetect/oktadetect/internal/detect/ruletest"
	"github.com/oktadetect/oktadetect/internal/oktaschema"
	"github.com/oktadetect/oktadetect/rules"
)

// TestRulePack runs every <rule>.test.yaml of the embedded pack, so CI
// covers `oktadetect rules test`.
// packOptions compile the pack as the binary does (plugin/plugin.go).
var packOptions = detect.CompileOptions{Libraries: []cel.Library{oktalib.Okta()}}

func TestRulePack(t *testing.T) {
	var out strings.Builder
	passed, failed, err := ruletest.RunTestsFS(rules.FS, rules.Root, packOptions, &out)
	t.Log("\n" + out.String())
	if err != nil || failed > 0 || passed == 0 {
		t.Fatalf("%d passed, %d failed, err %v", passed, failed, err)
	}
	if strings.Contains(out.String(), "no test file") {
		t.Error("every rule needs a test file")
	}
}

func TestRulePackLints(t *testing.T) {
	for _, p := range detect.LintFS(rules.FS, rules.Root, lintOptions()) {
		t.Error(p)
	}
}

// lintOptions lint as `oktadetect rules lint` does: against Okta's schema.
func lintOptions() detect.CompileOptions {
	opts := packOptions
	opts.Vocabulary = oktaschema.Vocabulary{}
	return opts
}
