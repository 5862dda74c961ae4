package testkit

import (
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (rule) (rate(cel_detect_matches_total{job=~"$job",rule!="x"}[$__rate_interval]))`:           {"cel_detect_matches_total"},
		`okta_events_total unless ignoring (status) (increase(okta_requests_total{status="200"}[10m]) > 0)`: {"okta_events_total", "okta_requests_total"},
		`histogram_quantile(0.99, sum by (le, instance) (rate(output_latency_seconds_bucket[5m])))`:         {"output_latency_seconds_bucket"},
		`rate(a_total[15m]) / ignoring (rule) group_left rate(b_total[15m]) > 1e3`:                          {"a_total", "b_total"},
		`max without (status) (x{s="429"}) or y == 0 and on(job) z offset 5m`:                               {"x", "y", "z"},
		`label_values(input_received_total{job=~"$job"}, instance)`:                                         {"input_received_total"},
		`sort_desc(sum by (rule) (increase(m[$__range])) > 0)`:                                              {"m"},
		`up{job=~".*oktadetect.*"} == 0`:                                                                    {"up"},
	} {
		if got := MetricNames(expr); !reflect.DeepEqual(got, want) {
			t.Errorf("MetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// Every shipped query yields at least one metric name: the extractor sees them all.
func TestDeployQueries(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	qs, err := DeployQueries(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 20 {
		t.Fatalf("only %d queries found in deploy/", len(qs))
	}
	for where, q := range qs {
		if len(MetricNames(q)) == 0 {
			t.Errorf("%s: no metric name in %q", where, q)
		}
	}
}
