package e2e

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// SIGTERM while Kafka refuses every write, so a transaction is stuck in
// flight: the binary still exits within shutdown_timeout (plus start-up
// slack), with the batch left uncommitted; once Kafka is back a restart
// delivers every event exactly once.
func TestSIGTERMWithKafkaDownExitsInBoundedTime(t *testing.T) {
	const shutdownTimeout = 4 * time.Second
	cluster, down, refused := switchableKafka(t)
	brokers := cluster.ListenAddrs()
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	uuids := seedAttacks(sim, oktasim.NewGenerator(21), 2000)
	state := t.TempDir()
	env := []string{
		"OKTA_ORG_URL=" + srv.URL, "OKTA_API_TOKEN=" + token,
		"OKTA_POLL_INTERVAL=300ms", "OKTA_INITIAL_LOOKBACK=2h", "OKTA_PAGE_LIMIT=500",
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"OKTADETECT_STATE_DIR=" + state, "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0",
		"OKTADETECT_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
	}

	down.Store(true)
	run := startPipeline(t, "okta-to-kafka.yaml", env...)
	deadline := time.Now().Add(testkit.Patience)
	for refused.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline never tried to write:\n%s", run.output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := run.terminate(t, shutdownTimeout+5*time.Second)
	t.Logf("SIGTERM with a transaction stuck on Kafka: exited in %v (shutdown_timeout %v), %v", took.Round(time.Millisecond), shutdownTimeout, run.err)
	// The detection state is committed with the pages (state_topic): none
	// without them.
	if got := readCommitted(t, brokers); len(got.events) != 0 {
		t.Errorf("%d events committed while Kafka refused writes", len(got.events))
	}
	if n := stateRecords(t, brokers); n != 0 {
		t.Errorf("%d detection state records written while Kafka refused writes", n)
	}

	down.Store(false)
	run = startPipeline(t, "okta-to-kafka.yaml", env...)
	deadline = time.Now().Add(60 * time.Second)
	var got *committedContents
	for {
		got = readCommitted(t, brokers)
		if len(got.events) >= len(uuids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	took = run.terminate(t, shutdownTimeout+5*time.Second)
	if run.err != nil {
		t.Errorf("exit status after SIGTERM: %v", run.err)
	}
	t.Logf("SIGTERM when drained: exited in %v", took.Round(time.Millisecond))
	if n := stateRecords(t, brokers); n == 0 {
		t.Errorf("no detection state in %s after the pages were committed", stateTopic)
	}
	got = readCommitted(t, brokers)
	for _, u := range uuids {
		if got.events[u] != 1 {
			t.Errorf("event %s committed %d times, want once", u, got.events[u])
		}
	}
	for k, n := range got.alerts {
		if n != 1 {
			t.Errorf("alert %s committed %d times", k, n)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", tail(run.output.String(), 4000))
	}
}
