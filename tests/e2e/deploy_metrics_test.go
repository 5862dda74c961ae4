package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// scrapeGenerated are the series Prometheus adds to every target itself.
var scrapeGenerated = map[string]bool{"up": true}

// Every metric the Grafana dashboard and the alert rules in deploy/ read is
// exported by the real binary running the shipped pipelines of
// deploy/kubernetes (the exactly-once poller, stage 1 and two stage-2
// workers) against the simulator and kfake; the faults that make the error
// counters appear are provoked. Each live scrape
// passes `promtool check metrics`, and no metric lacks a help text.
func TestDeployMetricsAreExported(t *testing.T) {
	want := deployMetricNames(t)

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, eventsTopic), kfake.SeedTopics(3, alertsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	g := oktasim.NewGenerator(77)
	seedAttacks(sim, g, 300)
	// Events of the wrong shape make rules error (cel_detect_rule_errors_total).
	published := time.Now().Add(-30 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
	for _, raw := range []string{
		`{"uuid":"deploy-wrong-types","published":"` + published + `","eventType":"user.session.start","actor":12,` +
			`"client":"nowhere","outcome":["FAILURE"],"target":{"id":1},"securityContext":true}`,
		`{"uuid":"deploy-wrong-types-auth","published":"` + published + `","eventType":"user.authentication.auth_via_mfa",` +
			`"outcome":{"result":false,"reason":[]},"client":{"ipAddress":null,"userAgent":{"rawUserAgent":1}}}`,
	} {
		if err := sim.PersistRaw(json.RawMessage(raw)); err != nil {
			t.Fatal(err)
		}
	}
	// Okta misbehaves on the first requests: okta_requests_total{status="503"},
	// okta_response_errors_total, and a page without its next link, read
	// again (okta_duplicates_dropped_total).
	sim.Inject(oktasim.Fault{Kind: oktasim.FaultStatus, Status: 503}, oktasim.Fault{Kind: oktasim.FaultTruncated},
		oktasim.Fault{Kind: oktasim.FaultNoNext})

	w1Addr, w2Addr, s1Addr, pAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	group := "KAFKA_CONSUMER_GROUP=e2e-deploy-metrics"
	w1 := startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, group, "OKTADETECT_HTTP_ADDRESS="+w1Addr)
	testkit.Until(t, "worker 1 owns partitions", func() (bool, string) {
		return strings.Contains(w1.String(), "Assigned"), tail(w1.String(), 2000)
	})
	stateDir := t.TempDir()
	startStage(t, "stage1-okta-to-kafka.yaml", "OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token,
		"OKTA_POLL_INTERVAL=300ms", "OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS="+brokers,
		"OKTADETECT_STATE_DIR="+stateDir, "OKTADETECT_HTTP_ADDRESS="+s1Addr)
	// The single-process exactly-once pipeline, the image's default.
	startStage(t, "okta-to-kafka.yaml", "OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token,
		"OKTA_POLL_INTERVAL=300ms", "OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS="+brokers,
		"KAFKA_TRANSACTIONAL_ID=e2e-deploy-metrics", "OKTADETECT_HTTP_ADDRESS="+pAddr)

	// The cursor is saved; then its directory goes away, and the next pages'
	// cursors cannot be saved (okta_checkpoint_errors_total).
	testkit.Until(t, "stage 1 commits a cursor", func() (bool, string) {
		v, _ := metricValue(testkit.Scrape(t, "http://"+s1Addr+"/metrics"), "okta_cursor_commits_total")
		return v > 0, fmt.Sprintf("okta_cursor_commits_total = %v", v)
	})
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	sim.Persist(g.Backlog(20, time.Now().Add(-time.Minute), time.Second)...)

	// Worker 2 joins: worker 1 gives partitions up (kafka_consumer_revoked_partitions_total).
	startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, group, "OKTADETECT_HTTP_ADDRESS="+w2Addr)

	addrs := map[string]string{"okta-to-kafka": pAddr, "stage 1": s1Addr, "worker 1": w1Addr, "worker 2": w2Addr}
	var bodies map[string]string
	testkit.Until(t, "every metric of deploy/ in the scrapes", func() (bool, string) {
		bodies = map[string]string{}
		types := map[string]string{}
		for who, addr := range addrs {
			bodies[who] = testkit.Scrape(t, "http://"+addr+"/metrics")
			for name, kind := range metricTypes(bodies[who]) {
				types[name] = kind
			}
		}
		var missing []string
		for name, where := range want {
			if !exported(types, name) && !scrapeGenerated[name] {
				missing = append(missing, fmt.Sprintf("%s (used in %s)", name, strings.Join(where, "; ")))
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, "not exported: " + strings.Join(missing, ", ")
	})
	for who, body := range bodies {
		if strings.Contains(body, "(no description") {
			t.Errorf("%s exports a metric without a help text (add it to internal/impl/prometheus/help.go):\n%s", who, helpless(body))
		}
	}
	t.Run("promtool check metrics", func(t *testing.T) {
		promtool := testkit.Promtool(t)
		for who, body := range bodies {
			checkMetrics(t, promtool, who, body)
		}
	})
}

// deployMetricNames maps each metric name read by deploy/'s dashboards and
// alert rules to where it is used.
func deployMetricNames(t *testing.T) map[string][]string {
	t.Helper()
	queries, err := testkit.DeployQueries(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for where, q := range queries {
		for _, n := range testkit.MetricNames(q) {
			want[n] = append(want[n], where)
		}
	}
	for _, where := range want {
		sort.Strings(where)
	}
	return want
}

// metricTypes reads the "# TYPE name kind" lines of a scrape.
func metricTypes(body string) map[string]string {
	types := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

// exported reports whether name is a metric family of the scrape, or a
// histogram's (or summary's) _bucket, _sum or _count series.
func exported(types map[string]string, name string) bool {
	if _, ok := types[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			kind := types[base]
			return kind == "histogram" || (kind == "summary" && suffix != "_bucket")
		}
	}
	return false
}

func helpless(body string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "# HELP ") && strings.Contains(line, "(no description") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// checkMetrics runs `promtool check metrics` on a scrape; any complaint
// (a counter without _total, a missing help text, …) fails the test.
func checkMetrics(t *testing.T, promtool, who, body string) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on %s's /metrics: %v\n%s", who, err, out)
	}
}
