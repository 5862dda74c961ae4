package detect

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// recordedMetrics is what the detect_test_metrics exporter saw: each
// series ("name{label values}") and its value.
type recordedMetrics struct {
	mu     sync.Mutex
	series map[string]int64
}

// lastTestMetrics is what the stream built last records into: each stream
// gets its own, so that counts never carry over from an earlier run of a
// test (-count, .ci/stress).
var lastTestMetrics struct {
	sync.Mutex
	m *recordedMetrics
}

func newTestMetrics() *recordedMetrics {
	m := &recordedMetrics{series: map[string]int64{}}
	lastTestMetrics.Lock()
	lastTestMetrics.m = m
	lastTestMetrics.Unlock()
	return m
}

func builtTestMetrics() *recordedMetrics {
	lastTestMetrics.Lock()
	defer lastTestMetrics.Unlock()
	return lastTestMetrics.m
}

func (m *recordedMetrics) get(s string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.series[s]
	return v, ok
}

type recordedSeries struct {
	m   *recordedMetrics
	key string
}

func (s recordedSeries) add(d int64) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.m.series[s.key] += d
}
func (s recordedSeries) Incr(d int64)                  { s.add(d) }
func (s recordedSeries) IncrFloat64(float64)           {}
func (s recordedSeries) Timing(int64)                  {}
func (s recordedSeries) SetFloat64(float64)            {}
func (s recordedSeries) Decr(d int64)                  { s.add(-d) }
func (s recordedSeries) DecrFloat64(float64)           {}
func (s recordedSeries) Set(v int64)                   { s.m.mu.Lock(); s.m.series[s.key] = v; s.m.mu.Unlock() }
func (m *recordedMetrics) Close(context.Context) error { return nil }

func (m *recordedMetrics) series_(name string, values []string) recordedSeries {
	key := name + "{" + strings.Join(values, ",") + "}"
	m.mu.Lock()
	if _, ok := m.series[key]; !ok {
		m.series[key] = 0
	}
	m.mu.Unlock()
	return recordedSeries{m: m, key: key}
}

func (m *recordedMetrics) NewCounterCtor(name string, _ ...string) service.MetricsExporterCounterCtor {
	return func(values ...string) service.MetricsExporterCounter { return m.series_(name, values) }
}

func (m *recordedMetrics) NewTimerCtor(name string, _ ...string) service.MetricsExporterTimerCtor {
	return func(values ...string) service.MetricsExporterTimer { return m.series_(name, values) }
}

func (m *recordedMetrics) NewGaugeCtor(name string, _ ...string) service.MetricsExporterGaugeCtor {
	return func(values ...string) service.MetricsExporterGauge { return m.series_(name, values) }
}

func init() {
	err := service.RegisterMetricsExporter("detect_test_metrics", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Logger) (service.MetricsExporter, error) {
			return newTestMetrics(), nil
		})
	if err != nil {
		panic(err)
	}
}

// max_state_keys bounds each rule of the pack; evictions are counted from
// the start (0 before any) and keys are a gauge.
func TestMaxStateKeysMetrics(t *testing.T) {
	b := service.NewStreamBuilder()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.SetMetricsYAML("detect_test_metrics: {}"))
	produce, err := b.AddProducerFunc()
	must(err)
	must(b.AddProcessorYAML("cel_detect: {max_state_keys: 2}"))
	must(b.AddConsumerFunc(func(context.Context, *service.Message) error { return nil }))
	stream, err := b.Build()
	must(err)
	testMetrics := builtTestMetrics()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()
	const rule = "Standard.BruteForceByUser"
	for i, user := range []string{"a", "b", "c", "d", "e"} {
		raw := ev(time.Duration(i)*time.Second, map[string]any{
			"uuid": "u" + user, "eventType": "user.session.start",
			"actor":   map[string]any{"alternateId": user + "@example.com"},
			"outcome": map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
		})
		must(produce(ctx, service.NewMessage(raw)))
	}
	must(stream.Stop(ctx))
	<-done
	if v, ok := testMetrics.get("cel_detect_state_evictions_total{,root.pipeline.processors.0," + rule + "}"); !ok || v != 3 {
		t.Errorf("evictions of %s: %d (present %v), want 3", rule, v, ok)
	}
	if v, ok := testMetrics.get("cel_detect_state_evictions_total{,root.pipeline.processors.0,Okta.APIKeyRevoked}"); !ok || v != 0 {
		t.Errorf("a rule without evictions: %d (present %v), want a 0 series", v, ok)
	}
	if v, ok := testMetrics.get("cel_detect_state_keys{,root.pipeline.processors.0," + rule + "}"); !ok || v != 2 {
		t.Errorf("keys of %s: %d (present %v), want 2", rule, v, ok)
	}
}
