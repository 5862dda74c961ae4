package detect

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; run one with e.g.
//   go test -run '^$' -fuzz '^FuzzParseEvent$' -fuzztime 20s ./internal/detect

// The rule header parser: any file gives a rule or positioned errors, never a
// panic, and every position is inside the file.
func FuzzParseRule(f *testing.F) {
	f.Add([]byte("// id: Okta.X\n// title: t\n// severity: HIGH\nevent.eventType == \"x\"\n"))
	f.Add([]byte("// id: X\n// title: ${event.actor.alternateId} did it\n// severity: ${event.x > 1 ? \"HIGH\" : \"LOW\"}\n// dedup: {key: event.actor.id, period: 1h}\n// threshold: {count: 5, window: 10m, group: event.client.ipAddress}\ntrue\n"))
	f.Add([]byte("// id: X\n// previous: {key: event.actor.id, when: true, value: event.client, ttl: 24h}\nprevious != null\n"))
	f.Add([]byte("// : : :\n//\t- [\nx"))
	f.Add([]byte(""))
	f.Add([]byte("// id: X\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		r, err := ParseRule("fuzz.cel", src)
		if err == nil {
			if r == nil {
				t.Fatal("no rule and no error")
			}
			return
		}
		lines := strings.Count(string(src), "\n") + 2
		for _, e := range flatten(err) {
			var pe *PosError
			if errors.As(e, &pe) && (pe.Line < 1 || pe.Line > lines || pe.Col < 1) {
				t.Fatalf("error outside the file (%d lines): %v", lines, pe)
			}
		}
	})
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// The event decoder agrees with encoding/json: every JSON object decodes,
// anything that is not JSON is refused.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"uuid":"u1","published":"2026-11-25T10:00:00.000Z","actor":{"id":"00u1","alternateId":"a@b.c"},"outcome":{"result":"FAILURE"},"n":[1,2.5e3,-0,true,null]}`))
	f.Add([]byte(`{"s":"\u00e9\ud83d\ude00\\\"\/\b\f\n\r\t"}`))
	f.Add([]byte(`{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`))
	f.Add([]byte("{\"bad\":\"\xff\xfe\"}"))
	f.Add([]byte(`[1]`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"a":1}x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := parseEvent(raw)
		valid := json.Valid(raw)
		var obj map[string]json.RawMessage
		isObject := valid && json.Unmarshal(raw, &obj) == nil
		if err == nil && !valid {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		if err != nil && isObject && !strings.Contains(err.Error(), "deep") && !strings.Contains(err.Error(), "nest") {
			t.Fatalf("refused a JSON object %q: %v", raw, err)
		}
		_ = doc
	})
}
