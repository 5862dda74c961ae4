package detect

import (
	"strings"
	"testing"
	"time"
)

func TestCorrelationHeaders(t *testing.T) {
	r, err := ParseRule("r.cel", []byte(`// id: R
// sequence:
//   by: event.user
//   within: 10m
//   after:
//     - {when: "event.kind == 'a'"}
//     - {when: "event.kind == 'b'", count: 3}
event.kind == 'c'
`))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Sequence
	if s.By.Text != "event.user" || s.Within != 10*time.Minute || len(s.After) != 2 || s.After[0].Count != 1 || s.After[1].Count != 3 {
		t.Fatalf("%+v", s)
	}
	r, err = ParseRule("r.cel", []byte("// id: R\n// absence: {by: event.user, within: 1h, followed_by: \"event.kind == 'b'\"}\ntrue\n"))
	if err != nil || r.Absence.Grace != defaultAbsenceGrace || r.Absence.Within != time.Hour {
		t.Fatalf("%+v %v", r.Absence, err)
	}
	r, err = ParseRule("r.cel", []byte("// id: R\n// first_seen: {key: event.user, value: event.device, history: 720h}\ntrue\n"))
	if err != nil || r.FirstSeen.Learn != 0 || r.FirstSeen.History != 720*time.Hour {
		t.Fatalf("%+v %v", r.FirstSeen, err)
	}
}

func TestCorrelationHeaderErrors(t *testing.T) {
	for src, want := range map[string]string{
		"// id: X\n// threshold: {count: 2, window: 1m}\n// first_seen: {value: event.a, history: 1h}\ntrue\n": "exclusive",
		"// id: X\n// sequence: {within: 1m, after: []}\ntrue\n":                                               "sequence.after must list",
		"// id: X\n// sequence: {within: 1m, after: [{count: 0, when: 'true'}]}\ntrue\n":                       "count must be at least 1",
		"// id: X\n// sequence: {after: [{when: 'true'}]}\ntrue\n":                                             "sequence.within is required",
		"// id: X\n// first_seen: {key: event.a, history: 1h}\ntrue\n":                                         "first_seen.value is required",
		"// id: X\n// first_seen: {value: event.a}\ntrue\n":                                                    "first_seen.history is required",
		"// id: X\n// absence: {within: 1h}\ntrue\n":                                                           "absence.followed_by is required",
		"// id: X\n// absence: {within: 1h, followed_by: nope}\ntrue\n":                                        "undeclared reference to 'nope'",
		"// id: X\n// threshold: {count: 2, window: 1m, distinct: nope}\ntrue\n":                               "r.cel:2:",
	} {
		if got := strings.Join(lintSrc(src), "\n"); !strings.Contains(got, want) {
			t.Errorf("%q: got %q, want %q", src, got, want)
		}
	}
}

// Sequence steps and followed_by widen the rule's guard: an event only a
// step admits is still evaluated.
func TestIndexAdmitsStateExpressions(t *testing.T) {
	rs := compileRules(t, `// id: S
// sequence: {by: event.user, within: 1h, after: [{when: "event.eventType == 'deny'"}]}
event.eventType == 'approve'
`)
	g := ruleGuard(rs.rules[0])
	if g == nil || !g.admits("deny") || !g.admits("approve") || g.admits("other") {
		t.Fatalf("guard %+v", g)
	}
}
