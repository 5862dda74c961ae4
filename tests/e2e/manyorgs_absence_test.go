package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// Absences of an org that lags fire by its own event time, in one process
// serving two orgs (config/many-orgs-to-kafka.yaml). Org 2's log is 30
// hours behind org 1's. Two of its users have an MFA factor removed; one
// re-enrols an hour later, an event Okta persists late, after org 1's
// newer events were read. Fired by org 1's time, both removals would alert
// at once, the answered one too (an invented alert); fired by org 2's
// own time, only the unanswered removal alerts, and only once org 2's log
// passes its deadline.
func TestManyOrgsLaggingOrgAbsences(t *testing.T) {
	const absenceRule = "Okta.Elastic.MFADeactivatedNotReactivated"
	now := time.Now().UTC()
	removedAt := now.Add(-30 * time.Hour)

	var sims []*oktasim.Sim
	var urls []string
	for range 2 {
		sim := oktasim.New(oktasim.Options{Token: token, RateLimit: 50, RateWindow: time.Second})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		sims, urls = append(sims, sim), append(urls, srv.URL)
	}
	// Org 1: an hour of ordinary traffic up to now.
	org1 := oktasim.NewGenerator(7).Backlog(300, now.Add(-time.Hour), 10*time.Second)
	sims[0].Persist(org1...)
	// Org 2: the two removals, 30 hours ago.
	persistRaw(t, sims[1],
		userEvent(t, "lag-removed-answered", removedAt, "user.mfa.factor.deactivate", "00uadmin", "00uanswered"),
		userEvent(t, "lag-removed-unanswered", removedAt.Add(time.Minute), "user.mfa.factor.deactivate", "00uadmin", "00uunanswered"))

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1)) // empty, as a new user's
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	env := append(crashEnv(urls[0], brokers, t.TempDir()),
		"OKTA_ORG1_URL="+urls[0], "OKTA_ORG1_API_TOKEN="+token,
		"OKTA_ORG2_URL="+urls[1], "OKTA_ORG2_API_TOKEN="+token,
		"OKTA_INITIAL_LOOKBACK=40h")
	run := startPipeline(t, "many-orgs-to-kafka.yaml", env...)
	anyKey := func([]byte, string) bool { return true }
	read := func() *committedContents { return readCommittedKeyed(t, brokers, anyKey) }
	waitEvents := func(n int) {
		testkit.Until(t, fmt.Sprintf("%d events in Kafka", n), func() (bool, string) {
			got := len(read().events)
			return got >= n, fmt.Sprintf("%d of %d events", got, n)
		})
	}
	waitEvents(len(org1) + 2)
	if got := read().alertRules[absenceRule]; got != 0 {
		t.Fatalf("%d absence alerts after org 1's newer events: org 2's removals fired by another org's time", got)
	}

	// Org 2's log goes on: the re-enrolment, persisted late, then an event
	// 13 hours after the removals, past their deadline (12h + 15m grace).
	persistRaw(t, sims[1],
		userEvent(t, "lag-reenrolled", removedAt.Add(time.Hour), "user.mfa.factor.activate", "00uanswered", ""),
		userEvent(t, "lag-later", removedAt.Add(13*time.Hour), "user.session.end", "00uother", ""))
	waitEvents(len(org1) + 4)
	testkit.Until(t, "the unanswered removal's absence alert", func() (bool, string) {
		got := read().alertRules[absenceRule]
		return got >= 1, fmt.Sprintf("%d absence alerts", got)
	})
	time.Sleep(1500 * time.Millisecond) // an alert too many would be on its way
	run.terminate(t, 15*time.Second)

	got := read()
	if n := got.alerts[absenceRule+"/lag-removed-unanswered"]; n != 1 || got.alertRules[absenceRule] != 1 {
		t.Errorf("absence alerts %d in all, %d on the unanswered removal; want that one only, once (alerts: %v)",
			got.alertRules[absenceRule], n, got.alerts)
	}
	if t.Failed() {
		t.Logf("output:\n%s", tail(run.output.String(), 5000))
	}
}

// userEvent is a System Log event of eventType by the user actor, on the
// user target (none when empty), published at.
func userEvent(t *testing.T, uuid string, at time.Time, eventType, actor, target string) json.RawMessage {
	t.Helper()
	ev := map[string]any{
		"uuid": uuid, "published": at.Format(time.RFC3339Nano), "eventType": eventType,
		"version": "0", "severity": "INFO", "displayMessage": eventType,
		"actor":   map[string]any{"id": actor, "type": "User", "alternateId": actor + "@example.org"},
		"outcome": map[string]any{"result": "SUCCESS"},
	}
	if target != "" {
		ev["target"] = []any{map[string]any{"id": target, "type": "User", "alternateId": target + "@example.org"}}
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func persistRaw(t *testing.T, sim *oktasim.Sim, evs ...json.RawMessage) {
	t.Helper()
	if err := sim.PersistRaw(evs...); err != nil {
		t.Fatal(err)
	}
}
