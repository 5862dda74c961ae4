package ruletest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
)

// runDir writes rules and their tests to a directory and runs them.
func runDir(t *testing.T, files map[string]string) (string, int, int) {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Run([]string{dir}, detect.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteText(&out, rep); err != nil {
		t.Fatal(err)
	}
	return out.String(), rep.Passed, rep.Failed
}

const ev = `{"published": "2024-05-01T12:%s:00Z", "uuid": "%s", "kind": "%s", "user": "ann"}`

func event(minute, uuid, kind string) string { return fmt.Sprintf(ev, minute, uuid, kind) }

func TestDeferredValuesAndSequence(t *testing.T) {
	out, passed, failed := runDir(t, map[string]string{
		"absence.cel": detecttest.AbsenceRule,
		"absence.test.yaml": `tests:
  - name: fires after the deadline
    sequence:
      - {event: ` + event("00", "s1", "start") + `, expect: false}
      - {event: ` + event("15", "t1", "tick") + `, deferred: false}
      - event: ` + event("16", "t2", "tick") + `
        deferred: {match: true, title: ann never finished, event_uuid: s1}
  - name: unexpected absence fails
    sequence:
      - {event: ` + event("00", "s1", "start") + `, expect: false}
      - {event: ` + event("30", "t1", "tick") + `}
  - name: missing absence fails
    sequence:
      - {event: ` + event("00", "s1", "start") + `}
      - {event: ` + event("05", "d1", "done") + `}
      - {event: ` + event("30", "t1", "tick") + `, deferred: true}
`,
		"sequence.cel": detecttest.SequenceRule,
		"sequence.test.yaml": `tests:
  - name: late denial completes
    sequence:
      - {event: ` + event("05", "a", "approve") + `, expect: false}
      - {event: ` + event("01", "d1", "deny") + `, expect: false}
      - {event: ` + event("02", "d2", "deny") + `, expect: {match: true, sequence: [d1, d2, a], event_uuid: d2}}
  - name: wrong sequence fails
    sequence:
      - {event: ` + event("01", "d1", "deny") + `}
      - {event: ` + event("02", "d2", "deny") + `}
      - {event: ` + event("05", "a", "approve") + `, expect: {match: true, sequence: [d2, a]}}
`,
		"distinct.cel": detecttest.DistinctRule,
		"distinct.test.yaml": `tests:
  - name: values
    sequence:
      - {event: {published: "2024-05-01T12:00:00Z", kind: fail, ip: x, user: b}}
      - {event: {published: "2024-05-01T12:01:00Z", kind: fail, ip: x, user: a}}
      - {event: {published: "2024-05-01T12:02:00Z", kind: fail, ip: x, user: c}, expect: {match: true, count: 3, values: [a, b, c]}}
`,
	})
	if passed != 3 || failed != 3 {
		t.Fatalf("%d passed, %d failed:\n%s", passed, failed, out)
	}
	for _, want := range []string{
		"unexpected absence fails: step 2: deferred: unexpected absence \"ann never finished\" emitted",
		"missing absence fails: step 3: deferred: expected an absence, none was emitted (an absence fires after the first event of its org published at or after the first whole minute past",
		`wrong sequence fails: step 3: sequence: want ["d2" "a"], got ["d1" "d2" "a"]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
