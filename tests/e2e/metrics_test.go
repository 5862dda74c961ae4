package e2e

import (
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The shipped Kafka pipeline serves Prometheus metrics: Benthos' own and
// those of our three components, and never the token.
func TestShippedPipelineServesMetrics(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, eventsTopic, alertsTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	uuids := seedAttacks(sim, oktasim.NewGenerator(13), 200)
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	addr := freeAddr(t)
	cmd := exec.Command(binary, "-c", configPath("okta-to-kafka.yaml"))
	cmd.Env = environ("OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token, "OKTA_POLL_INTERVAL=300ms",
		"OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS="+brokers, "OKTADETECT_STATE_DIR="+t.TempDir(),
		"OKTADETECT_HTTP_ADDRESS="+addr)
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	consumeUntil(t, brokers, 60*time.Second, hasAll(uuids))

	// Benthos adds the labels label and path to every component metric.
	want := []string{
		`okta_requests_total{label="",path="root.input",status="200"}`, "okta_events_total{",
		"okta_cursor_commits_total{", "okta_rate_limit_remaining{", "okta_lag_seconds{",
		"cel_detect_events_total{", `rule="Okta.AdminRoleAssigned"`,
		"input_received_total{", "output_sent_total{", "go_goroutines",
	}
	var body string
	testkit.Until(t, "/metrics to serve every component's metrics", func() (bool, string) {
		body = testkit.Scrape(t, "http://"+addr+"/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false, "no " + w + " in:\n" + body
			}
		}
		return true, ""
	})
	if strings.Contains(body, token) || strings.Contains(out.String(), token) {
		t.Fatal("the API token appears in the metrics or the logs")
	}
}
