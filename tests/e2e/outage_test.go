package e2e

// The outage suite: Kafka unavailable for 30 s while events keep coming;
// Okta answering 500, 502 (a gateway's HTML), 503, too slowly (a timeout),
// with a connection reset, truncated JSON, an HTML login page, an empty body,
// a page without its next link, and 429 for a whole window; Okta's clock an
// hour ahead of or behind the local one. For each: every event arrives, the
// process keeps running, and the condition is a clear log line and a metric.
//
// The three tests run in parallel (about 45 s of wall time, the Kafka outage
// being the longest); each Okta fault runs in sequence within one process.

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// outageStdoutConfig is config/okta-to-stdout.yaml with the input's advanced
// fields the suite needs (a short request timeout, so a slow Okta is a
// timeout within the test) and the prometheus exporter.
const outageStdoutConfig = `
http:
  address: ${OKTADETECT_HTTP_ADDRESS}
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    api_token: ${OKTA_API_TOKEN}
    poll_interval: 200ms
    initial_lookback: 2h
    rate_limit_share: 1
    timeout: 1s
    checkpoint_cache: okta_cursor
cache_resources:
  - label: okta_cursor
    file:
      directory: ${OKTADETECT_STATE_DIR}
output:
  stdout:
    codec: lines
metrics:
  prometheus: {}
logger:
  level: INFO
  format: logfmt
`

// startOutageStdout runs the binary on outageStdoutConfig, serving metrics
// on the returned address.
func startOutageStdout(t *testing.T, orgURL string) (*stdoutRun, string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "outage.yaml")
	if err := os.WriteFile(cfg, []byte(outageStdoutConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(binary, "-c", cfg)
	cmd.Env = environ("OKTA_ORG_URL="+orgURL, "OKTA_API_TOKEN="+token,
		"OKTADETECT_STATE_DIR="+t.TempDir(), "OKTADETECT_HTTP_ADDRESS="+addr)
	r := runStdout(t, cmd)
	return r, addr
}

// stillRunning fails the test if the process has exited.
func stillRunning(t *testing.T, r *stdoutRun) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("oktadetect exited:\n%s", r.stderr.String())
	default:
	}
}

