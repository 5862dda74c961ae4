package detect

import (
	"encoding/json"
	"os"
	"sort"
	"testing"

	"github.com/oktadetect/oktadetect/rules"
)

type peerCase struct {
	RuleID       string          `json:"rule_id"`
	Name         string          `json:"name"`
	Expected     bool            `json:"expected"`
	Needs        *string         `json:"needs"`
	SequenceStep int             `json:"sequence_step"`
	Event        json.RawMessage `json:"event"`
}

// TestPeerCases runs Panther's published tests for the rules of our pack.
// For threshold rules `expected` is whether the event counts toward the
// threshold, i.e. the condition; the geo sequence shares one state.
func TestPeerCases(t *testing.T) {
	data, err := os.ReadFile("testdata/peer-cases/panther-okta-tests.okta-shaped.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []peerCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*compiledRule{}
	for _, r := range rs.rules {
		byID[r.ID] = r
	}
	var sequence []peerCase
	ran := map[string]int{}
	for _, c := range cases {
		r, ours := byID[c.RuleID]
		switch {
		case !ours:
			continue
		case c.Needs != nil && *c.Needs == "sequence":
			sequence = append(sequence, c)
			continue
		case c.Needs != nil:
			t.Errorf("%s / %s needs %s: examine it", c.RuleID, c.Name, *c.Needs)
			continue
		}
		ran[c.RuleID]++
		t.Run(c.RuleID+"/"+c.Name, func(t *testing.T) {
			if got := conditionOf(t, r, c.Event); got != c.Expected {
				t.Errorf("got %v, want %v", got, c.Expected)
			}
		})
	}
	sort.Slice(sequence, func(i, j int) bool { return sequence[i].SequenceStep < sequence[j].SequenceStep })
	if len(sequence) != 3 {
		t.Fatalf("%d sequence cases, want 3", len(sequence))
	}
	one, _ := NewRuleSet([]*compiledRule{byID[sequence[0].RuleID]})
	e := NewEngine(one, EngineOptions{})
	for _, c := range sequence {
		res, err := e.Process(c.Event)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Detections) > 0; got != c.Expected {
			t.Errorf("sequence step %d %q: got %v, want %v", c.SequenceStep, c.Name, got, c.Expected)
		}
	}
	for id := range byID {
		if ran[id] == 0 {
			t.Errorf("no peer case ran for %s", id)
		}
	}
}

// conditionOf evaluates a rule alone on a fresh engine; for threshold
// rules it reports whether the event counts (the condition) by lowering
// the threshold to one.
func conditionOf(t *testing.T, r *compiledRule, raw []byte) bool {
	t.Helper()
	rr := *r
	if r.Threshold != nil {
		rule := *r.Rule
		th := *r.Threshold
		th.Count = 1
		rule.Threshold = &th
		rr.Rule = &rule
	}
	rs, _ := NewRuleSet([]*compiledRule{&rr})
	res, err := NewEngine(rs, EngineOptions{}).Process(raw)
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Detections) > 0
}
