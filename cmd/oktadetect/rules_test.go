package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestRulesTestEmbeddedPack(t *testing.T) {
	var out strings.Builder
	if err := runRulesTest(nil, "text", &out, &out); err != nil {
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
	if err := runRulesTest([]string{dir}, "text", &out, &out); err == nil {
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

// A rule that remembers under one key and alerts under another is legal and
// exact in one process, but not scaled out: lint warns, naming the fields
// and the fix, and still passes.
func TestRulesLintWarnsOfKeysThatDoNotFollowPreviousKey(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "travel.cel"), []byte(`// id: Local.Travel
// title: New city for a user
// previous: {key: event.actor.id, value: event.client.geographicalContext.city, ttl: 24h}
previous != null && previous != event.client.geographicalContext.city
`), 0o600)
	os.WriteFile(filepath.Join(dir, "same.cel"), []byte(`// id: Local.Same
// title: "New city for {{ event.actor.alternateId }}"
// previous: {key: "[event.?actor.?id.orValue(''), event.client.ipAddress]", value: event.client.geographicalContext.city, ttl: 24h}
// dedup: {key: "[event.actor.id, event.client.ipAddress, event.outcome.result]"}
previous != null && previous != event.client.geographicalContext.city
`), 0o600)
	var out, errOut strings.Builder
	if err := runRulesLint([]string{dir}, &out, &errOut); err != nil {
		t.Fatalf("lint failed on legal rules: %v\n%s", err, errOut.String())
	}
	want := "travel.cel:2:11: warning: the dedup key (the title, dedup.key being unset) does not read event.actor.id, which previous.key reads"
	if !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "set dedup.key to the expression of previous.key") {
		t.Errorf("lint output lacks %q and the fix:\n%s", want, errOut.String())
	}
	if strings.Contains(errOut.String(), "same.cel") || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("want one warning, for travel.cel only:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), "rules ok, 1 warning(s)") {
		t.Errorf("summary: %q", out.String())
	}
}

// The mistakes a rule author makes are loud: each one fails `rules test`
// with a line saying what is wrong.
func TestRulesTestFailsOnAuthorMistakes(t *testing.T) {
	event := `{published: "2024-01-01T00:00:00Z", eventType: user.session.start}`
	for name, c := range map[string]struct{ rule, tests, want string }{
		"typo in a field name errors on every event": {
			"// id: R\nevent.eventTyp == 'user.session.start'\n",
			"tests:\n  - name: other event\n    event: " + event + "\n    expect: false\n",
			"FAIL R: other event: the rule failed on this event: no such key: eventTyp"},
		"expected: for expect:": {
			"// id: R\nevent.eventType == 'x'\n",
			"tests:\n  - name: typo\n    event: " + event + "\n    expected: false\n",
			"field expected not found"},
		"a key misspelt inside expect": {
			"// id: R\nevent.eventType == 'x'\n",
			"tests:\n  - name: typo\n    event: " + event + "\n    expect: {mach: false}\n",
			"field mach not found"},
		"no expect": {
			"// id: R\nevent.eventType == 'x'\n",
			"tests:\n  - name: nothing checked\n    event: " + event + "\n",
			"FAIL R: nothing checked: case has no `expect:`"},
		"no test file": {
			"// id: R\nevent.eventType == 'x'\n", "",
			"no tests: add r.test.yaml beside the rule"},
		"an expected error that does not come": {
			"// id: R\nevent.eventType == 'x'\n",
			"tests:\n  - name: fine\n    event: " + event + "\n    expect: error\n",
			"expected the rule to fail on this event"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "r.cel"), []byte(c.rule), 0o600)
			if c.tests != "" {
				os.WriteFile(filepath.Join(dir, "r.test.yaml"), []byte(c.tests), 0o600)
			}
			var out strings.Builder
			if err := runRulesTest([]string{dir}, "text", &out, &out); err == nil {
				t.Fatalf("passed:\n%s", out.String())
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out.String())
			}
		})
	}
}