// metricValue sums the samples of metric whose labels contain every one of
// labels, in a Prometheus text exposition.
func metricValue(body, metric string, labels ...string) (float64, bool) {
	sum, found := 0.0, false
	for _, line := range strings.Split(body, "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || name != metric {
			continue
		}
		lbls, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(lbls, l)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// waitMetric scrapes until metric{labels} reaches at least min.
func waitMetric(t *testing.T, addr, metric string, min float64, labels ...string) float64 {
	t.Helper()
	deadline := time.Now().Add(testkit.Patience)
	for {
		body := testkit.Scrape(t, "http://"+addr+"/metrics")
		v, _ := metricValue(body, metric, labels...)
		if v >= min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s{%s} = %v, want ≥ %v:\n%s", metric, strings.Join(labels, ","), v, min, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// One process, every Okta fault in turn. Each step persists new events,
// injects the fault and waits until the new events are printed; then it
// checks the log line the fault must produce and the metric that counts it.
func TestOutageOktaFaults(t *testing.T) {
	t.Parallel()
	start := time.Now()
	// Three-second rate-limit windows (aligned, as Okta's minutes are), so
	// "429 for a whole window" fits in the test.
	sim := oktasim.New(oktasim.Options{Token: token, RateLimit: 1000, RateWindow: 3 * time.Second})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	g := oktasim.NewGenerator(41)
	var all []oktasim.LogEvent // every event persisted so far
	persist := func(n int) {
		evs := g.Backlog(n, time.Now().Add(-time.Minute), time.Millisecond)
		sim.Persist(evs...)
		all = append(all, evs...)
	}
	persist(300)
	run, addr := startOutageStdout(t, srv.URL)
	seen := map[string]int{}
	collect(t, run, seen, len(all), 30*time.Second)

	steps := []struct {
		name   string
		faults []oktasim.Fault
		log    string   // a line the fault must add to the log
		metric []string // okta metric and labels the fault must increase
	}{
		{"500", []oktasim.Fault{{Kind: oktasim.FaultStatus}}, "Okta server error from 127.0.0.1",
			[]string{"okta_requests_total", `status="500"`}},
		{"502 gateway HTML", []oktasim.Fault{{Kind: oktasim.FaultStatus, Status: 502}}, "Okta server error from 127.0.0.1",
			[]string{"okta_requests_total", `status="502"`}},
		{"503", []oktasim.Fault{{Kind: oktasim.FaultStatus, Status: 503}}, "E0000010",
			[]string{"okta_requests_total", `status="503"`}},
		{"timeout", []oktasim.Fault{{Kind: oktasim.FaultSlow, Delay: 10 * time.Second}}, "Client.Timeout exceeded",
			[]string{"okta_requests_total", `status="error"`}},
		// net/http sends a GET again, once, when a reused connection is
		// reset: two resets make one reach the input.
		{"connection reset", []oktasim.Fault{{Kind: oktasim.FaultReset}, {Kind: oktasim.FaultReset}}, "failed: ",
			[]string{"okta_requests_total", `status="error"`}},
		{"truncated JSON", []oktasim.Fault{{Kind: oktasim.FaultTruncated}}, "System Log response is not valid JSON",
			[]string{"okta_response_errors_total", `reason="invalid_json"`}},
		{"HTML login page", []oktasim.Fault{{Kind: oktasim.FaultHTML}}, `System Log response is not a JSON array (Content-Type \"text/html`,
			[]string{"okta_response_errors_total", `reason="not_json_array"`}},
		{"empty body", []oktasim.Fault{{Kind: oktasim.FaultEmptyBody}}, "the body is empty",
			[]string{"okta_response_errors_total", `reason="empty_body"`}},
		{"next link missing", []oktasim.Fault{{Kind: oktasim.FaultNoNext}}, "Okta sent no next link",
			[]string{"okta_response_errors_total", `reason="missing_next_link"`}},
		{"429 for a whole window", []oktasim.Fault{{Kind: oktasim.FaultRateLimit, RetryAfter: 3 * time.Second}}, "Okta rate limit reached for 127.0.0.1",
			[]string{"okta_requests_total", `status="429"`}},
	}
	for _, s := range steps {
		stepStart := time.Now()
		logsBefore := strings.Count(run.stderr.String(), s.log)
		before, _ := metricValue(testkit.Scrape(t, "http://"+addr+"/metrics"), s.metric[0], s.metric[1:]...)
		sim.Inject(s.faults...)
		persist(20)
		collect(t, run, seen, len(all), 30*time.Second)
		// The faults were queued before the events: a response with the
		// events means every fault was served before it.
		deadline := time.Now().Add(testkit.Patience)
		for strings.Count(run.stderr.String(), s.log) <= logsBefore {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no log line with %q", s.name, s.log)
			}
			time.Sleep(50 * time.Millisecond)
		}
		after := waitMetric(t, addr, s.metric[0], before+1, s.metric[1:]...)
		stillRunning(t, run)
		t.Logf("%-22s recovered in %v; %s{%s} %v → %v", s.name, time.Since(stepStart).Round(10*time.Millisecond),
			s.metric[0], s.metric[1], before, after)
	}

	// The 429: no request until the reset Okta announced (3 s), then the
	// same link again.
	reqs := sim.Requests()
	for i, r := range reqs {
		if r.Status != 429 {
			continue
		}
		if i+1 >= len(reqs) {
			t.Fatal("no request after the 429")
		}
		if gap := reqs[i+1].At.Sub(r.At); gap < 2500*time.Millisecond || gap > 8*time.Second {
			t.Errorf("next request %v after the 429, want about the 3 s until the reset", gap)
		}
		if reqs[i+1].URL != r.URL {
			t.Errorf("after the 429 the input requested %s, want the same link %s", reqs[i+1].URL, r.URL)
		}
	}
	for _, e := range all {
		if seen[e.UUID] == 0 {
			t.Errorf("event %s lost", e.UUID)
		}
	}
	stillRunning(t, run)
	t.Logf("%d events, none lost, %d printed twice; %d requests; %v", len(all), dupCount(seen), len(reqs), time.Since(start).Round(100*time.Millisecond))
}

func dupCount(seen map[string]int) int {
	d := 0
	for _, n := range seen {
		d += n - 1
	}
	return d
}

// Okta's clock an hour ahead of and an hour behind the local clock: the input
// warns about the skew, publishes it, reads everything, and still waits for a
// 429's reset by Okta's Date (3 s), neither an hour nor not at all.
func TestOutageClockSkew(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for _, skew := range []time.Duration{time.Hour, -time.Hour} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clockSkewRun(t, skew)
		}()
	}
	wg.Wait()
}

