package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func tunedRules(t *testing.T, tuning Tuning, srcs ...string) (*RuleSet, error) {
	t.Helper()
	var files []ruleFile
	for i, s := range srcs {
		files = append(files, ruleFile{path: "r" + string(rune('0'+i)) + ".cel", data: []byte(s)})
	}
	return compileFiles(files, CompileOptions{Tuning: tuning})
}

func TestTuningDisableEnable(t *testing.T) {
	rs, err := tunedRules(t, Tuning{Disable: []string{"Fam.*"}, Enable: []string{"Fam.Keep", "Off"}},
		"// id: Fam.A\ntrue\n", "// id: Fam.Keep\ntrue\n", "// id: Other\ntrue\n", "// id: Off\n// enabled: false\ntrue\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rs.IDs(), ","); got != "Fam.Keep,Off,Other" {
		t.Fatalf("enabled %s", got)
	}
	if n := len(rs.Catalogue()); n != 4 {
		t.Fatalf("catalogue holds %d rules, want all 4", n)
	}
}

// A tuning entry that matches nothing is a mistake, not a no-op.
func TestTuningNamesUnknownRules(t *testing.T) {
	for name, c := range map[string]struct {
		tuning Tuning
		want   string
	}{
		"disable":   {Tuning{Disable: []string{"Nope.*"}}, `disable: "Nope.*" matches no rule id`},
		"enable":    {Tuning{Enable: []string{"Nope"}}, `enable: "Nope" matches no rule id`},
		"override":  {Tuning{Overrides: map[string]Override{"Nope": {Severity: "HIGH"}}}, `overrides: no rule has id "Nope"`},
		"exception": {Tuning{Exceptions: []Exception{{Rules: []string{"Nope"}, When: "true"}}}, `exceptions[0].rules: "Nope" matches no rule id`},
		"bad when":  {Tuning{Exceptions: []Exception{{Rules: []string{"T"}, When: "event.a ==="}}}, "exceptions[0].when"},
		"no threshold": {Tuning{Overrides: map[string]Override{"D": {ThresholdCount: 2}}},
			"overrides[D]: threshold.count/window given, but the rule has no threshold"},
		"bad severity": {Tuning{Overrides: map[string]Override{"T": {Severity: "URGENT"}}}, `overrides[T]: severity "URGENT"`},
	} {
		_, err := tunedRules(t, c.tuning, thresholdRule, dedupRule)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

func TestTuningOverrides(t *testing.T) {
	rs, err := tunedRules(t, Tuning{Overrides: map[string]Override{
		"T": {Severity: "critical", ThresholdCount: 2, ThresholdWindow: time.Minute},
		"D": {DedupPeriod: time.Minute},
	}}, thresholdRule, dedupRule)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs, EngineOptions{})
	process(t, e, fail(0, "a"))
	d := detOf(process(t, e, fail(30*time.Second, "a")), "T")
	if d == nil || d.Count != 2 || d.Severity != "CRITICAL" {
		t.Fatalf("second failure within the overridden window: %+v", d)
	}
	process(t, e, fail(5*time.Minute, "b"))
	if d := detOf(process(t, e, fail(5*time.Minute+2*time.Minute, "b")), "T"); d != nil {
		t.Fatalf("two failures 2m apart tagged with a 1m window: %+v", d)
	}
	first := detOf(process(t, e, login(0, "c", "Paris")), "D")
	later := detOf(process(t, e, login(2*time.Minute, "c", "Paris")), "D")
	if first.AlertID == later.AlertID {
		t.Fatal("a 1m dedup period kept one alert over 2 minutes")
	}
}

// An exception keeps matching events from its rules, state included, and
// the host counts them.
func TestTuningExceptions(t *testing.T) {
	rs, err := tunedRules(t, Tuning{Exceptions: []Exception{
		{Rules: []string{"T"}, When: "event.user == 'scanner'", Reason: "our scanner"},
		{Rules: []string{"T"}, When: "event.missing.field == 'x'"}, // fails: does not apply
	}}, thresholdRule)
	if err != nil {
		t.Fatal(err)
	}
	excepted := 0
	e := NewEngine(rs, EngineOptions{Hooks: Hooks{Excepted: func(id string) { excepted++ }}})
	for i := range 5 {
		if d := detOf(process(t, e, fail(time.Duration(i)*time.Second, "scanner")), "T"); d != nil {
			t.Fatalf("excepted event %d tagged", i)
		}
	}
	if excepted != 5 {
		t.Fatalf("%d exceptions counted, want 5", excepted)
	}
	for i := range 3 {
		process(t, e, fail(time.Duration(i)*time.Second, "ann"))
	}
	if d := detOf(process(t, e, fail(3*time.Second, "ann")), "T"); d == nil || d.Count != 4 {
		t.Fatalf("other users still counted: %+v", d)
	}
}

func TestTuningLists(t *testing.T) {
	rs, err := tunedRules(t, Tuning{Lists: map[string][]string{"bad": {"Oz", "Mordor"}}},
		"// id: L\nevent.city in lists.bad\n")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs, EngineOptions{})
	if detOf(process(t, e, login(0, "a", "Mordor")), "L") == nil || detOf(process(t, e, login(0, "a", "Paris")), "L") != nil {
		t.Fatal("lists.bad not read")
	}
	// lists behaves as a map of lists of strings in every way a rule reads
	// it; a name no list has is an error.
	rs, err = tunedRules(t, Tuning{Lists: map[string][]string{"bad": {"Oz", "Mordor"}, "none": {}}},
		"// id: M\nlists.bad.size() == 2 && lists.bad[1] == 'Mordor' && 'bad' in lists && lists.size() == 2 &&\n"+
			"lists.exists(k, k == 'none') && lists.none == [] && lists.bad == ['Oz', 'Mordor'] && lists.?bad.hasValue() && !lists.?zz.hasValue()\n",
		"// id: X\nevent.city in lists.missing\n")
	if err != nil {
		t.Fatal(err)
	}
	e, rec := NewEngine(rs, EngineOptions{}), &recorder{}
	e.hooks = rec.hooks()
	if detOf(process(t, e, login(0, "a", "Oz")), "M") == nil {
		t.Fatal("lists read as a map of lists: no match")
	}
	if len(rec.errors["X"]) != 1 {
		t.Fatalf("a missing list: errors %v, want one", rec.errors)
	}
}

