package ruletest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/oktadetect/oktadetect/internal/detect"
)

// TestFile is a rule's <name>.test.yaml.
type TestFile struct {
	Tests []TestCase `yaml:"tests"`
}

// TestCase is one named case: a single event, or a sequence of events fed
// in order to one engine (for threshold, dedup and previous rules).
type TestCase struct {
	Name     string     `yaml:"name"`
	Event    any        `yaml:"event"`
	Expect   *Expect    `yaml:"expect"`
	Sequence []TestStep `yaml:"sequence"`
}

// TestStep is one event of a sequence and what it must give.
type TestStep struct {
	Event  any     `yaml:"event"`
	Expect *Expect `yaml:"expect"`
	// Deferred: the absence emitted after this event (its time made it
	// due); false: none. Unset: none may be emitted either.
	Deferred *Expect `yaml:"deferred"`
}

// Expect is either a bare bool (tagged or not) or a mapping checking
// fields of the detection; unset fields are not checked.
type Expect struct {
	Match    bool    `yaml:"match"`
	Title    *string `yaml:"title"`
	Severity *string `yaml:"severity"`
	Count    *int    `yaml:"count"`
	Dedup    *string `yaml:"dedup"`
	Context  any     `yaml:"context"`
	// Values: a distinct count's values, exactly (sorted).
	Values []string `yaml:"values"`
	// Sequence: a sequence's uuids in time order, exactly.
	Sequence []string `yaml:"sequence"`
	// EventUUID: the uuid of the event carrying the detection (for a
	// deferred absence, the event that opened it).
	EventUUID *string `yaml:"event_uuid"`
	// SameAlertAs: the 1-based sequence step whose alert_id this one shares.
	SameAlertAs int `yaml:"same_alert_as"`
	// NewAlert: the alert_id differs from every earlier step's.
	NewAlert bool `yaml:"new_alert"`
	// Error: the rule fails on this event (`expect: error`); a rule error
	// anywhere else fails the case.
	Error bool `yaml:"error"`
}

// UnmarshalYAML accepts `expect: true|false|error` as well as the mapping
// form.
func (e *Expect) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "error" {
			e.Error = true
			return nil
		}
		if err := n.Decode(&e.Match); err != nil {
			return fmt.Errorf("line %d: expect must be true, false, error or a mapping, not %q", n.Line, n.Value)
		}
		return nil
	}
	if err := knownKeys(n, reflect.TypeFor[Expect]()); err != nil {
		return err
	}
	type plain Expect
	return n.Decode((*plain)(e))
}

// knownKeys refuses a mapping key that is not a yaml tag of t: Node.Decode
// inside UnmarshalYAML does not inherit the decoder's KnownFields.
func knownKeys(n *yaml.Node, t reflect.Type) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	known := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		known[name] = true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			return fmt.Errorf("line %d: field %s not found in type ruletest.Expect", k.Line, k.Value)
		}
	}
	return nil
}

// Status is a case's outcome.
type Status string

const (
	Pass Status = "ok"
	Fail Status = "FAIL"
)

// Result is one case's outcome; a problem with a whole rule file (it does
// not compile, has no tests, its tests do not parse) is a failed result
// without a case name.
type Result struct {
	Rule    string `json:"rule,omitempty"`
	File    string `json:"file"`
	Case    string `json:"case,omitempty"`
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Results        []Result `json:"results"`
	Passed, Failed int
}

// OK says whether every case passed.
func (r *Report) OK() bool { return r.Failed == 0 }

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	if res.Status == Pass {
		r.Passed++
	} else {
		r.Failed++
	}
}

// Run runs the tests of the rules at paths (files, directories, globs). A
// path that does not exist, or paths holding no rule, are errors.
func Run(paths []string, opts detect.CompileOptions) (*Report, error) {
	rules, compileErrs, err := detect.TestableRules(paths, opts)
	if err != nil {
		return nil, err
	}
	return runAll(rules, compileErrs)
}

// RunFS is Run for rules in a file system (the embedded pack).
func RunFS(fsys fs.FS, root string, opts detect.CompileOptions) (*Report, error) {
	rules, compileErrs, err := detect.TestableRulesFS(fsys, root, opts)
	if err != nil {
		return nil, err
	}
	return runAll(rules, compileErrs)
}