// `expect: error` makes a rule error the expected outcome.
func TestRulesTestExpectError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.cel"), []byte("// id: R\nevent.actor.alternateId.endsWith('@x')\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "r.test.yaml"), []byte(`tests:
  - name: no actor is an error
    event: {published: "2024-01-01T00:00:00Z"}
    expect: error
  - name: matches
    event: {published: "2024-01-01T00:00:00Z", actor: {alternateId: a@x}}
    expect: true
`), 0o600)
	var out strings.Builder
	if err := runRulesTest([]string{dir}, "text", &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "2 passed, 0 failed") {
		t.Fatal(out.String())
	}
}

// A path that does not exist, or one holding no rules, is an error that
// says so: never a silent exit 1, never a pass.
func TestRulesTestMissingPathOrEmptySet(t *testing.T) {
	for _, paths := range [][]string{{filepath.Join(t.TempDir(), "nope")}, {t.TempDir()}} {
		var out strings.Builder
		err := runRulesTest(paths, "text", &out, &out)
		if err == nil {
			t.Fatalf("%v: passed", paths)
		}
		if msg := err.Error(); !strings.Contains(msg, "rules test:") || (!strings.Contains(msg, "no rule files") && !strings.Contains(msg, "no such file")) {
			t.Errorf("%v: error %q does not say what is wrong", paths, msg)
		}
	}
}

// --json and --junit give machine-readable results with the same counts.
func TestRulesTestJSONAndJUnit(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.cel"), []byte("// id: R\nevent.kind == 'x'\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "r.test.yaml"), []byte(`tests:
  - name: matches x
    event: {published: "2024-01-01T00:00:00Z", kind: x}
    expect: true
  - name: wrong
    event: {published: "2024-01-01T00:00:00Z", kind: y}
    expect: true
`), 0o600)
	var js strings.Builder
	_ = runRulesTest([]string{dir}, "json", &js, &js)
	var rep struct {
		Results []struct{ Rule, Case, Status, Message string }
		Passed  int
		Failed  int
	}
	if err := json.Unmarshal([]byte(js.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if rep.Passed != 1 || rep.Failed != 1 || len(rep.Results) != 2 || rep.Results[1].Status != "FAIL" || rep.Results[1].Case != "wrong" {
		t.Fatalf("%+v", rep)
	}
	var ju strings.Builder
	_ = runRulesTest([]string{dir}, "junit", &ju, &ju)
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(ju.String()), &suites); err != nil {
		t.Fatalf("%v\n%s", err, ju.String())
	}
	if suites.Tests != 2 || suites.Failures != 1 || len(suites.Suites) != 1 || suites.Suites[0].Name != "R" ||
		suites.Suites[0].Cases[1].Failure == nil || !strings.Contains(suites.Suites[0].Cases[1].Failure.Message, "expected a match") {
		t.Fatalf("%+v\n%s", suites, ju.String())
	}
}

// `rules list` prints the catalogue, switched-off rules included; --json
// gives every field.
func TestRulesList(t *testing.T) {
	var out strings.Builder
	if err := runRulesList(nil, false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Okta.BruteForceLogins") || !regexp.MustCompile(`Okta\.Login\.Success\s+INFO\s+single\s+off`).MatchString(out.String()) {
		t.Fatalf("table:\n%s", out.String())
	}
	out.Reset()
	if err := runRulesList(nil, true, &out); err != nil {
		t.Fatal(err)
	}
	var cat []struct {
		ID, Severity, Kind, Version, License, File string
		Enabled                                    bool
		Mitre, Author                              []string
	}
	if err := json.Unmarshal([]byte(out.String()), &cat); err != nil {
		t.Fatal(err)
	}
	if len(cat) < 50 {
		t.Fatalf("%d rules in the catalogue", len(cat))
	}
	for _, r := range cat {
		if r.ID == "" || r.Version == "" || r.Kind == "" || r.File == "" || len(r.Mitre) == 0 || len(r.Author) == 0 || r.License == "" {
			t.Errorf("incomplete catalogue entry: %+v", r)
		}
	}
}
