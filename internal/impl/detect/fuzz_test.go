package detect

import (
	"encoding/json"
	"testing"
)

// detections_to_alerts' splicing: removing a member keeps valid JSON.
func FuzzWithoutMember(f *testing.F) {
	f.Add([]byte(`{"a":1,"detections":[{"id":"x"}],"b":{"detections":2}}`))
	f.Add([]byte(`{ "detections" : [] }`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := withoutMember(raw, "detections")
		if err != nil {
			return
		}
		if json.Valid(raw) && !json.Valid(out) {
			t.Fatalf("%q became invalid JSON %q", raw, out)
		}
	})
}