func runAll(rules []detect.TestableRule, compileErrs []error) (*Report, error) {
	if len(rules) == 0 && len(compileErrs) == 0 {
		return nil, errors.New("no rule files (*.cel) found: give the files, directories or globs holding your rules")
	}
	rep := &Report{}
	for _, e := range compileErrs {
		rep.add(Result{File: fileOf(e), Status: Fail, Message: e.Error()})
	}
	for _, r := range rules {
		runFileTests(rep, r)
	}
	return rep, nil
}

// fileOf is the file a compile error names ("file: …").
func fileOf(err error) string {
	var pe *detect.PosError
	if errors.As(err, &pe) {
		return pe.Path
	}
	f, _, _ := strings.Cut(err.Error(), ":")
	return f
}

func runFileTests(rep *Report, rule detect.TestableRule) {
	fail := func(msg string) { rep.add(Result{Rule: rule.ID, File: rule.Path, Status: Fail, Message: msg}) }
	data, err := rule.ReadTest()
	if errors.Is(err, fs.ErrNotExist) {
		fail("no tests: add " + testFileName(rule.Path) + " beside the rule with at least one case")
		return
	}
	if err != nil {
		fail(fmt.Sprintf("reading tests: %v", err))
		return
	}
	tf, err := parseTestFile(data)
	if err != nil {
		fail(fmt.Sprintf("parsing %s: %v", testFileName(rule.Path), err))
		return
	}
	if len(tf.Tests) == 0 {
		fail(testFileName(rule.Path) + " has no cases under `tests:`")
		return
	}
	for i, tc := range tf.Tests {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		res := Result{Rule: rule.ID, File: rule.Path, Case: name, Status: Pass}
		if msg := runCase(rule.Rules, tc); msg != "" {
			res.Status, res.Message = Fail, msg
		}
		rep.add(res)
	}
}

func testFileName(rulePath string) string {
	return path.Base(strings.TrimSuffix(rulePath, detect.RuleExt) + detect.TestExt)
}

// parseTestFile decodes a test file strictly: an unknown key (`expected:`
// for `expect:`) is an error, not a case that checks nothing.
func parseTestFile(data []byte) (*TestFile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var tf TestFile
	if err := dec.Decode(&tf); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &tf, nil
}

// runCase runs a case against a fresh engine holding only its rule, and
// returns why it failed, or "".
func runCase(rs *detect.RuleSet, tc TestCase) string {
	steps := tc.Sequence
	if tc.Event != nil {
		steps = append([]TestStep{{Event: tc.Event, Expect: tc.Expect}}, steps...)
	}
	if len(steps) == 0 {
		return "case has no event and no sequence"
	}
	if msg := checkExpectations(tc, steps); msg != "" {
		return msg
	}
	var lastErr error
	eng := detect.NewEngine(rs, detect.EngineOptions{Hooks: detect.Hooks{RuleError: func(_ string, err error) { lastErr = err }}})
	var ids []string
	for i, st := range steps {
		raw, err := json.Marshal(st.Event)
		if err != nil {
			return fmt.Sprintf("step %d: encoding event: %v", i+1, err)
		}
		lastErr = nil
		res, err := eng.Process(raw)
		if err != nil {
			return fmt.Sprintf("step %d: %v", i+1, err)
		}
		var det *detect.Detection
		if len(res.Detections) > 0 {
			det = &res.Detections[0]
			ids = append(ids, det.AlertID)
		} else {
			ids = append(ids, "")
		}
		msg := checkStepError(st.Expect, lastErr)
		if msg == "" {
			msg = checkDeferred(st.Deferred, res.Deferred)
		}
		if msg == "" && st.Expect != nil && !st.Expect.Error {
			msg = checkExpect(*st.Expect, det, res.Out, ids, lastErr)
		}
		if msg != "" {
			if len(steps) > 1 {
				return fmt.Sprintf("step %d: %s", i+1, msg)
			}
			return msg
		}
	}
	return ""
}

// checkExpectations: a single event must say what it expects, and a
// sequence must check at least one step; a case that checks nothing passes
// whatever the rule does.
func checkExpectations(tc TestCase, steps []TestStep) string {
	if tc.Event != nil && tc.Expect == nil {
		return "case has no `expect:` (true, false, error, or a mapping with match: …)"
	}
	for _, st := range steps {
		if st.Expect != nil || st.Deferred != nil {
			return ""
		}
	}
	return "no step of the sequence has an `expect:` (or a `deferred:`)"
}

