package ruletest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"slices"

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
}

// UnmarshalYAML accepts `expect: true` as well as the mapping form.
func (e *Expect) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&e.Match)
	}
	type plain Expect
	return n.Decode((*plain)(e))
}

// RunTests runs the tests of the rules at paths (files, directories, globs)
// and writes one line per case to w: "ok", "FAIL" or "?" (no test file).
func RunTests(paths []string, opts detect.CompileOptions, w io.Writer) (passed, failed int, err error) {
	rules, compileErrs, err := detect.TestableRules(paths, opts)
	if err != nil {
		return 0, 0, err
	}
	return runAll(rules, compileErrs, w)
}

// RunTestsFS is RunTests for rules in a file system (the embedded pack).
func RunTestsFS(fsys fs.FS, root string, opts detect.CompileOptions, w io.Writer) (passed, failed int, err error) {
	rules, compileErrs, err := detect.TestableRulesFS(fsys, root, opts)
	if err != nil {
		return 0, 0, err
	}
	return runAll(rules, compileErrs, w)
}

func runAll(rules []detect.TestableRule, compileErrs []error, w io.Writer) (passed, failed int, err error) {
	errs := compileErrs
	for _, e := range compileErrs {
		fmt.Fprintf(w, "FAIL %v\n", e)
		failed++
	}
	for _, r := range rules {
		p, fl, ferr := runFileTests(r, w)
		passed, failed = passed+p, failed+fl
		if ferr != nil {
			errs = append(errs, ferr)
			fmt.Fprintf(w, "FAIL %s: %v\n", r.Path, ferr)
			failed++
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed, errors.Join(errs...)
}

func runFileTests(rule detect.TestableRule, w io.Writer) (passed, failed int, err error) {
	data, err := rule.ReadTest()
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "?    %s (%s): no test file\n", rule.ID, rule.Path)
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading tests: %w", err)
	}
	var tf TestFile
	if err := yaml.Unmarshal(data, &tf); err != nil {
		return 0, 0, fmt.Errorf("parsing tests of %s: %w", rule.ID, err)
	}
	for _, tc := range tf.Tests {
		if msg := runCase(rule.Rules, tc); msg != "" {
			fmt.Fprintf(w, "FAIL %s: %s: %s\n", rule.ID, tc.Name, msg)
			failed++
			continue
		}
		fmt.Fprintf(w, "ok   %s: %s\n", rule.ID, tc.Name)
		passed++
	}
	return passed, failed, nil
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
		msg := checkDeferred(st.Deferred, res.Deferred)
		if msg == "" && st.Expect != nil {
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

// checkDeferred checks the absences emitted after a step: none unless the
// step expects one, exactly one when it does.
func checkDeferred(want *Expect, got []detect.Deferred) string {
	switch {
	case len(got) == 0 && (want == nil || !want.Match):
		return ""
	case len(got) == 0:
		return "deferred: expected an absence, none was emitted"
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
