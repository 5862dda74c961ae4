package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	promFieldPrefix         = "prefix"
	promFieldTimerBuckets   = "timer_buckets"
	promFieldRuntimeMetrics = "runtime_metrics"
)

// defaultTimerBuckets spans 50µs to ~26s: Benthos timings range from a
// processor's microseconds to an output waiting out a broker outage.
var defaultTimerBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

func prometheusSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Summary("Exposes metrics for Prometheus to scrape at `/metrics` (and `/stats`) on Benthos' HTTP server.").
		Description(`
Every Benthos metric and every metric of oktadetect's components is exported with its labels.
Names are sanitised for Prometheus (characters outside `+"`[a-zA-Z0-9_:]`"+` become `+"`_`"+`).
Counters end in `+"`_total`"+`, as Prometheus names them: Benthos' own get the suffix
(`+"`input_received`"+` → `+"`input_received_total`"+`, `+"`output_sent`"+` → `+"`output_sent_total`"+`).
Timers, which Benthos measures in nanoseconds, are exported as histograms in seconds, and a
trailing `+"`_ns`"+` in their name becomes `+"`_seconds`"+` (`+"`output_latency_ns`"+` →
`+"`output_latency_seconds`"+`). Every metric of Benthos and of oktadetect's components has a help
text saying what it counts; the exported set passes `+"`promtool check metrics`"+`.

The HTTP server must be enabled (`+"`http.enabled: true`"+`, the default for `+"`oktadetect run`"+`);
its address is set with `+"`http.address`"+`.`).
		Fields(
			service.NewStringField(promFieldPrefix).
				Description("A prefix joined with `_` to every metric name; empty for none.").
				Default(""),
			service.NewFloatListField(promFieldTimerBuckets).
				Description("Histogram bucket upper bounds, in seconds, for timer metrics.").
				Default(defaultTimerBuckets).
				Advanced(),
			service.NewBoolField(promFieldRuntimeMetrics).
				Description("Also export the Go runtime (`go_*`) and process (`process_*`) collectors.").
				Default(true),
		).
		Example("Default", "Scrape `http://host:4195/metrics`.", `
http:
  address: 0.0.0.0:4195
metrics:
  prometheus: {}
`)
}

func init() {
	service.MustRegisterMetricsExporter("prometheus", prometheusSpec(),
		func(conf *service.ParsedConfig, log *service.Logger) (service.MetricsExporter, error) {
			return newExporter(conf, log)
		})
}

// exporter implements service.MetricsExporter on a private registry, so
// several streams in one process never collide on the global one. Benthos
// serves HandlerFunc at /metrics and /stats.
type exporter struct {
	log     *service.Logger
	prefix  string
	buckets []float64
	reg     *prometheus.Registry
	handler http.HandlerFunc

	mu   sync.Mutex
	vecs map[string]prometheus.Collector // by sanitised name
}

func newExporter(conf *service.ParsedConfig, log *service.Logger) (*exporter, error) {
	prefix, err := conf.FieldString(promFieldPrefix)
	if err != nil {
		return nil, err
	}
	buckets, err := conf.FieldFloatList(promFieldTimerBuckets)
	if err != nil {
		return nil, err
	}
	if err := checkBuckets(buckets); err != nil {
		return nil, err
	}
	runtime, err := conf.FieldBool(promFieldRuntimeMetrics)
	if err != nil {
		return nil, err
	}
	e := &exporter{
		log:     log,
		prefix:  sanitizeName(prefix),
		buckets: buckets,
		reg:     prometheus.NewRegistry(),
		vecs:    map[string]prometheus.Collector{},
	}
	if runtime {
		e.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	e.handler = promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorLog: promLogger{log}}).ServeHTTP
	return e, nil
}

func checkBuckets(b []float64) error {
	if len(b) == 0 {
		return fmt.Errorf("%s must not be empty", promFieldTimerBuckets)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			return fmt.Errorf("%s must be strictly increasing, %v follows %v", promFieldTimerBuckets, b[i], b[i-1])
		}
	}
	return nil
}

// HandlerFunc is picked up by Benthos' HTTP server for /metrics and /stats.
func (e *exporter) HandlerFunc() http.HandlerFunc { return e.handler }

func (e *exporter) Close(context.Context) error { return nil }

func (e *exporter) NewCounterCtor(name string, labelKeys ...string) service.MetricsExporterCounterCtor {
	vec, ok := getOrRegister(e, e.fullName(counterName(name)), labelKeys, func(n string, l []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: helpText(name, "counter")}, l)
	})
	if !ok {
		return func(...string) service.MetricsExporterCounter { return nopMetric{} }
	}
	return func(values ...string) service.MetricsExporterCounter {
		return counter{vec.WithLabelValues(values...)}
	}
}