// checkStepError fails a step whose rule errored unless it expects the
// error, and one that expects an error that did not come.
func checkStepError(want *Expect, evalErr error) string {
	switch {
	case evalErr != nil && (want == nil || !want.Error):
		return fmt.Sprintf("the rule failed on this event: %v (fix the rule, or say `expect: error` if failing is right)", evalErr)
	case evalErr == nil && want != nil && want.Error:
		return "expected the rule to fail on this event (`expect: error`), it did not"
	}
	return ""
}

// checkDeferred checks the absences emitted after a step: none unless the
// step expects one, exactly one when it does.
func checkDeferred(want *Expect, got []detect.Deferred) string {
	switch {
	case len(got) == 0 && (want == nil || !want.Match):
		return ""
	case len(got) == 0:
		return "deferred: expected an absence, none was emitted (an absence fires after the first event of its org published at or after the first whole minute past the opening's time + within + grace, when no closing event came)"
	case want == nil || !want.Match:
		return fmt.Sprintf("deferred: unexpected absence %q emitted", got[0].Detections[0].Title)
	case len(got) > 1:
		return fmt.Sprintf("deferred: %d absences emitted, want 1", len(got))
	}
	if msg := checkExpect(*want, &got[0].Detections[0], got[0].Out, nil, nil); msg != "" {
		return "deferred: " + msg
	}
	return ""
}

// checkExpect checks a detection against want; out is the message carrying
// it, ids the alert ids of the steps so far (nil: not a step's own tag).
func checkExpect(want Expect, got *detect.Detection, out []byte, ids []string, evalErr error) string {
	if got == nil {
		if want.Match {
			if evalErr != nil {
				return fmt.Sprintf("expected a match, got an evaluation error: %v", evalErr)
			}
			return "expected a match, got none"
		}
		return ""
	}
	if !want.Match {
		return fmt.Sprintf("expected no match, got %q", got.Title)
	}
	switch {
	case want.Title != nil && *want.Title != got.Title:
		return fmt.Sprintf("title: want %q, got %q", *want.Title, got.Title)
	case want.Severity != nil && *want.Severity != got.Severity:
		return fmt.Sprintf("severity: want %s, got %s", *want.Severity, got.Severity)
	case want.Count != nil && *want.Count != got.Count:
		return fmt.Sprintf("count: want %d, got %d", *want.Count, got.Count)
	case want.Dedup != nil && *want.Dedup != got.Dedup:
		return fmt.Sprintf("dedup: want %q, got %q", *want.Dedup, got.Dedup)
	}
	if want.Context != nil && !jsonSubset(want.Context, got.Context) {
		return fmt.Sprintf("context: want %v, got %v", want.Context, got.Context)
	}
	if want.Values != nil && !slices.Equal(want.Values, got.Values) {
		return fmt.Sprintf("values: want %q, got %q", want.Values, got.Values)
	}
	if want.Sequence != nil && !slices.Equal(want.Sequence, got.Sequence) {
		return fmt.Sprintf("sequence: want %q, got %q", want.Sequence, got.Sequence)
	}
	if want.EventUUID != nil {
		var ev struct {
			UUID string `json:"uuid"`
		}
		if _ = json.Unmarshal(out, &ev); ev.UUID != *want.EventUUID {
			return fmt.Sprintf("event_uuid: want %q, got %q", *want.EventUUID, ev.UUID)
		}
	}
	if ids == nil {
		return ""
	}
	cur := ids[len(ids)-1]
	if s := want.SameAlertAs; s > 0 {
		if s > len(ids)-1 || ids[s-1] != cur {
			return fmt.Sprintf("alert_id: want the alert of step %d", s)
		}
	}
	if want.NewAlert {
		for _, id := range ids[:len(ids)-1] {
			if id == cur {
				return "alert_id: want a new alert, got an earlier one"
			}
		}
	}
	return ""
}

// jsonSubset reports whether every field of want is in got with an equal
// value, comparing both as JSON.
func jsonSubset(want, got any) bool {
	norm := func(v any) any {
		b, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(b, &out)
		return out
	}
	w, g := norm(want), norm(got)
	wm, ok := w.(map[string]any)
	if !ok {
		return reflect.DeepEqual(w, g)
	}
	gm, ok := g.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range wm {
		if !jsonSubset(v, gm[k]) {
			return false
		}
	}
	return true
}
