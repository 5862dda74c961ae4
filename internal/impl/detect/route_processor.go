package detect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// cel_route: the repartition step of scaled-out detection. It sends each
// event to the state every rule keeps it under (detect.Engine.Routes), so
// that the cel_detect worker owning a partition of the repartition topic
// sees every event of each (rule, key) it holds, whatever the event's actor.

// fieldWatermarkPartitions is cel_route's own field: the repartition
// topic's partition count, for watermarks.
const fieldWatermarkPartitions = "watermark_partitions"

// routeSpec is cel_route's configuration specification: cel_detect's rule
// fields, without state.
func routeSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Routes each JSON event to the state keys of the CEL detection rules it concerns: one message per (rule, key), for a repartition topic.").
		Description(`
The repartition step of scaled-out detection (README.md, "Scaling out"), as Kafka Streams
repartitions by a new key before a stateful operation. Detection state is kept per key: a
threshold's `+"`group_by`"+` (a source IP, a user), a remembered value's `+"`previous.key`"+` (a session), a
sequence's `+"`by`"+`, a first sighting's `+"`key`"+`, an absence's `+"`by`"+`, and for the other rules the dedup
key their alerts open under. Workers that each hold some partitions of the events topic, keyed by
actor, see only their share of the events of one IP or session. cel_route writes, for each rule an
event could affect, one message: the event's bytes, its metadata, and

- `+"`"+meta.DetectRule+"`"+`: the rule's id;
- `+"`"+meta.DetectRouteKey+"`"+`: the rule's id and its state key (scoped by the org, `+"`event.oktadetect.org`"+`):
  the record key for `+"`kafka_producer`"+`, so that all events of one (rule, key) land in one partition.

The decision touches no state: a rule whose condition cannot read `+"`previous`"+` is routed only the
events its condition (or its sequence steps, or `+"`absence.followed_by`"+`) admits; a rule that
remembers gets every event its index admits, under `+"`previous.key`"+`. An event no rule concerns is
dropped, and so is one that is not a JSON object (counted).

A `+"`cel_detect`"+` with `+"`changelog`"+` reading the repartition topic evaluates on each record only the
rule its `+"`"+meta.DetectRule+"`"+` metadata names (from the Kafka header of the same name), so its tags are
exactly those one process holding all the state gives. Give both the same rules, tuning and
`+"`event_metadata`"+`.

### Watermarks

An absence fires when its org's event time, as its worker has seen it, passes the expectation's
deadline. A partition that receives nothing of an org for a while would fire it late, after other
events than one process would. With `+"`"+fieldWatermarkPartitions+"`"+` set to the repartition topic's
partition count, cel_route also writes, whenever an event moves its org's time into a new minute,
one message per partition after the event's routes: the body `+"`{\"published\": …}`"+`, the event's
metadata, `+"`"+meta.DetectRule+"`"+` = `+"`"+detect.WatermarkRule+"`"+` (a rule no rule file may name, so workers evaluate no
rule on it) and a `+"`"+meta.DetectRouteKey+"`"+` that Kafka's default partitioner (murmur2, `+"`kafka_producer`"+`'s
default) places in that partition. Every absence then fires after the same event of its org as in
one process, whatever else its partition receives.

### Metrics

- `+"`cel_route_events_total`"+`: events routed.
- `+"`cel_route_records_total`"+`: messages written (one per rule and key).
- `+"`cel_route_decode_errors_total`"+`: messages that are not JSON objects (dropped).
- `+"`cel_route_watermarks_total`"+`: watermark messages written (one per partition and org minute).`).
		Fields(routeRuleFields()...).
		Fields(tuningFields()...).
		Example("Repartition for exact detection at scale", "Routes the events of okta.system_log to oktadetect.repartition, keyed by rule and state key.", `
pipeline:
  processors:
    - cel_route: {}
output:
  kafka_producer:
    seed_brokers: [ localhost:9092 ]
    topic: oktadetect.repartition
    key: ${! @`+meta.DetectRouteKey+` }
    metadata:
      include_prefixes: [ "okta_", "`+meta.DetectRule+`" ]
`)
}

// routeRuleFields are the fields that choose and compile the rules: the
// values of the cel_detect workers' fields of the same names.
func routeRuleFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(fieldRules).
			Description("Rule files, directories or glob patterns, as cel_detect's `rules`; give both the same. Empty: the rule pack embedded in the binary.").
			Example([]string{"/etc/oktadetect/rules/*.cel", "/etc/oktadetect/local"}).
			Default([]string{}),
		service.NewBoolField(fieldWatch).
			Description("Reload the rule files when they change, so that routes follow the rules the detection workers run.").
			Default(true).
			Advanced(),
		service.NewIntField(fieldCostLimit).
			Description("CEL cost limit of one expression evaluation, as cel_detect's.").
			Default(detect.DefaultCostLimit).
			Advanced(),
		service.NewStringMapField(fieldEventMetadata).
			Description("Message metadata the rules read as `event.oktadetect.<name>`, as cel_detect's `event_metadata`: state keys are scoped by `org`.").
			Default(map[string]any{"org": meta.OktaOrg}).
			Advanced(),
		service.NewIntField(fieldWatermarkPartitions).
			Description("The repartition topic's partition count: each org's event time is then written to every partition as it enters a new minute (see Watermarks), so that absences fire on time on partitions that receive little. Give the topic's real count: with another, some partitions get no watermarks. 0: no watermarks.").
			Default(0).
			Example(12),
	}
}

