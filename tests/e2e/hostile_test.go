package e2e

// The hostile input suite: hostile events through okta_system_log and
// cel_detect (the whole pack, plus a rule with a runaway loop); rule files
// that cannot compile; configs with missing or contradictory fields. (The
// decoder's own limits — events deeper than 10,000 levels, numbers out of
// range, non-objects — are in internal/impl/detect/hostile_test.go: the simulator
// and Okta cannot serve them.)

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const hostileConfig = `
http:
  address: ${OKTADETECT_HTTP_ADDRESS}
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    api_token: ${OKTA_API_TOKEN}
    poll_interval: 200ms
    initial_lookback: 2h
    rate_limit_share: 1
pipeline:
  processors:
    - cel_detect:
        rules: [ "${PACK}", "${EXTRA}" ]
output:
  stdout:
    codec: lines
metrics:
  prometheus: {}
logger:
  level: INFO
  format: logfmt
`

// loopCostRule does cubic work over a list in the event: cel_detect's
// cost_limit stops it on each event, the event passes on, and the error is
// counted. (rules lint accepts it: its cost depends on the event.)
const loopCostRule = `// id: Hostile.LoopCost
// title: cubic loop over an event list
// severity: LOW
event.?items.orValue([]).size() > 0 && event.items.all(a, event.items.all(b, event.items.all(c, a + b + c >= 0)))
`

// Hostile events go through the pipeline: each passes byte for byte
// (nothing matched it), the process keeps running, rule errors are counted,
// and an attack persisted after them is still detected.
func TestHostileEventsPassThrough(t *testing.T) {
	published := time.Now().Add(-10 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
	head := func(id string) string { return `{"uuid":"hostile-` + id + `","published":"` + published + `"` }
	items := strings.TrimSuffix(strings.Repeat("1,", 1000), ",")
	hostile := map[string]string{
		"missing-fields": head("missing-fields") + `}`,
		"only-type":      head("only-type") + `,"eventType":"user.session.start"}`,
		"wrong-types": head("wrong-types") + `,"eventType":"user.session.start","actor":12,"client":"nowhere",` +
			`"outcome":["FAILURE"],"target":{"id":1},"securityContext":true,"debugContext":{"debugData":7},"displayMessage":null,"severity":5}`,
		"wrong-types-grant": head("wrong-types-grant") + `,"eventType":"user.account.privilege.grant","actor":{"alternateId":5},` +
			`"target":"everyone","debugContext":"none","client":{"ipAddress":7,"geographicalContext":"nowhere"}}`,
		"wrong-types-auth": head("wrong-types-auth") + `,"eventType":"user.authentication.auth_via_mfa","outcome":{"result":false,"reason":[]},` +
			`"client":{"ipAddress":null,"userAgent":{"rawUserAgent":1}},"securityContext":{"isProxy":"yes","asNumber":"x"}}`,
		"deep":         head("deep") + `,"eventType":"user.session.start","debugContext":` + strings.Repeat("[", 9_990) + strings.Repeat("]", 9_990) + `}`,
		"huge-string":  head("huge-string") + `,"eventType":"user.session.start","displayMessage":"` + strings.Repeat("A", 5<<20) + `"}`,
		"invalid-utf8": head("invalid-utf8") + ",\"eventType\":\"user.session.start\",\"displayMessage\":\"caf\xe9 \xff\xfe\",\"actor\":{\"alternateId\":\"\xc3\x28@example.com\"}}",
		"loop-cost":    head("loop-cost") + `,"eventType":"user.session.start","items":[` + items + `]}`,
	}
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	for id, raw := range hostile {
		if err := sim.PersistRaw(json.RawMessage(raw)); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	g := oktasim.NewGenerator(51)
	attack := g.AdminRoleAssigned("admin@example.com", "newadmin@example.com", time.Now().Add(-5*time.Minute))
	ordinary := g.Backlog(50, time.Now().Add(-4*time.Minute), time.Second)
	sim.Persist(append([]oktasim.LogEvent{attack}, ordinary...)...)

	dir := t.TempDir()
	extra := filepath.Join(dir, "loop_cost.cel")
	cfg := filepath.Join(dir, "hostile.yaml")
	if err := os.WriteFile(extra, []byte(loopCostRule), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(hostileConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(binary, "-c", cfg)
	cmd.Env = environ("OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token, "OKTADETECT_HTTP_ADDRESS="+addr,
		"PACK="+filepath.Join(repoRoot(), "rules", "okta"), "EXTRA="+extra)
	stderr := &testkit.Buffer{}
	cmd.Stderr = stderr
	recordOutput(stderr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("oktadetect output:\n%.20000s", stderr.String())
		}
	}()

	want := len(hostile) + 1 + len(ordinary)
	got := map[string]string{} // uuid → line
	deadline := time.After(60 * time.Second)
	for len(got) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("oktadetect stopped after %d of %d events", len(got), want)
			}
			m := uuidRE.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("a line without a uuid: %.200s", line)
			}
			got[m[1]] = line
		case <-deadline:
			t.Fatalf("%d of %d events within 60 s", len(got), want)
		}
	}
	for id, raw := range hostile {
		line, ok := got["hostile-"+id]
		switch {
		case !ok:
			t.Errorf("%s: lost", id)
		case line != raw:
			t.Errorf("%s: not passed byte for byte (%d bytes in, %d out): %.300s", id, len(raw), len(line), line)
		}
	}
	if !strings.Contains(got[attack.UUID], `"id":"Okta.AdminRoleAssigned"`) {
		t.Errorf("the attack after the hostile events was not detected: %.500s", got[attack.UUID])
	}

	body := ""
	var ruleErrs, loopErrs, events float64
	for wait := time.Now().Add(testkit.Patience); time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
		body = testkit.Scrape(t, "http://"+addr+"/metrics")
		ruleErrs, _ = metricValue(body, "cel_detect_rule_errors_total")
		loopErrs, _ = metricValue(body, "cel_detect_rule_errors_total", `rule="Hostile.LoopCost"`)
		events, _ = metricValue(body, "cel_detect_events_total")
		if events >= float64(want) && loopErrs >= 1 {
			break
		}
	}
	if events < float64(want) {
		t.Errorf("cel_detect_events_total = %v, want %d", events, want)
	}
	if loopErrs < 1 {
		t.Errorf("the loop-cost rule's error is not counted:\n%s", body)
	}
	if ruleErrs < 2 {
		t.Errorf("cel_detect_rule_errors_total = %v: wrong types made no rule fail", ruleErrs)
	}
	select {
	case _, open := <-lines:
		if !open {
			t.Fatal("oktadetect exited")
		}
	case <-time.After(100 * time.Millisecond):
	}
	t.Logf("%d hostile events passed byte for byte (%d MiB in all); %v rule errors counted (%v from the loop-cost rule); attack still detected; %v",
		len(hostile), (len(hostile["huge-string"])+len(hostile["deep"]))>>20, ruleErrs, loopErrs, time.Since(start).Round(100*time.Millisecond))
}

