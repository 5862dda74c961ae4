package detect

import (
	"encoding/json"
	"strings"
	"testing"
)

const orgRule = `// id: O
// title: "grant in {{ event.oktadetect.org }}"
event.?oktadetect.?org.orValue('') == 'acme.okta.com'
`

// Rules read metadata as event.oktadetect.<name>; the output bytes never
// carry it.
func TestMetaViewSeenByRulesNotWritten(t *testing.T) {
	e, rec := newTestEngine(t, orgRule)
	acme := []MetaField{{Name: "org", Value: "acme.okta.com"}}
	for _, raw := range []string{
		`{"published":"2024-05-01T12:00:00Z","eventType":"x"}`,
		`{}`,
		` { } `,
		`{"oktadetect":{"org":"other.okta.com"},"n":1}`, // the metadata wins over the event's own
		`{"detections":[{"id":"old"}],"n":1}`,           // re-encoded: still without the view
	} {
		res, err := e.ProcessWithMeta([]byte(raw), acme)
		if err != nil || len(res.Detections) != 1 || res.Detections[0].Title != "grant in acme.okta.com" {
			t.Fatalf("%s: %+v %v %v", raw, res.Detections, err, rec.errors)
		}
		var out map[string]any
		if err := json.Unmarshal(res.Out, &out); err != nil {
			t.Fatalf("%s: output %s is not JSON: %v", raw, res.Out, err)
		}
		var in map[string]any
		_ = json.Unmarshal([]byte(raw), &in)
		if !strings.Contains(raw, "oktadetect") && out[metaKey] != nil {
			t.Errorf("%s: output %s carries the metadata view", raw, res.Out)
		}
		if strings.Contains(raw, "oktadetect") && string(res.Out[:len(`{"oktadetect":{"org":"other.okta.com"}`)]) != `{"oktadetect":{"org":"other.okta.com"}` {
			t.Errorf("%s: the event's own oktadetect changed: %s", raw, res.Out)
		}
		delete(out, "detections")
		delete(in, "detections")
		if len(out) != len(in) {
			t.Errorf("%s: fields %v became %v", raw, in, out)
		}
	}
	if res, _ := e.ProcessWithMeta([]byte(`{"eventType":"x"}`), []MetaField{{Name: "org", Value: "beta.okta.com"}}); len(res.Detections) != 0 {
		t.Error("another org matched")
	}
	if res, _ := e.Process([]byte(`{"eventType":"x"}`)); len(res.Detections) != 0 {
		t.Error("matched without metadata")
	}
}
