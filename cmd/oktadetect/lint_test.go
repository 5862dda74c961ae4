package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const lintOkta = `input:
  okta_system_log:
    org_url: https://acme.okta.com
    api_token: abc
    checkpoint_cache: %s
output:
  drop: {}
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func celConfig(rules string) string {
	return "input:\n  stdin: {}\npipeline:\n  processors:\n    - label: detect\n      cel_detect:\n        rules: [ " + rules + " ]\noutput:\n  drop: {}\n"
}

// lint fails, naming the problem and the fix, on what used to fail only at
// start: an undeclared checkpoint_cache, and cel_detect rules that do not
// exist or do not compile.
func TestLintFailsOnStartChecks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "broken/bad.cel", "// id: Bad\nevent.actor.\n")
	cases := []struct{ name, conf, want string }{
		{"undeclared cache", strings.Replace(lintOkta, "%s", "okta_cursor", 1),
			`undeclared.yaml(2,1) okta_system_log: checkpoint_cache "okta_cursor" is not a cache resource: declare it under cache_resources`},
		{"cache from an unset variable's default", strings.Replace(lintOkta, "%s", "${OKTADETECT_TEST_UNSET_CACHE:cursor}", 1),
			`checkpoint_cache "cursor" is not a cache resource`},
		{"missing rule path", celConfig(filepath.Join(dir, "no-such-rules")),
			"cel_detect: rules: rules path: stat " + filepath.Join(dir, "no-such-rules") + ": no such file or directory"},
		{"rule that does not compile", celConfig(filepath.Join(dir, "broken")), "broken/bad.cel:3:1: Syntax error"},
	}
	for i, c := range cases {
		name := "undeclared.yaml"
		if i > 0 {
			name = strings.ReplaceAll(c.name, " ", "_") + ".yaml"
		}
		path := writeFile(t, dir, name, c.conf)
		out, code := run(t, dir, "lint", path)
		if code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("%s: lint exit %d, want 1 and %q:\n%s", c.name, code, c.want, out)
		}
		if i == 0 { // the config given as the root -c flag
			out, code := run(t, dir, "-c", path, "lint")
			if code != 1 || !strings.Contains(out, c.want) {
				t.Errorf("%s, -c before lint: exit %d, want 1 and %q:\n%s", c.name, code, c.want, out)
			}
		}
	}
}

// lint passes configs whose caches are declared (in the config or in a -r
// resource file) and whose rules compile, and every shipped config.
func TestLintPassesDeclaredResourcesAndShippedConfigs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "rules/ok.cel", "// id: Ok\nevent.eventType == 'user.session.start'\n")
	declared := strings.Replace(lintOkta, "%s", "okta_cursor", 1) + "cache_resources:\n  - label: okta_cursor\n    memory: {}\n"
	writeFile(t, dir, "declared.yaml", declared)
	writeFile(t, dir, "uses.yaml", strings.Replace(lintOkta, "%s", "shared_cursor", 1))
	writeFile(t, dir, "res.yaml", "cache_resources:\n  - label: shared_cursor\n    memory: {}\n")
	writeFile(t, dir, "rules.yaml", celConfig("./rules"))
	for _, args := range [][]string{
		{"lint", "declared.yaml"},
		{"lint", "-r", "res.yaml", "uses.yaml"},
		{"lint", "--resources=res.yaml", "uses.yaml"},
		{"-r", "res.yaml", "lint", "uses.yaml"},
		{"lint", "rules.yaml"},
	} {
		if out, code := run(t, dir, args...); code != 0 {
			t.Errorf("%v: exit %d:\n%s", args, code, out)
		}
	}
	root := repoRoot(t)
	shipped, err := filepath.Glob(filepath.Join(root, "config", "*.yaml"))
	if err != nil || len(shipped) == 0 {
		t.Fatalf("no shipped configs: %v", err)
	}
	if out, code := run(t, root, append([]string{"lint"}, shipped...)...); code != 0 {
		t.Errorf("shipped configs fail lint (exit %d):\n%s", code, out)
	}
	if out, code := run(t, root, "lint", "./config/..."); code != 0 {
		t.Errorf("lint ./config/...: exit %d:\n%s", code, out)
	}
}

// A cel_detect keeping state in a state_topic without pipeline.threads: 1
// is refused by lint and at start, naming the fix; with threads: 1, or with
// state kept elsewhere, it is not.
func TestStateTopicNeedsOnePipelineThread(t *testing.T) {
	dir := t.TempDir()
	conf := func(threads, state string) string {
		return "input:\n  stdin: {}\npipeline:\n" + threads + "  processors:\n    - switch:\n        - processors:\n            - cel_detect:\n" + state + "output:\n  drop: {}\n"
	}
	topic := "                state_topic:\n                  seed_brokers: [127.0.0.1:1]\n"
	cases := []struct{ name, conf, want string }{
		{"threads unset", conf("", topic), "which means one per CPU)"},
		{"threads 4", conf("  threads: 4\n", topic), "(it is 4)"},
		{"threads -1", conf("  threads: -1\n", topic), "(it is -1, which means one per CPU)"},
		{"threads 1", conf("  threads: 1\n", topic), ""},
		{"state in a file", conf("  threads: 4\n", "                state_file: "+filepath.Join(dir, "state.json")+"\n"), ""},
	}
	const fix = "cel_detect with state_topic needs pipeline.threads: 1"
	for _, c := range cases {
		path := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_")+".yaml", c.conf)
		out, code := run(t, dir, "lint", path)
		if c.want == "" {
			if code != 0 {
				t.Errorf("%s: lint exit %d:\n%s", c.name, code, out)
			}
			continue
		}
		if code != 1 || !strings.Contains(out, fix) || !strings.Contains(out, c.want) {
			t.Errorf("%s: lint exit %d, want 1 and %q:\n%s", c.name, code, c.want, out)
		}
		// At start: refused before anything connects (the broker is unreachable).
		out, code = run(t, dir, "-c", path)
		if code != 1 || !strings.Contains(out, fix) || !strings.Contains(out, c.want) {
			t.Errorf("%s: run exit %d, want 1 and %q:\n%s", c.name, code, c.want, out)
		}
	}
}
