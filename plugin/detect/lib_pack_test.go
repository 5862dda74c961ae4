package detect

import "testing"

func TestOktaBehaviorsAndRisk(t *testing.T) {
	e, rec := newTestEngine(t, `// id: T.Behaviors
// title: "{{ okta.behaviors(event) }} {{ okta.risk(event) }}"
okta.behaviors(event)[?'New Device'].orValue('') == 'POSITIVE' &&
okta.behaviors(event)[?'New IP'].orValue('') == 'POSITIVE' &&
okta.risk(event) == event.want_risk
`)
	cases := []struct {
		name, event string
		want        bool
	}{
		{"okta string", `{"want_risk":"HIGH","debugContext":{"debugData":{"behaviors":"{New Geo-Location=NEGATIVE, New Device=POSITIVE, New IP=POSITIVE}","risk":"{reasons=[Anomalous Device, Anomalous Location], level=HIGH}"}}}`, true},
		{"list", `{"want_risk":"","debugContext":{"debugData":{"behaviors":["New Device=POSITIVE","New IP=POSITIVE"]}}}`, true},
		{"map of pairs", `{"want_risk":"","debugContext":{"debugData":{"behaviors":{"New Device=POSITIVE":null,"New IP=POSITIVE":null}}}}`, true},
		{"logOnly object", `{"want_risk":"LOW","debugContext":{"debugData":{"logOnlySecurityData":{"risk":{"level":"LOW"},"behaviors":{"New Device":"POSITIVE","New IP":"POSITIVE"}}}}}`, true},
		{"logOnly JSON string", `{"want_risk":"LOW","debugContext":{"debugData":{"logOnlySecurityData":"{\"risk\":{\"level\":\"LOW\"},\"behaviors\":{\"New Device\":\"POSITIVE\",\"New IP\":\"POSITIVE\"}}"}}}`, true},
		{"negative", `{"want_risk":"LOW","debugContext":{"debugData":{"behaviors":"{New Device=NEGATIVE, New IP=POSITIVE}","risk":"{level=LOW}"}}}`, false},
		{"nothing at all", `{"want_risk":""}`, false},
		{"debugData not an object", `{"want_risk":"","debugContext":{"debugData":""}}`, false},
		{"broken JSON string", `{"want_risk":"","debugContext":{"debugData":{"logOnlySecurityData":"{oops"}}}`, false},
	}
	for _, c := range cases {
		res, err := e.Process([]byte(c.event))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Detections) > 0; got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if len(rec.errors) > 0 {
		t.Errorf("rule errors: %v", rec.errors)
	}
}

func TestSplitBraced(t *testing.T) {
	got := splitBraced("{reasons=[a, b], level=HIGH}")
	if len(got) != 2 || got[0] != "reasons=[a, b]" || got[1] != " level=HIGH" {
		t.Errorf("got %q", got)
	}
}
