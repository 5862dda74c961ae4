package e2e

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/oktasim"
)

// Two orgs in one process (config/many-orgs-to-kafka.yaml), the second's
// log eight hours behind the first's in event time, SIGKILLed at random
// instants and restarted on its state file and cursors, then drained: both
// orgs' events all reach Kafka, keyed by their org, and the alerts are
// those of an uninterrupted run: the same alert_ids with the same events
// and counts as each org's log gives alone, uninterrupted, in the
// single-org config (at least once each: both configs are at-least-once).
// State is scoped by org and ages by each org's own event time; were the
// lagging org's state aged by the other org's time, or its time lost in a
// restart, its attacks would alert differently.
func TestManyOrgsCrashWithLaggingOrg(t *testing.T) {
	if testing.Short() {
		t.Skip("many-orgs crash suite: about half a minute")
	}
	const perOrg, kills = 6000, 5
	// The second org's log ends 8 hours before the first's: further behind
	// than max_lateness (crashEnv's 6h), so the first org's time is past
	// all of it.
	const lag, lookback = 8 * time.Hour, "14h"
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OKTADETECT_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rnd := rand.New(rand.NewPCG(seed, 2))
	t.Logf("many-orgs crash suite: 2 × %d events, %d kills, seed %d (OKTADETECT_CRASH_SEED to replay)", perOrg, kills, seed)

	orgOf := map[string]string{} // uuid → org host
	var orgURLs, hosts []string
	var counts []int
	for _, lag := range []time.Duration{0, lag} {
		// 3 pages of 200 a second per org: the backlog takes about 10 s,
		// so the kills fall all through it.
		sim := oktasim.New(oktasim.Options{Token: token, RateLimit: 3, RateWindow: time.Second})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		backlog := crashBacklogUntil(oktasim.NewGenerator(rnd.Int64()), perOrg, time.Now().Add(-lag))
		sim.Persist(backlog...)
		for _, id := range uuidsOf(backlog) {
			orgOf[id] = u.Host
		}
		orgURLs, hosts, counts = append(orgURLs, srv.URL), append(hosts, u.Host), append(counts, len(uuidsOf(backlog)))
	}
	total := len(orgOf)
	// crashEnv's settings (its single org's are not read by this config),
	// the two orgs, and a lookback over both logs.
	env := func(brokers []string, state string) []string {
		return append(crashEnv(orgURLs[0], brokers, state),
			"OKTA_ORG1_URL="+orgURLs[0], "OKTA_ORG1_API_TOKEN="+token,
			"OKTA_ORG2_URL="+orgURLs[1], "OKTA_ORG2_API_TOKEN="+token,
			"OKTA_INITIAL_LOOKBACK="+lookback)
	}
	keyedByOrg := func(key []byte, uuid string) bool { return string(key) == orgOf[uuid] }

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1)) // empty, as a new user's
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	runEnv := env(brokers, t.TempDir())
	read := func() *committedContents { return readCommittedKeyed(t, brokers, keyedByOrg) }
	start := func() *pipelineRun { return startPipeline(t, "many-orgs-to-kafka.yaml", runEnv...) }

	killRepeatedly(t, rnd, kills, start, func() int { return len(read().events) }, total)
	run := start()
	got := drain(t, run, read, total)

	missing := map[string]int{}
	for id, host := range orgOf {
		if got.events[id] == 0 {
			missing[host]++
		}
	}
	if len(missing) > 0 || len(got.events) != total {
		t.Errorf("want every event of both orgs: missing by org %v; %d distinct of %d", missing, len(got.events), total)
	}
	for _, h := range hosts {
		for _, id := range []string{"Okta.BruteForceLogins", "Okta.GeographicallyImprobableAccess"} {
			if got.orgRules[h+" "+id] == 0 {
				t.Errorf("no %s alert for org %s after the crashes (alerts by org and rule: %v)", id, h, got.orgRules)
			}
		}
	}
	// What each org alone gives, uninterrupted, in the single-org config
	// (alert ids are scoped by the org there too): a second org, behind or
	// ahead, changes nothing of an org's alerts.
	// The two runs are independent (each its own Kafka and simulator): side
	// by side.
	alone := make([]map[string]map[string]int, len(orgURLs))
	t.Run("each org alone", func(t *testing.T) {
		for i, orgURL := range orgURLs {
			t.Run(fmt.Sprintf("org%d", i+1), func(t *testing.T) {
				t.Parallel()
				alone[i] = uninterruptedAlerts(t, "okta-to-kafka-at-least-once.yaml", func(brokers []string, state string) []string {
					return append(crashEnv(orgURL, brokers, state), "OKTA_INITIAL_LOOKBACK="+lookback)
				}, counts[i], keyedByUUID)
			})
		}
	})
	want := map[string]map[string]int{}
	for _, a := range alone {
		maps.Copy(want, a)
	}
	compareAlerts(t, want, got.byAlertID, false)
	t.Logf("%d events of %d, %d alert records; by org and rule: %v", len(got.events), total, sum(got.alerts), fmt.Sprint(got.orgRules))
	if t.Failed() {
		t.Logf("last run output:\n%s", tail(run.output.String(), 5000))
	}
}
