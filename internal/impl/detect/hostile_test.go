package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/meta"
)

// Hostile events through cel_detect with the whole embedded pack: each leaves
// the processor byte for byte (nothing can match it), those that cannot be
// decoded are reported as decode errors (cel_detect_decode_errors_total), and the
// processor keeps working for the next event. The e2e suite sends the ones
// Okta's API can carry through the real binary; these are the rest.
func TestHostileEventsPassUntouched(t *testing.T) {
	p := newTestProcessor(t, `{}`)
	pub := `"published":"2024-05-01T12:00:00Z"`
	cases := []struct {
		name      string
		raw       string
		decodeErr bool
	}{
		{"deeper than 10,000", `{` + pub + `,"eventType":"user.session.start","x":` + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + `}`, true},
		{"10,000 deep", `{` + pub + `,"eventType":"user.session.start","x":` + strings.Repeat("[", 9_998) + strings.Repeat("]", 9_998) + `}`, false},
		{"number out of range", `{` + pub + `,"eventType":"user.session.start","n":1e999}`, true},
		{"truncated", `{` + pub + `,"eventType":"user.session.st`, true},
		{"not JSON", `<html>login</html>`, true},
		{"array", `[{"eventType":"user.session.start"}]`, true},
		{"string", `"user.session.start"`, true},
		{"null", `null`, true},
		{"empty", ``, true},
		{"no published", `{"eventType":"user.account.privilege.grant","actor":{"alternateId":"a@b"}}`, false},
		{"published not a time", `{"published":"yesterday","eventType":"user.account.privilege.grant"}`, false},
		{"published a number", `{"published":12,"eventType":"user.account.privilege.grant"}`, false},
		{"wrong types", `{` + pub + `,"eventType":"user.session.start","actor":12,"client":"x","outcome":["FAILURE"],"securityContext":true}`, false},
		{"huge string", `{` + pub + `,"eventType":"user.session.start","displayMessage":"` + strings.Repeat("A", 5<<20) + `"}`, false},
		{"invalid UTF-8", "{" + pub + ",\"eventType\":\"user.session.start\",\"displayMessage\":\"caf\xe9 \xff\",\"actor\":{\"alternateId\":\"\xc3\x28\"}}", false},
		{"duplicate keys", `{` + pub + `,"eventType":"user.session.start","eventType":"x","actor":{},"actor":null}`, false},
	}
	for _, c := range cases {
		start := time.Now()
		_, err := memoryEngine(t, p).Process([]byte(c.raw))
		if (err != nil) != c.decodeErr {
			t.Errorf("%s: decode error %v, want one: %v", c.name, err, c.decodeErr)
		}
		msg := processMsg(t, p, []byte(c.raw))
		body, _ := msg.AsBytes()
		ids, _ := msg.MetaGet(meta.DetectionIDs)
		if string(body) != c.raw || ids != "" {
			t.Errorf("%s: not passed on untouched (ids %q, %d bytes in, %d out)", c.name, ids, len(c.raw), len(body))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: took %v", c.name, d)
		}
	}
	// Still detecting.
	msg := processMsg(t, p, []byte(`{"published":"2021-01-08T21:28:34.875Z","eventType":"system.api_token.create","outcome":{"result":"SUCCESS"}}`))
	if ids, _ := msg.MetaGet(meta.DetectionIDs); ids != "Okta.APIKeyCreated" {
		t.Fatalf("after the hostile events: ids %q", ids)
	}
}
