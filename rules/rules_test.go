package rules_test

import (
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/ruletest"
	"github.com/oktadetect/oktadetect/internal/oktaschema"
	"github.com/oktadetect/oktadetect/plugin"
	"github.com/oktadetect/oktadetect/rules"
)

// TestRulePack runs every <rule>.test.yaml of the embedded pack, so CI
// covers `oktadetect rules test`.
// packOptions compile the pack as the binary does (plugin/plugin.go).
var packOptions = plugin.Detection.CompileOptions()

func TestRulePack(t *testing.T) {
	rep, err := ruletest.RunFS(rules.FS, rules.Root, packOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = ruletest.WriteText(&out, rep)
	t.Log("\n" + out.String())
	if !rep.OK() || rep.Passed == 0 {
		t.Fatalf("%d passed, %d failed (a rule without tests fails too)", rep.Passed, rep.Failed)
	}
}

func TestRulePackLints(t *testing.T) {
	opts := lintOptions()
	opts.Warn = func(w error) { t.Error(w) }
	for _, p := range detect.LintFS(rules.FS, rules.Root, opts) {
		t.Error(p)
	}
}

// lintOptions lint as `oktadetect rules lint` does: against Okta's schema.
func lintOptions() detect.CompileOptions {
	opts := packOptions
	opts.Vocabulary = oktaschema.Vocabulary{}
	return opts
}
