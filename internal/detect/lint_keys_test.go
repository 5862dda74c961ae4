package detect

import (
	"strings"
	"testing"
)

// Each state key of a rule that remembers is checked against previous.key:
// a key that reads every field previous.key reads passes, one that misses a
// field (or is unset: one group for every event) is warned of, at its line.
func TestStateKeyWarnings(t *testing.T) {
	const prev = "// previous: {key: \"[event.actor.id, event.client.ipAddress]\", value: event.uuid, ttl: 1h}\n"
	for name, c := range map[string]struct {
		header string
		want   []string // substrings, one per warning; none: no warning
	}{
		"dedup key is previous.key": {
			"// dedup: {key: \"[event.actor.id, event.client.ipAddress]\"}\n", nil},
		"dedup key finer than previous.key": {
			"// dedup: {key: \"[event.?actor.?id.orValue(''), event.client.ipAddress, event.eventType]\"}\n", nil},
		"dedup key coarser than previous.key": {
			"// dedup: {key: event.actor.id}\n",
			[]string{"r.cel:4:17: warning: dedup.key does not read event.client.ipAddress,"}},
		"title template reading both": {
			"// title: \"{{ event.actor.id }} from {{ event.client.ipAddress }}\"\n", nil},
		"static title": {
			"// title: Static\n",
			[]string{"r.cel:3:11: warning: the dedup key (the title, dedup.key being unset) does not read event.actor.id, event.client.ipAddress,"}},
		"threshold without group_by": {
			"// dedup: {key: \"[event.actor.id, event.client.ipAddress]\"}\n// threshold: {count: 2, window: 1m}\n",
			[]string{"r.cel:3:21: warning: threshold.group_by (unset: one group for every event) does not read"}},
		"threshold grouped by actor": {
			"// dedup: {key: \"[event.actor.id, event.client.ipAddress]\"}\n// threshold: {count: 2, window: 1m, group_by: event.actor.id}\n",
			[]string{"r.cel:5:48: warning: threshold.group_by does not read event.client.ipAddress, which previous.key reads: scaled out (cel_route), events are routed by previous.key, so events sharing its value can reach different workers, and each alerts; set threshold.group_by to the expression of previous.key"}},
	} {
		t.Run(name, func(t *testing.T) {
			title := "// title: \"{{ event.actor.id }}{{ event.client.ipAddress }}\"\n"
			if strings.Contains(c.header, "// title:") {
				title = ""
			}
			src := "// id: R\n" + title + prev + c.header + "previous != null\n"
			r, err := ParseRule("r.cel", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if _, err := Compile(r, CompileOptions{Warn: func(w error) { got = append(got, w.Error()) }}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
			}
		})
	}
}