func clockSkewRun(t *testing.T, skew time.Duration) {
	start := time.Now()
	now := func() time.Time { return time.Now().Add(skew) }
	sim := oktasim.New(oktasim.Options{Token: token, Now: now, RateLimit: 1000, RateWindow: 3 * time.Second})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	g := oktasim.NewGenerator(int64(42 + skew/time.Hour))
	evs := g.Backlog(200, now().Add(-30*time.Minute), time.Second)
	sim.Persist(evs...)
	run, addr := startOutageStdout(t, srv.URL)
	seen := map[string]int{}
	if !collectOK(run, seen, len(evs), 30*time.Second) {
		t.Errorf("skew %v: %d of %d events", skew, len(seen), len(evs))
		return
	}
	sim.Inject(oktasim.Fault{Kind: oktasim.FaultRateLimit, RetryAfter: 3 * time.Second})
	more := g.Backlog(20, now().Add(-time.Minute), time.Millisecond)
	sim.Persist(more...)
	evs = append(evs, more...)
	if !collectOK(run, seen, len(evs), 30*time.Second) {
		t.Errorf("skew %v: %d of %d events after a 429", skew, len(seen), len(evs))
		return
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	// Date has a resolution of a second: 59m59s to 1h0m1s.
	if re := regexp.MustCompile(`Okta's clock \(Date header of [^)]*\) is (59m59s|1h0m[01]s) ` + dir + ` the local clock`); !re.MatchString(run.stderr.String()) {
		t.Errorf("skew %v: no warning matching %s:\n%s", skew, re, run.stderr.String())
	}
	body := testkit.Scrape(t, "http://"+addr+"/metrics")
	if v, _ := metricValue(body, "okta_clock_skew_seconds"); v < skew.Seconds()-5 || v > skew.Seconds()+5 {
		t.Errorf("skew %v: okta_clock_skew_seconds = %v", skew, v)
	}
	if v, _ := metricValue(body, "okta_requests_total", `status="429"`); v != 1 {
		t.Errorf("skew %v: okta_requests_total{status=429} = %v, want 1", skew, v)
	}
	reqs := sim.Requests()
	for i, r := range reqs {
		if r.Status == 429 && i+1 < len(reqs) {
			if gap := reqs[i+1].At.Sub(r.At); gap < 2500*time.Millisecond || gap > 8*time.Second {
				t.Errorf("skew %v: next request %v after the 429, want about 3 s (the reset by Okta's Date)", skew, gap)
			}
		}
	}
	for _, e := range evs {
		if seen[e.UUID] == 0 {
			t.Errorf("skew %v: event %s lost", skew, e.UUID)
		}
	}
	select {
	case <-run.done:
		t.Errorf("skew %v: oktadetect exited", skew)
	default:
	}
	t.Logf("skew %+v: %d events, none lost; warned and waited out the 429 by Okta's clock; %v", skew, len(evs), time.Since(start).Round(100*time.Millisecond))
}

// collectOK is collect for goroutines other than the test's: it reports
// instead of failing.
func collectOK(r *stdoutRun, seen map[string]int, want int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for len(seen) < want {
		select {
		case line, ok := <-r.lines:
			if !ok {
				return false
			}
			if m := uuidRE.FindStringSubmatch(line); m != nil {
				seen[m[1]]++
			}
		case <-deadline:
			return false
		}
	}
	return true
}

var uuidRE = regexp.MustCompile(`"uuid":"([^"]+)"`)

// Kafka refuses every produce request for 30 s while Okta keeps receiving
// events; the pipeline (the shipped exactly-once config) is not restarted.
// It keeps running, says so in its log and metrics, and once Kafka is back
// every event is in okta.system_log exactly once for a read_committed consumer.
func TestOutageKafkaUnavailable30s(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Second
	start := time.Now()
	cluster, down, refused := switchableKafka(t)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	g := oktasim.NewGenerator(43)
	all := seedAttacks(sim, g, 300)

	addr := freeAddr(t)
	cmd := exec.Command(binary, "-c", configPath("okta-to-kafka.yaml"))
	cmd.Env = environ("OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token, "OKTA_POLL_INTERVAL=300ms",
		"OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS="+brokers, "OKTADETECT_STATE_DIR="+t.TempDir(),
		"OKTADETECT_HTTP_ADDRESS="+addr)
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	recordOutput(out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(25 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("oktadetect output:\n%s", out.String())
		}
	}()
	consumeUntil(t, brokers, 60*time.Second, hasAll(all))
	before := testkit.Scrape(t, "http://"+addr+"/metrics")
	sentBefore, _ := metricValue(before, "output_sent_total")
	commitsBefore, _ := metricValue(before, "okta_cursor_commits_total")

	// The outage: events keep arriving in Okta every second.
	down.Store(true)
	outageStart := time.Now()
	for time.Since(outageStart) < outage {
		evs := g.Backlog(10, time.Now().Add(-time.Second), time.Millisecond)
		sim.Persist(evs...)
		all = append(all, uuidsOf(evs)...)
		time.Sleep(time.Second)
		select {
		case <-exited:
			t.Fatalf("oktadetect exited during the Kafka outage:\n%s", out.String())
		default:
		}
	}
	body := testkit.Scrape(t, "http://"+addr+"/metrics")
	logs := out.String()
	down.Store(false)
	if refused.Load() == 0 {
		t.Fatal("the pipeline never tried to write during the outage")
	}
	// The input sees the output stall: pages wait for an acknowledgement
	// and the cursor does not move; kafka_producer says what it waits for.
	sentDuring, _ := metricValue(body, "output_sent_total")
	if sentDuring != sentBefore {
		t.Errorf("output_sent_total went from %v to %v while Kafka refused every write", sentBefore, sentDuring)
	}
	if commits, _ := metricValue(body, "okta_cursor_commits_total"); commits != commitsBefore {
		t.Errorf("okta_cursor_commits_total went from %v to %v while Kafka refused every write", commitsBefore, commits)
	}
	stalled, _ := metricValue(body, "okta_unacked_oldest_seconds")
	if stalled < 15 {
		t.Errorf("okta_unacked_oldest_seconds = %v after a %v Kafka outage, want ≥ 15", stalled, outage)
	}
	if !strings.Contains(logs, "not acknowledged by the output after") || !strings.Contains(logs, "level=warning") {
		t.Errorf("no warning about the stalled output in the log during the outage:\n%s", logs)
	}
	if !strings.Contains(logs, "Kafka has not acknowledged the") {
		t.Errorf("kafka_producer did not log that its transaction waits on Kafka:\n%s", logs)
	}

	got := consumeUntil(t, brokers, 60*time.Second, hasAll(all))
	recovered := time.Since(outageStart) - outage
	time.Sleep(time.Second)
	got = consumeUntil(t, brokers, 30*time.Second, hasAll(all))
	for _, u := range all {
		if n := got.events[u]; n != 1 {
			t.Errorf("event %s is in %s %d times, want exactly once", u, eventsTopic, n)
		}
	}
	select {
	case <-exited:
		t.Fatal("oktadetect exited")
	default:
	}
	if !strings.Contains(out.String(), "The output acknowledges pages again") {
		t.Error("no log line saying the output recovered")
	}
	t.Logf("%d produce requests refused in %v; okta_unacked_oldest_seconds reached %v; %d events exactly once, all in Kafka %v after it came back; %v",
		refused.Load(), outage, stalled, len(all), recovered.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
}