// Broken rule files: `rules lint` names file:line:col and exits 1; a
// pipeline using the rule refuses to start with the same error.
func TestHostileRuleFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ file, src, want string }{
		{"empty.cel", "", "empty.cel:1:1: missing header"},
		{"comment_only.cel", "// just a comment\n", "comment_only.cel:2:1: missing condition"},
		{"bad_yaml.cel", "// id: [unclosed\n// title: x\ntrue\n", "bad_yaml.cel:1:1: header: "},
		{"unknown_key.cel", "// id: X.Y\n// colour: red\ntrue\n", "unknown_key.cel:2:1: header: unknown key colour"},
		{"bad_severity.cel", "// id: X.Y\n// severity: SCARY\ntrue\n", "bad_severity.cel:2:14: header: severity \"SCARY\" is not one of"},
		{"unknown_function.cel", "// id: X.Y\nfrobnicate(event.x)\n", "unknown_function.cel:2:11: undeclared reference to 'frobnicate'"},
		{"type_error.cel", "// id: X.Y\nsize(event) + \"x\" == \"y\"\n", "type_error.cel:2:13: found no matching overload for '_+_'"},
		{"not_bool.cel", "// id: X.Y\n1 + 2\n", "not_bool.cel:2:1: condition must be a bool"},
		{"syntax.cel", "// id: X.Y\nevent.x ==\n", "syntax.cel:3:1: Syntax error"},
	}
	pipeline := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(pipeline, []byte(`
input:
  generate: {count: 1, interval: "", mapping: 'root = {"eventType":"x"}'}
pipeline:
  processors:
    - cel_detect: {rules: [ "${RULE}" ]}
output:
  drop: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.file)
		if err := os.WriteFile(path, []byte(c.src), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, "rules", "lint", path).CombinedOutput()
		if code := exitCode(err); code != 1 || !strings.Contains(string(out), c.want) {
			t.Errorf("rules lint %s: exit %d, want 1 and %q:\n%s", c.file, code, c.want, out)
		}
		run := exec.Command(binary, "-c", pipeline)
		run.Env = environ("RULE=" + path)
		out, err = runWithTimeout(run, 20*time.Second)
		if code := exitCode(err); code == 0 || !strings.Contains(string(out), c.want) {
			t.Errorf("pipeline with %s: exit %d, want a refusal with %q:\n%s", c.file, code, c.want, out)
		}
	}
}

// Configs with missing or contradictory fields: one clear error each, from
// `oktadetect lint` where the schema can tell, else at start-up; never a
// running pipeline.
func TestHostileConfigs(t *testing.T) {
	okta := func(fields string) string {
		return "input:\n  okta_system_log:\n" + fields + "output:\n  drop: {}\n"
	}
	cases := []struct {
		name, yaml, want string
		lint             bool // lint catches it (else only start-up)
	}{
		{"no org_url", okta("    api_token: abc\n"), "field org_url is required", true},
		{"no credentials", okta("    org_url: https://acme.okta.com\n"), "set api_token (an Okta API token) or oauth", true},
		{"api_token and oauth", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    oauth: {client_id: x, private_key_file: /k.pem}\n"),
			"set either api_token or oauth, not both", true},
		{"limit 0", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    limit: 0\n"), "limit must be between 1 and 1000, got 0", true},
		{"limit 5000", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    limit: 5000\n"), "limit must be between 1 and 1000, got 5000", true},
		{"rate_limit_share 2", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    rate_limit_share: 2\n"), "rate_limit_share must be in (0, 1], got 2", true},
		{"rate_limit_share 0", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    rate_limit_share: 0\n"), "rate_limit_share must be in (0, 1], got 0", true},
		{"http org_url", okta("    org_url: http://acme.okta.com\n    api_token: abc\n"), "only https", false},
		{"negative poll_interval", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    poll_interval: -1s\n"), "poll_interval must be positive", false},
		{"undeclared checkpoint_cache", okta("    org_url: https://acme.okta.com\n    api_token: abc\n    checkpoint_cache: nope\n"), `checkpoint_cache "nope" is not a cache resource`, true},
		{"transactional_id with batching", "input:\n  generate: {count: 1, interval: \"\", mapping: 'root = {}'}\noutput:\n  kafka_producer:\n    seed_brokers: [127.0.0.1:1]\n    topic: t\n    transactional_id: x\n    batching: {count: 10}\n",
			"transactional_id cannot be combined with batching", false},
		{"no seed_brokers", "input:\n  generate: {count: 1, interval: \"\", mapping: 'root = {}'}\noutput:\n  kafka_producer:\n    topic: t\n",
			"seed_brokers must list at least one broker", false},
	}
	dir := t.TempDir()
	for i, c := range cases {
		path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, "lint", path).CombinedOutput()
		code := exitCode(err)
		if c.lint && (code != 1 || !strings.Contains(string(out), c.want)) {
			t.Errorf("%s: lint exit %d, want 1 and %q:\n%s", c.name, code, c.want, out)
		}
		run := exec.Command(binary, "-c", path)
		run.Env = environ("OKTADETECT_STATE_DIR=" + dir)
		out, err = runWithTimeout(run, 20*time.Second)
		if code := exitCode(err); code == 0 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: start-up exit %d, want a refusal with %q:\n%s", c.name, code, c.want, out)
		}
		if n := strings.Count(string(out), c.want); n > 2 {
			t.Errorf("%s: the error is repeated %d times:\n%s", c.name, n, out)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// runWithTimeout runs cmd and returns its combined output; a process still
// running after d is killed and reported as exit -1.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	err := testkit.RunFor(cmd, d)
	if errors.Is(err, testkit.ErrTimedOut) {
		return []byte(out.String() + "\n[still running after " + d.String() + ": killed]"), err
	}
	return []byte(out.String()), err
}
