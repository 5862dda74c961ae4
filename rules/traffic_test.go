package rules_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/rules"
)

// runScenario feeds a simulator scenario, in the order Okta would persist
// it, through the whole pack. It returns matches per rule id (with the
// severities seen) and fails the test on any rule error.
func runScenario(t *testing.T, name string, seed int64) map[string]map[string]int {
	t.Helper()
	rs, err := detect.LoadFS(rules.FS, rules.Root, packOptions)
	if err != nil {
		t.Fatal(err)
	}
	var ruleErrs []string
	e := detect.NewEngine(rs, detect.EngineOptions{Hooks: detect.Hooks{RuleError: func(id string, err error) {
		ruleErrs = append(ruleErrs, id+": "+err.Error())
	}}})
	start := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)
	tl, err := oktasim.Scenario(name, oktasim.NewGenerator(seed), start)
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]map[string]int{}
	for _, ev := range tl {
		res, err := e.Process(ev.Event.JSON())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Detections {
			if fired[d.ID] == nil {
				fired[d.ID] = map[string]int{}
			}
			fired[d.ID][d.Severity]++
		}
	}
	for _, m := range ruleErrs {
		t.Errorf("scenario %s: rule error %s", name, m)
	}
	return fired
}

func describe(fired map[string]map[string]int) string {
	var lines []string
	for id, sev := range fired {
		var parts []string
		for s, n := range sev {
			parts = append(parts, fmt.Sprintf("%s×%d", s, n))
		}
		sort.Strings(parts)
		lines = append(lines, fmt.Sprintf("  %-48s %s", id, strings.Join(parts, " ")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestQuietTrafficIsQuiet runs the pack over the simulator's ordinary
// traffic ("quiet": 30 minutes of staff signing in, SSO, MFA, sign-outs
// and routine admin work) for a few seeds, reports what fires and requires
// that nothing HIGH or CRITICAL does.
func TestQuietTrafficIsQuiet(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		fired := runScenario(t, "quiet", seed)
		t.Logf("quiet traffic, seed %d, detections per rule:\n%s", seed, describe(fired))
		for id, sev := range fired {
			if sev["HIGH"]+sev["CRITICAL"] > 0 {
				t.Errorf("seed %d: %s raised HIGH/CRITICAL detections on ordinary traffic: %v", seed, id, sev)
			}
		}
	}
}

// TestScenariosDetectTheirAttacks: the demo's five seed attacks are all
// detected among ordinary traffic, the "full" scenario's extra attacks
// too, and no scenario makes a rule error.
func TestScenariosDetectTheirAttacks(t *testing.T) {
	want := map[string][]string{
		"demo": {"Okta.AdminRoleAssigned", "Okta.APIKeyCreated", "Okta.APIKeyRevoked",
			"Okta.BruteForceLogins", "Okta.GeographicallyImprobableAccess"},
		"full": {"Okta.User.Account.Locked", "Okta.User.MFA.Reset.All",
			"Okta.Sigma.NetworkZoneDeactivatedOrDeleted", "Okta.Elastic.MFAPushBombing",
			"Okta.Elastic.PushAcceptedAfterDenials"},
		"backlog": nil,
	}
	for _, name := range oktasim.ScenarioNames() {
		fired := runScenario(t, name, 1)
		t.Logf("scenario %s, detections per rule:\n%s", name, describe(fired))
		for _, id := range want[name] {
			if fired[id] == nil {
				t.Errorf("scenario %s: %s did not fire", name, id)
			}
		}
	}
}
