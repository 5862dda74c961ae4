package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesTestEmbeddedPack(t *testing.T) {
	var out strings.Builder
	if err := runRulesTest(nil, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok   Okta.BruteForceLogins") || !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatal(out.String())
	}
}

func TestRulesTestReportsFailures(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.cel"), []byte("// id: R\nevent.kind == 'x'\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "r.test.yaml"), []byte(`tests:
  - name: matches x
    event: {published: "2024-01-01T00:00:00Z", kind: x}
    expect: true
  - name: wrong expectation
    event: {published: "2024-01-01T00:00:00Z", kind: y}
    expect: true
`), 0o600)
	var out strings.Builder
	if err := runRulesTest([]string{dir}, &out); err == nil {
		t.Fatal("no error on a failing case")
	}
	for _, want := range []string{"ok   R: matches x", "FAIL R: wrong expectation: expected a match, got none", "1 passed, 1 failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRulesLint(t *testing.T) {
	var out, errOut strings.Builder
	if err := runRulesLint(nil, &out, &errOut); err != nil {
		t.Fatalf("embedded pack: %v\n%s", err, errOut.String())
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.cel"), []byte("// id: A\n// unknown: 1\ntrue\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "b.cel"), []byte("// id: B\n// dedup: {period: 5x}\nevent.x ==\n"), 0o600)
	errOut.Reset()
	if err := runRulesLint([]string{filepath.Join(dir, "*.cel")}, &out, &errOut); err == nil {
		t.Fatal("lint passed broken rules")
	}
	for _, want := range []string{"a.cel:2:1: header: unknown key unknown", "b.cel:2:1: header: dedup.period", "b.cel:4:1: Syntax error"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("lint output lacks %q:\n%s", want, errOut.String())
		}
	}
}

// A typo in a field name or an event type compiles (CEL cannot know) but
// never matches: lint names it, where it is, and what was meant.
func TestRulesLintChecksOktaSchemaAndEventTypes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "typo.cel"), []byte(`// id: Local.Typo
// title: "{{ event.actor.alternateID }}"
event.eventTyp == 'user.session.start' ||
event.eventType in ['user.acount.lock'] ||
event.?eventType.orValue('').startsWith('user.sesion.') ||
event.debugContext.debugData.anything == 'x' && event.target[0].alternateId == 'a'
`), 0o600)
	var out, errOut strings.Builder
	if err := runRulesLint([]string{dir}, &out, &errOut); err == nil {
		t.Fatal("lint passed a rule reading event.eventTyp")
	}
	for _, want := range []string{
		"typo.cel:3:6: event.eventTyp is not a field", "did you mean event.eventType?",
		"typo.cel:2:26: event.actor.alternateID", "did you mean event.actor.alternateId?",
		`typo.cel:4:21: "user.acount.lock" is not an event type`, `did you mean "user.account.lock"`,
		`typo.cel:5:41: no event type starts with "user.sesion."`,
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("lint output lacks %q:\n%s", want, errOut.String())
		}
	}
	if n := strings.Count(errOut.String(), "\n"); n != 4 {
		t.Errorf("%d lines, want 4 problems (debugData is free-form, target[0].alternateId exists):\n%s", n, errOut.String())
	}
}
