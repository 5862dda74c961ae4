package main

import (
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
)

func demoAlert(alertID, rule, severity string) alertRecord {
	a := alertRecord{ID: rule, Title: "t", Severity: severity, AlertID: alertID}
	a.Event.Published = "2026-01-01T00:00:00.000Z"
	return a
}

// On a terminal a repeated alert id rewrites its line with the count; the
// line is coloured by severity. Off a terminal it is printed once, plain.
func TestAlertPrinterOneLinePerAlert(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var out strings.Builder
		p := newAlertPrinter(&out, tty)
		p.expected = map[string]string{"a1": "R1", "a2": "R2"}
		p.next = []string{"try this"}
		p.println("header")
		for range 6 {
			p.alert(demoAlert("a1", "R1", "HIGH"))
		}
		p.alert(demoAlert("a2", "R2", "LOW"))
		got := out.String()
		if n := strings.Count(got, "R1"); n != map[bool]int{true: 6, false: 1}[tty] {
			t.Errorf("tty=%v: R1 written %d times:\n%q", tty, n, got)
		}
		if tty {
			// The sixth detection rewrites line 1, one line up from the bottom.
			if !strings.Contains(got, "\x1b[1A\r\x1b[2K") || !strings.Contains(got, "×6") || !strings.Contains(got, "\x1b[31mHIGH") {
				t.Errorf("tty: no in-place update with ×6 and colour:\n%q", got)
			}
		} else if strings.Contains(got, "\x1b[") {
			t.Errorf("escape sequences off a terminal:\n%q", got)
		}
		if !strings.HasSuffix(got, "All 2 alerts of the scenario's attacks are shown. Next, try (the demo keeps running):\n  try this\n") {
			t.Errorf("tty=%v: no next steps after the last attack:\n%q", tty, got)
		}
	}
}

// The alerts the demo waits for are those of the scenario's attacks: the
// seed detections for "demo", none for ordinary traffic alone.
func TestAttackAlertsOfTheScenarios(t *testing.T) {
	for _, c := range []struct {
		scenario string
		want     []string
	}{
		{"demo", []string{"Okta.AdminRoleAssigned", "Okta.APIKeyCreated", "Okta.APIKeyRevoked", "Okta.BruteForceLogins", "Okta.GeographicallyImprobableAccess"}},
		{"quiet", nil},
	} {
		start := time.Now()
		tl, err := oktasim.Scenario(c.scenario, oktasim.NewGenerator(1), start)
		if err != nil {
			t.Fatal(err)
		}
		got, err := attackAlerts(c.scenario, 1, start, tl, "127.0.0.1:8089")
		if err != nil {
			t.Fatal(err)
		}
		rulesSeen := map[string]bool{}
		for _, rule := range got {
			rulesSeen[rule] = true
		}
		for _, r := range c.want {
			if !rulesSeen[r] {
				t.Errorf("%s: no expected %s alert in %v", c.scenario, r, got)
			}
		}
		if c.want == nil && len(got) != 0 {
			t.Errorf("%s: expected alerts %v from ordinary traffic", c.scenario, got)
		}
	}
}
