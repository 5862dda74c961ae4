package oktaschema_test

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/oktaschema"
	"github.com/oktadetect/oktadetect/rules"
)

// The sample events are the shared test data beside the repository (CI has
// them there; their README asks that they not be copied in). Panther's peer
// cases are the detect engine's copy in the repository.
const (
	sampleEvents = "../../../shared/okta-sample-events/events.jsonl"
	peerCases    = "../detect/testdata/peer-cases/panther-okta-tests.okta-shaped.json"
)

// eventTypeShaped matches string literals that look like event types (or,
// ending in a dot, prefixes of them).
var (
	quoted          = regexp.MustCompile(`'([^'\\\n]*)'|"([^"\\\n]*)"`)
	eventTypeShaped = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+\.?$`)
)

// notEventTypes are literals of that shape the pack compares with other
// fields: Okta's OAuth scopes and client ids begin with "okta.", which no
// event type of the catalogue does (the test checks that too).
func notEventType(lit string) bool { return strings.HasPrefix(lit, "okta.") }

// packSources returns every rule file of the embedded pack by path.
func packSources(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(rules.FS, rules.Root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".cel") {
			return err
		}
		src, err := fs.ReadFile(rules.FS, path)
		out[path] = string(src)
		return err
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("reading the pack: %d rules, %v", len(out), err)
	}
	return out
}

// TestPackEventTypesAreCatalogued: every event-type literal in the pack is
// an event type of Okta's catalogue, and every prefix (`startsWith`)
// begins at least one.
func TestPackEventTypesAreCatalogued(t *testing.T) {
	all := oktaschema.EventTypes()
	if anyHasPrefix(all, "okta.") {
		t.Fatal(`an event type now begins with "okta.": literals of that shape can no longer be skipped`)
	}
	checked := 0
	for path, src := range packSources(t) {
		for _, m := range quoted.FindAllStringSubmatch(src, -1) {
			lit := m[1] + m[2]
			if !eventTypeShaped.MatchString(lit) || notEventType(lit) {
				continue
			}
			checked++
			if prefix, ok := strings.CutSuffix(lit, "."); ok {
				if !anyHasPrefix(all, prefix+".") {
					t.Errorf("%s: no catalogued event type starts with %q", path, lit)
				}
				continue
			}
			if !oktaschema.EventType(lit) && !oktaschema.LegacyEventType(lit) {
				t.Errorf("%s: %q is not in Okta's event-type catalogue (did you mean %q?)", path, lit, oktaschema.SuggestEventType(lit))
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d event-type literals found in the pack: the scan is broken", checked)
	}
}

func anyHasPrefix(names []string, prefix string) bool {
	i := sort.SearchStrings(names, prefix)
	return i < len(names) && strings.HasPrefix(names[i], prefix)
}

// sourceArtefacts are keys some sample events carry that Okta never sends:
// Panther's own fields and its tests' lowercase keys. Lint must reject
// them, which this test checks too.
var sourceArtefacts = map[string]string{
	"p_log_type":   "",             // Panther's log type field
	"debugcontext": "debugContext", // Panther test events' lowercase key
}

// TestSampleEventsFitTheSchema: every field path of the 50 real events is
// one of the LogEvent schema, and every event type is catalogued.
func TestSampleEventsFitTheSchema(t *testing.T) {
	f, err := os.Open(sampleEvents)
	if err != nil {
		t.Fatalf("the shared sample events (%s) are needed: %v", sampleEvents, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	events := 0
	for sc.Scan() {
		var rec struct {
			ID    string         `json:"id"`
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		events++
		if et, _ := rec.Event["eventType"].(string); !oktaschema.EventType(et) {
			t.Errorf("%s: event type %q not catalogued", rec.ID, et)
		}
		for _, p := range leafPaths(rec.Event, nil) {
			ok, sugg := oktaschema.Path(p)
			want, artefact := sourceArtefacts[p[0]]
			switch {
			case artefact && (ok || !strings.HasPrefix(sugg, want)):
				t.Errorf("%s: %q is no Okta field and must be rejected with suggestion %q (got %v, %q)", rec.ID, p, want, ok, sugg)
			case !artefact && !ok:
				t.Errorf("%s: path %q not in the LogEvent schema (suggestion %q)", rec.ID, p, sugg)
			}
		}
	}
	if err := sc.Err(); err != nil || events < 50 {
		t.Fatalf("read %d events: %v", events, err)
	}
}

// leafPaths lists the paths of every value in v, lists as "[]".
func leafPaths(v any, prefix []string) [][]string {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && len(prefix) > 0 {
			return [][]string{prefix}
		}
		var out [][]string
		for k, c := range x {
			out = append(out, leafPaths(c, append(append([]string(nil), prefix...), k))...)
		}
		return out
	case []any:
		out := [][]string{prefix}
		for _, c := range x {
			out = append(out, leafPaths(c, append(append([]string(nil), prefix...), "[]"))...)
		}
		return out
	default:
		return [][]string{prefix}
	}
}

// inventedByPantherTests are event types Panther's published tests make up
// for negative cases; Okta has no such event types.
var inventedByPantherTests = map[string]bool{"logout": true, "app.token.reuse": true}

// TestPeerCaseEventTypes: the event types of Panther's published tests
// (real Okta field names) are catalogued, but for the two its tests invent.
func TestPeerCaseEventTypes(t *testing.T) {
	data, err := os.ReadFile(peerCases)
	if err != nil {
		t.Fatalf("the peer cases (%s) are needed: %v", peerCases, err)
	}
	var cases []struct {
		RuleID   string         `json:"rule_id"`
		Name     string         `json:"name"`
		Expected bool           `json:"expected"`
		Event    map[string]any `json:"event"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		et, ok := c.Event["eventType"].(string)
		switch {
		case !ok: // a few enrichment tests carry no event type
		case inventedByPantherTests[et]:
			if oktaschema.EventType(et) || c.Expected {
				t.Errorf("%s / %s: %q was thought invented for a negative case", c.RuleID, c.Name, et)
			}
		case !oktaschema.EventType(et):
			t.Errorf("%s / %s: event type %q not catalogued", c.RuleID, c.Name, et)
		}
	}
	if len(cases) < 90 {
		t.Fatalf("only %d peer cases", len(cases))
	}
}

// fieldRef matches the plain `event.a.?b[0].c` references of a rule.
var fieldRef = regexp.MustCompile(`\bevent((?:\.\??[A-Za-z_][A-Za-z0-9_]*|\[\??[0-9]+\])+)(\s*\()?`)

// TestPackFieldPathsFitTheSchema: every event field the pack names
// directly exists in the LogEvent schema.
func TestPackFieldPathsFitTheSchema(t *testing.T) {
	checked := 0
	for path, src := range packSources(t) {
		for _, m := range fieldRef.FindAllStringSubmatch(src, -1) {
			ref := strings.NewReplacer("?", "", "[", ".", "]", "").Replace(m[1])
			segs := strings.Split(strings.TrimPrefix(ref, "."), ".")
			// A trailing segment followed by "(" is a method (orValue, contains, …).
			if m[2] != "" && len(segs) > 1 {
				segs = segs[:len(segs)-1]
			}
			checked++
			if ok, sugg := oktaschema.Path(segs); !ok {
				t.Errorf("%s: event.%s is not a LogEvent field (did you mean %q?)", path, strings.Join(segs, "."), sugg)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d field references found: the scan is broken", checked)
	}
}