// registerRoute registers cel_route with env.
func registerRoute(env *service.Environment, product Product) error {
	return env.RegisterProcessor("cel_route", routeSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
			return newRouteProcessor(conf, mgr, product)
		})
}

// routeProcessor is the cel_route Benthos processor.
type routeProcessor struct {
	engine    *detect.Engine // its state stays empty: only Routes is called
	meta      []metaSource
	log       *service.Logger
	events    *service.MetricCounter
	records   *service.MetricCounter
	decodeErr *service.MetricCounter
	stop      context.CancelFunc
	done      sync.WaitGroup

	// watermarkKeys holds, per partition of the repartition topic, a
	// route key that lands in it; empty: no watermarks.
	watermarkKeys []string
	watermarks    *service.MetricCounter
}

// maxWatermarkPartitions bounds watermark_partitions: a topic with more
// partitions than this is no repartition topic anyone runs.
const maxWatermarkPartitions = 10_000

func newRouteProcessor(conf *service.ParsedConfig, mgr *service.Resources, product Product) (*routeProcessor, error) {
	rules, err := conf.FieldStringList(fieldRules)
	if err != nil {
		return nil, err
	}
	watch, err := conf.FieldBool(fieldWatch)
	if err != nil {
		return nil, err
	}
	costLimit, err := conf.FieldInt(fieldCostLimit)
	if err != nil {
		return nil, err
	}
	if costLimit <= 0 {
		return nil, errors.New("cost_limit must be positive")
	}
	partitions, err := conf.FieldInt(fieldWatermarkPartitions)
	if err != nil {
		return nil, err
	}
	if partitions < 0 || partitions > maxWatermarkPartitions {
		return nil, fmt.Errorf("%s %d: give the repartition topic's partition count (1 to %d), or 0 for no watermarks", fieldWatermarkPartitions, partitions, maxWatermarkPartitions)
	}
	sources, err := parseEventMetadata(conf)
	if err != nil {
		return nil, err
	}
	tuning, err := parseTuning(conf, product.Lists)
	if err != nil {
		return nil, err
	}
	opts := detect.CompileOptions{CostLimit: uint64(costLimit), Libraries: product.Libraries, Tuning: tuning}
	src, err := ruleSources(rules, product)
	if err != nil {
		return nil, err
	}
	rs, err := detect.Load(src, opts)
	if err != nil {
		return nil, err
	}
	m := mgr.Metrics()
	p := &routeProcessor{
		engine: detect.NewEngine(rs, detect.EngineOptions{}), meta: sources, log: mgr.Logger(),
		events: m.NewCounter("cel_route_events_total"), records: m.NewCounter("cel_route_records_total"),
		decodeErr: m.NewCounter("cel_route_decode_errors_total"), stop: func() {},
		watermarks: m.NewCounter("cel_route_watermarks_total"),
	}
	p.decodeErr.Incr(0)
	p.watermarks.Incr(0)
	for _, k := range kafkax.KeysForEachPartition(detect.WatermarkRule+"\x00", partitions) {
		p.watermarkKeys = append(p.watermarkKeys, string(k))
	}
	if watch && len(src.Paths) > 0 {
		if err := p.watch(src, opts); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// watch reloads the rules when their files change, as cel_detect does: the
// routes follow the rules the detection workers run.
func (p *routeProcessor) watch(src detect.RuleSources, opts detect.CompileOptions) error {
	rl, err := detect.NewReloader(swapperFunc(p.engine.Swap), src, opts,
		func(ids []string) {
			p.log.Infof("cel_route: reloaded %d rules: %s", len(ids), strings.Join(ids, ", "))
		},
		func(err error) { p.log.Errorf("cel_route: %v", err) })
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		rl.Run(ctx)
	}()
	return nil
}

// Process writes one message per route of the event.
func (p *routeProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	p.events.Incr(1)
	raw, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	routes, wm, err := p.engine.RouteEvent(raw, metaFields(p.meta, msg))
	if err != nil {
		p.decodeErr.Incr(1)
		p.log.Debugf("cel_route: event dropped: %v", err)
		return nil, nil
	}
	out := make(service.MessageBatch, len(routes), len(routes)+len(p.watermarkKeys))
	for i, r := range routes {
		m := msg.Copy()
		m.MetaSetMut(meta.DetectRule, r.Rule)
		m.MetaSetMut(meta.DetectRouteKey, r.PartitionKey())
		out[i] = m
	}
	p.records.Incr(int64(len(out)))
	if wm != nil && len(p.watermarkKeys) > 0 {
		for _, key := range p.watermarkKeys {
			m := msg.Copy()
			m.SetBytes(wm.Body)
			m.MetaSetMut(meta.DetectRule, detect.WatermarkRule)
			m.MetaSetMut(meta.DetectRouteKey, key)
			out = append(out, m)
		}
		p.watermarks.Incr(int64(len(p.watermarkKeys)))
	}
	return out, nil
}

// Close stops the rule watcher.
func (p *routeProcessor) Close(context.Context) error {
	p.stop()
	p.done.Wait()
	return nil
}
