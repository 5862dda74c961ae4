package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// The README's first command: the demo detects all five seed detections,
// one line per alert, says how to stop and, once the attacks are shown, what
// to try next; it serves the pipeline's /metrics meanwhile, and prints a
// summary and exits 0 on Ctrl-C.
func TestDemoPrintsTheFiveSeedDetections(t *testing.T) {
	var out testkit.Buffer
	cmd := exec.Command(binary, "demo", "--http-address", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill() // no-op once it has exited
		<-exited
	}()

	metricsLine := regexp.MustCompile(`Metrics: (http://127\.0\.0\.1:\d+/metrics)`)
	testkit.Until(t, "the demo to show every attack and what to try next", func() (bool, string) {
		return strings.Contains(out.String(), "alerts of the scenario's attacks are shown"), out.String()
	})
	text := out.String()
	m := metricsLine.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no metrics URL:\n%s", text)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatalf("GET %s: %v", m[1], err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	for _, name := range []string{"okta_events_total", "cel_detect_matches"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), name) {
			t.Errorf("GET %s: %d, no %s in:\n%.2000s", m[1], resp.StatusCode, name, body)
		}
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	testkit.Until(t, "the demo to exit on Ctrl-C", func() (bool, string) {
		select {
		case <-exited:
			return true, ""
		default:
			return false, out.String()
		}
	})
	if waitErr != nil {
		t.Fatalf("oktadetect demo: %v\n%s", waitErr, out.String())
	}
	text = out.String()

	for _, id := range seedRuleIDs {
		if !strings.Contains(text, id) {
			t.Errorf("the demo did not print a %s alert", id)
		}
	}
	// Six failed sign-ins make one brute-force alert: one line, not six.
	lines := regexp.MustCompile(`(?m)^\S+\s+\S+\s+Okta\.BruteForceLogins\s`).FindAllString(text, -1)
	if len(lines) != 1 {
		t.Errorf("%d Okta.BruteForceLogins alert lines, want one per alert", len(lines))
	}
	for _, want := range []string{
		"Ctrl-C to stop.",
		"kcat -b 127.0.0.1:", "-t okta.alerts", "oktadetect rules test rules/", "curl -s " + m[1],
		"Summary after",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo did not print %q", want)
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("colour or cursor escapes written to a pipe (not a terminal)")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
