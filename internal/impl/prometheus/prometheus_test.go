package prometheus

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestScrapeBenthosAndCustomMetrics runs a stream with the exporter on
// Benthos' HTTP server and scrapes /metrics like Prometheus would.
func TestScrapeBenthosAndCustomMetrics(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := service.NewStreamBuilder()
	if err := b.SetYAML(fmt.Sprintf(`
http:
  enabled: true
  address: %s
input:
  generate:
    interval: 10ms
    mapping: root = "x"
pipeline:
  processors:
    - metric:
        type: counter
        name: okta_requests_total
        labels:
          org: acme
output:
  drop: {}
metrics:
  prometheus: {}
logger:
  level: warn
`, addr)); err != nil {
		t.Fatal(err)
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	defer s.StopWithin(5 * time.Second)

	want := []string{
		`input_received_total{label="",path="root.input"}`,
		"# HELP input_received_total Messages received by the input.",
		`okta_requests_total{label="",org="acme",path="root.pipeline.processors.0"}`,
		`output_latency_seconds_bucket{`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	}
	deadline := time.Now().Add(testkit.Patience)
	var body string
	for time.Now().Before(deadline) {
		body = testkit.Scrape(t, "http://"+addr+"/metrics")
		if containsAll(body, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("scrape lacks some of %q:\n%s", want, body)
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"input_received":      "input_received",
		"okta_requests_total": "okta_requests_total",
		"a.b-c/d":             "a_b_c_d",
		"9lives":              "_9lives",
		"ns:sub":              "ns:sub",
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitizeLabel("a:b"); got != "a_b" {
		t.Errorf("sanitizeLabel kept a colon: %q", got)
	}
	for in, want := range map[string]string{
		"input_received":          "input_received_total",
		"cel_detect_events_total": "cel_detect_events_total",
	} {
		if got := counterName(in); got != want {
			t.Errorf("counterName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"output_latency_ns": "output_latency_seconds",
		"rule_eval_seconds": "rule_eval_seconds",
		"processor_latency": "processor_latency_seconds",
	} {
		if got := timerName(in); got != want {
			t.Errorf("timerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConflictingRegistrationIsDropped: a name reused with another kind or
// label set must not panic the pipeline.
func TestConflictingRegistrationIsDropped(t *testing.T) {
	conf, err := prometheusSpec().ParseYAML("runtime_metrics: false", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newExporter(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.NewCounterCtor("dup_total", "a")("1").Incr(2)
	e.NewCounterCtor("dup", "a")("1").Incr(3) // the same counter once _total is added
	e.NewGaugeCtor("dup_total", "a")("1").Set(7)
	e.NewCounterCtor("dup_total", "b")("1").Incr(1)
	e.NewTimerCtor("lat_ns")().Timing(int64(1500 * time.Millisecond))
	rec := httptest.NewRecorder()
	e.HandlerFunc()(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := rec.Body.String()
	for _, w := range []string{`dup_total{a="1"} 5`, "lat_seconds_sum 1.5", "lat_seconds_count 1"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

// Help texts say what a metric is; one nobody described says so and names
// its kind, instead of pretending.
func TestHelpTexts(t *testing.T) {
	for _, c := range []struct{ name, kind, want string }{
		{"input_received", "counter", "Messages received by the input."},
		{"okta_requests_total", "counter", "System Log requests sent to Okta, by HTTP status"},
		{"cel_detect_eval_ns", "timer", "in seconds"},
		{"my_counter", "counter", "Benthos counter my_counter (no description"},
		{"my_latency", "timer", "Benthos timer my_latency, in seconds (no description"},
	} {
		if got := helpText(c.name, c.kind); !strings.Contains(got, c.want) {
			t.Errorf("helpText(%q, %q) = %q, want it to contain %q", c.name, c.kind, got, c.want)
		}
	}
	for name, h := range help {
		if !strings.HasSuffix(h, ".") || len(h) < 20 {
			t.Errorf("help[%q] = %q: say what it is, as a sentence", name, h)
		}
	}
}
