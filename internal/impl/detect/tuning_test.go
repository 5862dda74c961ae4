package detect

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

func failedLogin(i int, user string) []byte {
	return []byte(`{"uuid":"u-` + user + string(rune('a'+i)) + `","published":"2024-05-01T12:0` + string(rune('0'+i)) + `:00Z","eventType":"user.session.start",` +
		`"actor":{"alternateId":"` + user + `"},"outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"},"client":{"ipAddress":"198.51.100.7"}}`)
}

// The pack is kept and tuned from the config: a family switched off, a
// threshold lowered, a scanner excepted, a list replaced, and a local rule
// file replacing a built-in rule (said at INFO).
func TestProcessorTuning(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "mine.cel", "// id: Okta.APIKeyRevoked\n// title: local\nevent.eventType == 'system.api_token.revoke' && event.?actor.?alternateId.orValue('') == 'me'\n")
	logs := &testkit.Buffer{}
	log := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(logs, nil)))
	conf, err := ConfigSpec().ParseYAML(`
rules: [ builtin, `+dir+` ]
disable: [ "Okta.Sigma.*" ]
overrides:
  Okta.BruteForceLogins: { threshold: { count: 2 }, severity: HIGH }
exceptions:
  - rules: [ "Okta.BruteForceLogins" ]
    when: "event.?actor.?alternateId.orValue('') == 'scanner@acme.io'"
    reason: the nightly scanner
lists:
  rogue_countries: [ Canada ]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessorFromConfig(conf, service.MockResources(service.MockResourcesOptUseLogger(log)), testProduct)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ids := func(raw []byte) string {
		t.Helper()
		batches, err := p.ProcessBatch(context.Background(), service.MessageBatch{service.NewMessage(raw)})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := batches[0][0].MetaGet(meta.DetectionIDs)
		return v
	}
	ids(failedLogin(0, "ann@acme.io"))
	if got := ids(failedLogin(1, "ann@acme.io")); !strings.Contains(got, "Okta.BruteForceLogins") {
		t.Errorf("second failure with threshold.count 2: %q", got)
	}
	ids(failedLogin(0, "scanner@acme.io"))
	if got := ids(failedLogin(1, "scanner@acme.io")); strings.Contains(got, "Okta.BruteForceLogins") {
		t.Errorf("excepted scanner tagged: %q", got)
	}
	canada := `{"uuid":"c1","published":"2024-05-01T12:00:00Z","eventType":"user.session.start","outcome":{"result":"SUCCESS"},"actor":{"alternateId":"bo@acme.io"},"client":{"geographicalContext":{"country":"Canada"}}}`
	if got := ids([]byte(canada)); !strings.Contains(got, "Standard.SignInFromRogueState") {
		t.Errorf("lists.rogue_countries [Canada]: %q", got)
	}
	revoke := `{"uuid":"r1","published":"2024-05-01T12:00:00Z","eventType":"system.api_token.revoke","outcome":{"result":"SUCCESS"},"actor":{"alternateId":"other"}}`
	if got := ids([]byte(revoke)); got != "" {
		t.Errorf("the built-in APIKeyRevoked ran instead of the local file: %q", got)
	}
	if !strings.Contains(logs.String(), "built-in rule Okta.APIKeyRevoked is replaced") {
		t.Errorf("no INFO line for the replaced rule:\n%s", logs.String())
	}
	for _, id := range memoryEngine(t, p).RuleIDs() {
		if strings.HasPrefix(id, "Okta.Sigma.") {
			t.Errorf("%s still running", id)
		}
	}
}

// A tuning entry naming no rule stops the pipeline at start and fails lint.
func TestProcessorTuningMistakes(t *testing.T) {
	for yaml, want := range map[string]string{
		"disable: [ Okta.Sigmaa.* ]":                                     `"Okta.Sigmaa.*" matches no rule id`,
		"overrides: { Okta.Nope: { severity: HIGH } }":                   `no rule has id "Okta.Nope"`,
		"overrides: { Okta.APIKeyCreated: { threshold: { count: 3 } } }": "the rule has no threshold",
		"lists: { rogue_countries: notalist }":                           "lists.rogue_countries must be a list of strings",
	} {
		conf, err := ConfigSpec().ParseYAML(yaml, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newProcessorFromConfig(conf, service.MockResources(), testProduct)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", yaml, err, want)
		}
		if err := CheckConfig(conf, testProduct); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("lint of %s: %v, want %q", yaml, err, want)
		}
	}
}