// `builtin` beside paths: a rule file with a built-in rule's id replaces
// it; two files on disk with one id are still an error.
func TestBuiltinReplacedByRuleOnDisk(t *testing.T) {
	pack := fstest.MapFS{
		"p/t.cel": {Data: []byte(thresholdRule)},
		"p/d.cel": {Data: []byte(dedupRule)},
	}
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "mine.cel"), []byte(strings.Replace(thresholdRule, "count: 3", "count: 2", 1)), 0o600))
	rs, err := Load(RuleSources{Builtin: pack, BuiltinRoot: "p", Paths: []string{dir}}, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rs.Replaced(), ","); got != "T" {
		t.Fatalf("replaced %q", got)
	}
	if got := strings.Join(rs.IDs(), ","); got != "D,T" {
		t.Fatalf("ids %q", got)
	}
	e := NewEngine(rs, EngineOptions{})
	process(t, e, fail(0, "a"))
	if detOf(process(t, e, fail(time.Second, "a")), "T") == nil {
		t.Fatal("the built-in T ran, not the file on disk")
	}
	must(t, os.WriteFile(filepath.Join(dir, "again.cel"), []byte(thresholdRule), 0o600))
	if _, err := Load(RuleSources{Builtin: pack, BuiltinRoot: "p", Paths: []string{dir}}, CompileOptions{}); err == nil || !strings.Contains(err.Error(), "duplicate rule id") {
		t.Fatalf("two files on disk with one id: %v", err)
	}
}

func TestTuningFirstSeenHistory(t *testing.T) {
	src := "// id: F\n// first_seen: {key: event.user, value: event.city, history: 1h}\nevent.kind == 'login'\n"
	if _, err := tunedRules(t, Tuning{Overrides: map[string]Override{"T": {FirstSeenHistory: time.Hour}}}, thresholdRule); err == nil ||
		!strings.Contains(err.Error(), "the rule has no first_seen") {
		t.Fatalf("history on a threshold rule: %v", err)
	}
	rs, err := tunedRules(t, Tuning{Overrides: map[string]Override{"F": {FirstSeenHistory: 48 * time.Hour}}}, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.rules[0].FirstSeen.History; got != 48*time.Hour {
		t.Fatalf("history %v, want the override", got)
	}
}
