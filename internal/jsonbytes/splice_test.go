package jsonbytes

import (
	"encoding/json"
	"testing"
)

func TestWithoutMember(t *testing.T) {
	for in, want := range map[string]string{
		`{"detections":[1],"a":1}`:        `{"a":1}`,
		`{"a":1,"detections":[1]}`:        `{"a":1}`,
		`{"a":1,"detections":[1],"b":2}`:  `{"a":1,"b":2}`,
		`{"detections":{}}`:               `{}`,
		`{ "detections" : [] , "a" : 1 }`: `{  "a" : 1 }`,
		`{"a":{"detections":1}}`:          `{"a":{"detections":1}}`,
	} {
		got, err := WithoutMember([]byte(in), "detections")
		if err != nil || string(got) != want {
			t.Errorf("%s: got %s (%v), want %s", in, got, err, want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: result not JSON: %s", in, got)
		}
	}
}

func TestAppendMember(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:            `{"k":1}`,
		`{ }`:           `{ "k":1}`,
		`{"a":1}`:       `{"a":1,"k":1}`,
		`{"a":1} `:      `{"a":1,"k":1}`,
		"{\"a\":1\n}\n": "{\"a\":1\n,\"k\":1}",
	} {
		got, err := AppendMember([]byte(in), "k", []byte("1"))
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q (%v), want %q", in, got, err, want)
		}
	}
	if _, err := AppendMember([]byte(`[1]`), "k", []byte("1")); err == nil {
		t.Error("appended a member to an array")
	}
}

// detections_to_alerts' splicing: removing a member keeps valid JSON.
func FuzzWithoutMember(f *testing.F) {
	f.Add([]byte(`{"a":1,"detections":[{"id":"x"}],"b":{"detections":2}}`))
	f.Add([]byte(`{ "detections" : [] }`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := WithoutMember(raw, "detections")
		if err != nil {
			return
		}
		if json.Valid(raw) && !json.Valid(out) {
			t.Fatalf("%q became invalid JSON %q", raw, out)
		}
	})
}