func (e *exporter) NewTimerCtor(name string, labelKeys ...string) service.MetricsExporterTimerCtor {
	vec, ok := getOrRegister(e, e.fullName(timerName(name)), labelKeys, func(n string, l []string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: helpText(name, "timer"), Buckets: e.buckets}, l)
	})
	if !ok {
		return func(...string) service.MetricsExporterTimer { return nopMetric{} }
	}
	return func(values ...string) service.MetricsExporterTimer {
		return timer{vec.WithLabelValues(values...)}
	}
}

func (e *exporter) NewGaugeCtor(name string, labelKeys ...string) service.MetricsExporterGaugeCtor {
	vec, ok := getOrRegister(e, e.fullName(name), labelKeys, func(n string, l []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n, Help: helpText(name, "gauge")}, l)
	})
	if !ok {
		return func(...string) service.MetricsExporterGauge { return nopMetric{} }
	}
	return func(values ...string) service.MetricsExporterGauge {
		return gauge{vec.WithLabelValues(values...)}
	}
}

// getOrRegister returns the vector registered under name, creating it on
// first use. Benthos asks for the same metric once per component, so reuse is
// the normal case. A name already taken by another kind or label set cannot
// be exported; it is logged and dropped instead of panicking the pipeline.
func getOrRegister[V prometheus.Collector](e *exporter, name string, labelKeys []string, mk func(string, []string) V) (V, bool) {
	labels := make([]string, len(labelKeys))
	for i, l := range labelKeys {
		labels[i] = sanitizeLabel(l)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	key := name + "\x00" + strings.Join(labels, "\x00")
	if c, ok := e.vecs[key]; ok {
		v, ok := c.(V)
		if !ok {
			e.log.Warnf("Metric %s is already registered as another type; dropping it", name)
		}
		return v, ok
	}
	v := mk(name, labels)
	if err := e.reg.Register(v); err != nil {
		e.log.Warnf("Cannot export metric %s with labels %v: %v", name, labels, err)
		var zero V
		return zero, false
	}
	e.vecs[key] = v
	return v, true
}

func (e *exporter) fullName(name string) string {
	name = sanitizeName(name)
	if e.prefix == "" {
		return name
	}
	return e.prefix + "_" + name
}

// counterName gives a counter the _total suffix Prometheus and OpenMetrics
// name counters with (promtool check metrics insists), so Benthos' own
// input_received is exported as input_received_total.
func counterName(name string) string {
	if strings.HasSuffix(name, "_total") {
		return name
	}
	return name + "_total"
}

// timerName makes a Benthos timer name say the unit it is exported in.
func timerName(name string) string {
	if base, ok := strings.CutSuffix(name, "_ns"); ok {
		return base + "_seconds"
	}
	if strings.HasSuffix(name, "_seconds") {
		return name
	}
	return name + "_seconds"
}

// sanitizeName maps a Benthos metric name onto Prometheus' metric name
// grammar [a-zA-Z_:][a-zA-Z0-9_:]*.
func sanitizeName(s string) string { return sanitize(s, true) }

// sanitizeLabel does the same for label names, which may not contain ':'.
func sanitizeLabel(s string) string { return sanitize(s, false) }

func sanitize(s string, colonOK bool) string {
	if s == "" {
		return ""
	}
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9' && i > 0) || (c == ':' && colonOK)
		if !ok {
			b[i] = '_'
		}
	}
	if s[0] >= '0' && s[0] <= '9' {
		// Keep the digit rather than lose information.
		return "_" + s[:1] + string(b[1:])
	}
	return string(b)
}

type counter struct{ c prometheus.Counter }

func (c counter) Incr(n int64)          { c.c.Add(float64(n)) }
func (c counter) IncrFloat64(n float64) { c.c.Add(n) }

type timer struct{ o prometheus.Observer }

// Timing receives nanoseconds, as every Benthos timer does.
func (t timer) Timing(ns int64) { t.o.Observe(float64(ns) / 1e9) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Set(v int64)          { g.g.Set(float64(v)) }
func (g gauge) SetFloat64(v float64) { g.g.Set(v) }

type nopMetric struct{}

func (nopMetric) Incr(int64)   {}
func (nopMetric) Timing(int64) {}
func (nopMetric) Set(int64)    {}

// promLogger routes promhttp's encoding errors to the Benthos logger.
type promLogger struct{ log *service.Logger }

func (l promLogger) Println(v ...any) { l.log.Error(fmt.Sprint(v...)) }
