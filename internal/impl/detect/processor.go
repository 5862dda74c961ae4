package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/changelog"
	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// Config field names of cel_detect.
const (
	fieldRules            = "rules"
	fieldStateFile        = "state_file"
	fieldSnapshotInterval = "snapshot_interval"
	fieldWatch            = "watch"
	fieldMaxLateness      = "max_lateness"
	fieldCostLimit        = "cost_limit"
	fieldChangelog        = "changelog"
	fieldEventMetadata    = "event_metadata"
)

// ConfigSpec is cel_detect's configuration specification.
func ConfigSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Evaluates CEL detection rules on each JSON event and tags the events that match.").
		Description(`
Each rule is a `+"`.cel`"+` file: a header of `+"`//`"+` comment lines holding YAML (id, title, severity,
dedup, threshold, previous, …) followed by a CEL condition over `+"`event`"+`, the decoded JSON
object. See rules/README.md for the format and the CEL environment.

An event that matches leaves with a top-level array `+"`detections`"+` (one object per matched rule:
`+"`id`, `title`, `severity`, `alert_id`, `dedup`"+`, and `+"`count`"+` and `+"`context`"+` where the rule has them)
and the metadata `+"`detection_ids`"+` (matched ids joined by commas, empty when none). An event that
matches nothing passes byte for byte unchanged. A rule that fails on an event (a missing field) is
counted in `+"`cel_detect_rule_errors_total`"+` and logged at WARN (each rule's first error, then at most one line per rule per minute, with the rule's file and the event's uuid); the event is never dropped.

A rule with `+"`absence`"+` tags nothing when its event arrives: once event time (the event's own org's:
another org's progress never fires it) has passed the expectation's `+"`within`"+` and `+"`grace`"+` with no
closing event, cel_detect emits a new message after the event that moved time past it: the opening event again, with `+"`detections`"+` holding the absence
and the metadata `+"`detection_deferred`"+` = `+"`true`"+` (route it as an alert only;
`+"`detections_to_alerts`"+` does).

Thresholds, sequences, dedup periods and remembered values use the event's `+"`published`"+` time
only, never the wall clock, and do not depend on arrival order. State is scoped by the event's org
(`+"`event.oktadetect.org`"+`), and an event is counted once per `+"`uuid`"+`. State is held in memory and shared by all
pipeline threads; with `+"`state_file`"+` set it is snapshotted atomically and restored at start; with
`+"`state_topic`"+` set it is committed with the output's transactions and read back at start.

Rule files on disk are watched: an edit is recompiled and swapped in within two seconds, a broken
edit is logged with file:line:col and the running set kept, and unchanged rules keep their state.

### Metrics

- `+"`cel_detect_events_total`"+`: events evaluated.
- `+"`cel_detect_matches_total{rule}`"+`: events tagged by each rule.
- `+"`cel_detect_rule_errors_total{rule}`"+`: evaluation errors of each rule.
- `+"`cel_detect_decode_errors_total`"+`: messages that are not JSON objects (passed on unchanged).
- `+"`cel_detect_eval_ns`"+`: time to evaluate all rules on one event.

With `+"`changelog`"+` (partitioned state):
- `+"`cel_detect_state_restores_total`"+`: partitions whose state was restored from the changelog.
- `+"`cel_detect_records_already_evaluated_total`"+`: re-delivered records dropped because their batch was evaluated and written out before.
- `+"`cel_detect_records_replayed_total`"+`: re-delivered records of the last committed batch, written out again as first tagged.
- `+"`cel_detect_changelog_errors_total`"+`: failed restores and commits (each is retried after restoring the state again).
- `+"`cel_detect_records_without_partition_total`"+`: messages without Kafka metadata, passed on untagged with an error.
- `+"`cel_detect_watermarks_total`"+`: watermark records of `+"`cel_route`"+` read (not counted in `+"`cel_detect_events_total`"+`).

### Partitioned state

For detection workers reading a partitioned topic with `+"`kafka_consumer`"+`, `+"`changelog`"+` keeps
state per source partition and writes every batch's changes to a compacted Kafka topic before the
batch moves on (one transaction per batch and partition). When a partition moves to another worker
(rebalance, crash, scale-out), that worker restores the partition's state from the topic and
continues exactly where the last committed batch ended: records evaluated before are not counted
again, and the last batch's tagged records are written out again as they were first tagged. This
needs the input to hand out one batch per partition at a time (kafka_consumer's default
`+"`max_in_flight_per_partition: 1`"+`) and records of one state key in one partition. A topic keyed by
actor gives rules grouping by something else (a source IP) only the events of each partition; read
the repartition topic `+"`cel_route`"+` writes instead, and each record is evaluated for the one rule its
`+"`"+meta.DetectRule+"`"+` metadata names: exactly the tags of one process holding all the state.

### State committed with the output

With `+"`state_topic`"+`, detection state lives in a compacted Kafka topic that the pipeline's own
transactional `+"`kafka_producer`"+` writes: cel_detect appends each batch's state changes to the batch
as messages (metadata `+"`kafka_topic`"+` = the state topic, `+"`kafka_key`"+` = `+"`<key_prefix> NUL <entry>`"+`,
`+"`detection_state`"+` = `+"`true`"+`, `+"`kafka_no_dead_letter`"+` = `+"`true`"+`, and `+"`kafka_tombstone`"+` = `+"`true`"+` for a
deleted entry), so they commit in the same transaction as the batch's events, alerts and cursor, or
not at all. `+"`detections_to_alerts`"+` passes them on untouched; a config without it must route
them to the state topic too (and never write them as events). Before the first batch, the state is
read back as a read_committed consumer, up to the last stable offset: exactly the state after the
last committed batch, which is where the input's cursor resumes. A crash at any instant therefore
neither loses nor repeats a counted event, and the alerts are those of an uninterrupted run.
Batches are evaluated one at a time, and the output must commit them in the order they leave
(`+"`pipeline.threads: 1`"+` and a transactional `+"`kafka_producer`"+`, whose writes are serialised).

- `+"`cel_detect_state_records_total`"+`: state change records appended to batches (state_topic).`).
		Fields(
			service.NewStringListField(fieldRules).
				Description("Rule files, directories (searched recursively for `*.cel`, following symlinks and skipping hidden entries, so that a Kubernetes ConfigMap volume works as mounted) or glob patterns. Rule files must be plain files of at most 1 MiB. Empty: the rule pack embedded in the binary.").
				Example([]string{"./rules/okta"}).
				Example([]string{"/etc/oktadetect/rules/*.cel", "/etc/oktadetect/local"}).
				Default([]string{}),
			service.NewStringField(fieldStateFile).
				Description("A file to keep detection state in (threshold windows, dedup periods, remembered values), restored at start. Each batch's state changes are appended to a journal beside it (`<file>.journal.<n>`) and synced to disk before the batch moves on, and the whole state is snapshotted every `snapshot_interval`; so the state on disk is never behind what left the processor, and a crash at any instant loses no counted event. Its directory is created (0700) at start; one that cannot be written stops the pipeline. Empty: state lives in memory only and a restart forgets it.").
				Example("/var/lib/oktadetect/cel_detect.state.json").
				Default(""),
			service.NewDurationField(fieldSnapshotInterval).
				Description("How often the whole state is snapshotted to `state_file` (the journals it covers are then removed); it is also written on shutdown.").
				Default("30s").
				Advanced(),
			service.NewBoolField(fieldWatch).
				Description("Watch rule files on disk and reload them when they change. Has no effect for the embedded pack.").
				Default(true).
				Advanced(),
			service.NewDurationField(fieldMaxLateness).
				Description("How far (in event time) behind the newest event an event may arrive and still find the state it needs; older state is freed.").
				Default("1h").
				Advanced(),
			service.NewIntField(fieldCostLimit).
				Description("CEL cost limit of one expression evaluation; a rule exceeding it errors on that event.").
				Default(detect.DefaultCostLimit).
				Advanced(),
			maxStateKeysField(),
			service.NewStringMapField(fieldEventMetadata).
				Description("Message metadata the rules read as `event.oktadetect.<name>`: each entry maps a name to a metadata key. Only metadata present on the message appears, and the event's bytes are not changed (the member exists in the rules' view only). The default lets rules tell orgs apart in a many-org pipeline: `event.?oktadetect.?org.orValue('')`.").
				Default(map[string]any{"org": meta.OktaOrg}).
				Example(map[string]any{"org": meta.OktaOrg, "tenant": "tenant"}).
				Advanced(),
		).
		Fields(tuningFields()...).
		Fields(
			service.NewObjectField(fieldChangelog, changelog.Fields()...).
				Description("Keep state per Kafka source partition in a compacted changelog topic, so it follows partitions between detection workers (see Partitioned state). Events must come from `kafka_consumer`. Exclusive with `state_file` and `state_topic`.").
				Optional(),
			service.NewObjectField(fieldStateTopic, stateTopicFields()...).
				Description("Keep state in a compacted Kafka topic written in the same transaction as the batch that changed it (see State committed with the output). Needs `kafka_producer` with a `transactional_id` writing every message of the batch to the topic and key in its `kafka_topic` and `kafka_key` metadata, and `pipeline.threads: 1` (`oktadetect lint` and the start refuse a config without it: Benthos' default is one thread per CPU). Exclusive with `state_file` and `changelog`.").
				Optional(),
		).
		Example("Detect with the built-in rules", "Tags Okta System Log events with the embedded rule pack and keeps state across restarts.", `
pipeline:
  processors:
    - cel_detect:
        state_file: /var/lib/oktadetect/cel_detect.state.json
`).
		Example("Own rules with hot reload", "Runs the rules of a directory; edits are picked up while running.", `
pipeline:
  processors:
    - cel_detect:
        rules: [ ./rules/okta, ./rules/local ]
        state_file: ./data/cel_detect.state.json
`).
		Example("Detection worker with partitioned state", "One of several workers of a consumer group; each partition's state moves with the partition.", `
input:
  kafka_consumer:
    seed_brokers: [ localhost:9092 ]
    topics: [ okta.system_log ]
    consumer_group: oktadetect-detect
pipeline:
  processors:
    - cel_detect:
        changelog:
          seed_brokers: [ localhost:9092 ]
          topic: oktadetect.state
`).
		Example("Exactly once with the output", "Events, alerts, the Okta cursor and the detection state of each page in one Kafka transaction.", `
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    api_token: ${OKTA_API_TOKEN}
    checkpoint_cache: okta_cursor
pipeline:
  threads: 1
  processors:
    - cel_detect:
        state_topic:
          seed_brokers: [ localhost:9092 ]
          topic: okta.detection_state
          key_prefix: oktadetect-acme
    - detections_to_alerts: {}
output:
  kafka_producer:
    seed_brokers: [ localhost:9092 ]
    topic: ${! meta("kafka_topic") }
    key: ${! meta("kafka_key") }
    transactional_id: oktadetect-acme
    checkpoint_topic: okta.checkpoints
cache_resources:
  - label: okta_cursor
    kafka_checkpoint:
      seed_brokers: [ localhost:9092 ]
`)
}

// Product is the data the binary hands cel_detect (plugin/plugin.go): the
// rule pack it runs when `rules` is empty, and the CEL libraries rules may
// use beside the engine's own (the okta.* functions).
type Product struct {
	Pack      fs.FS
	PackRoot  string
	Libraries []cel.Library
	// Lists are the defaults of the site data the pack's rules read as
	// `lists.<name>`; the `lists` field replaces them by name.
	Lists map[string][]string
}

// CompileOptions compile rules as cel_detect does by default: with the
// product's libraries and default lists (rules test, lint, list).
func (p Product) CompileOptions() detect.CompileOptions {
	return detect.CompileOptions{Libraries: p.Libraries, Tuning: detect.Tuning{Lists: p.Lists}}
}

// Register registers cel_detect and detections_to_alerts with env.
func Register(env *service.Environment, product Product) error {
	err := env.RegisterBatchProcessor("cel_detect", ConfigSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchProcessor, error) {
			return newProcessorFromConfig(conf, mgr, product)
		})
	if err != nil {
		return err
	}
	if err := registerRoute(env, product); err != nil {
		return err
	}
	return env.RegisterProcessor("detections_to_alerts", detectionsToAlertsSpec(),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.Processor, error) {
			return newAlertsProcessor(conf)
		})
}

// detector is where cel_detect keeps detection state: one engine in memory
// (optionally snapshotted to a file), or one engine per source partition
// with a Kafka changelog.
type detector interface {
	processBatch(ctx context.Context, batch service.MessageBatch) (service.MessageBatch, error)
	swap(rs *detect.RuleSet)
	// run does the background work (snapshots, eviction) until ctx ends.
	run(ctx context.Context)
	close() error
}

// processor is the cel_detect Benthos processor.
type processor struct {
	state  detector
	log    *service.Logger
	errLog *ruleErrorLog
	stop   context.CancelFunc
	done   sync.WaitGroup
	once   sync.Once
}

type processorConfig struct {
	rules            []string
	stateFile        string
	snapshotInterval time.Duration
	watch            bool
	maxLateness      time.Duration
	costLimit        int
	maxStateKeys     int
	tuning           detect.Tuning
	changelog        *changelog.Store
	stateTopic       *stateTopicConfig
	eventMetadata    []metaSource
}

// metaSource is one event_metadata entry: a name in the rules' view and the
// metadata key its value comes from.
type metaSource struct{ name, key string }

func parseConfig(conf *service.ParsedConfig, product Product) (processorConfig, error) {
	var c processorConfig
	var err error
	if c.rules, err = conf.FieldStringList(fieldRules); err != nil {
		return c, err
	}
	if c.stateFile, err = conf.FieldString(fieldStateFile); err != nil {
		return c, err
	}
	if c.snapshotInterval, err = conf.FieldDuration(fieldSnapshotInterval); err != nil {
		return c, err
	}
	if c.watch, err = conf.FieldBool(fieldWatch); err != nil {
		return c, err
	}
	if c.maxLateness, err = conf.FieldDuration(fieldMaxLateness); err != nil {
		return c, err
	}
	if c.costLimit, err = conf.FieldInt(fieldCostLimit); err != nil {
		return c, err
	}
	if c.maxStateKeys, err = parseMaxStateKeys(conf); err != nil {
		return c, err
	}
	if c.costLimit <= 0 {
		return c, errors.New("cost_limit must be positive")
	}
	if c.snapshotInterval <= 0 {
		return c, errors.New("snapshot_interval must be positive")
	}
	if c.eventMetadata, err = parseEventMetadata(conf); err != nil {
		return c, err
	}
	if c.tuning, err = parseTuning(conf, product.Lists); err != nil {
		return c, err
	}
	if err := parseStateTopicBlock(conf, &c); err != nil {
		return c, err
	}
	return c, parseChangelog(conf, &c)
}

func parseStateTopicBlock(conf *service.ParsedConfig, c *processorConfig) error {
	on, err := blockWritten(conf, fieldStateTopic)
	if err != nil || !on {
		return err
	}
	if c.stateFile != "" {
		return fmt.Errorf("%s and %s are exclusive: state lives either in a file or in the state topic", fieldStateFile, fieldStateTopic)
	}
	if c.stateTopic, err = parseStateTopic(conf.Namespace(fieldStateTopic)); err != nil {
		return fmt.Errorf("%s: %w", fieldStateTopic, err)
	}
	return nil
}

func parseChangelog(conf *service.ParsedConfig, c *processorConfig) error {
	on, err := blockWritten(conf, fieldChangelog)
	if err != nil || !on {
		return err
	}
	if c.stateTopic != nil {
		return fmt.Errorf("%s and %s are exclusive: %s is the state of one pipeline committed with its output's transactions, %s the state of workers sharing source partitions", fieldStateTopic, fieldChangelog, fieldStateTopic, fieldChangelog)
	}
	if c.stateFile != "" {
		return errors.New("state_file and changelog are exclusive: state lives either in a file (one process) or in the changelog topic (workers sharing partitions)")
	}
	if c.changelog, err = changelog.NewStore(conf.Namespace(fieldChangelog)); err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	return nil
}

func parseEventMetadata(conf *service.ParsedConfig) ([]metaSource, error) {
	m, err := conf.FieldStringMap(fieldEventMetadata)
	if err != nil {
		return nil, err
	}
	out := make([]metaSource, 0, len(m))
	for name, key := range m {
		if name == "" || key == "" {
			return nil, fmt.Errorf("%s: names and metadata keys must not be empty (got %q: %q)", fieldEventMetadata, name, key)
		}
		out = append(out, metaSource{name: name, key: key})
	}
	slices.SortFunc(out, func(a, b metaSource) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// metaFields reads the configured metadata of a message.
func metaFields(sources []metaSource, msg *service.Message) []detect.MetaField {
	var out []detect.MetaField
	for _, s := range sources {
		if v, ok := msg.MetaGet(s.key); ok {
			out = append(out, detect.MetaField{Name: s.name, Value: v})
		}
	}
	return out
}

// blockWritten says whether the config sets a Kafka block (changelog,
// state_topic). Benthos fills the block's defaults in whether or not it was
// written, so seed_brokers decides; a block changed from its defaults
// without them is an error.
func blockWritten(conf *service.ParsedConfig, field string) (bool, error) {
	if !conf.Contains(field) {
		return false, nil
	}
	var brokers []string
	if conf.Contains(field, "seed_brokers") {
		var err error
		if brokers, err = conf.FieldStringList(field, "seed_brokers"); err != nil {
			return false, err
		}
	}
	if len(brokers) > 0 {
		return true, nil
	}
	defaults, _ := ConfigSpec().ParseYAML(field+": {}", nil)
	written, _ := conf.FieldAny(field)
	if want, _ := defaults.FieldAny(field); fmt.Sprint(written) != fmt.Sprint(want) {
		return false, fmt.Errorf("%s: seed_brokers must list at least one broker", field)
	}
	return false, nil
}

func newProcessorFromConfig(conf *service.ParsedConfig, mgr *service.Resources, product Product) (*processor, error) {
	c, err := parseConfig(conf, product)
	if err != nil {
		return nil, err
	}
	opts := detect.CompileOptions{CostLimit: uint64(c.costLimit), Libraries: product.Libraries, Tuning: c.tuning}
	src, err := ruleSources(c.rules, product)
	if err != nil {
		return nil, err
	}
	rs, err := detect.Load(src, opts)
	if err != nil {
		return nil, err
	}
	for _, id := range rs.Replaced() {
		mgr.Logger().Infof("cel_detect: built-in rule %s is replaced by the rule file of the same id", id)
	}
	p := &processor{log: mgr.Logger(), errLog: newRuleErrorLog(mgr.Logger(), time.Now), stop: func() {}}
	if p.state, err = newDetector(rs, c, mgr, engineOptions(c, mgr, p.errLog)); err != nil {
		return nil, err
	}
	if err := p.start(c, src, opts); err != nil {
		p.Close(context.Background())
		return nil, err
	}
	return p, nil
}

// newDetector picks where state lives: the changelog, a state file, or
// memory only.
func newDetector(rs *detect.RuleSet, c processorConfig, mgr *service.Resources, opts detect.EngineOptions) (detector, error) {
	if c.changelog != nil {
		// The changelog says itself why Kafka cannot be reached (once per
		// change) and when it made its topic compacted.
		c.changelog.SetLogger(mgr.Logger())
		return newPartitionedDetector(c.changelog, rs, opts, c.eventMetadata, mgr, nil), nil
	}
	if c.stateTopic != nil {
		return newTopicStateDetector(rs, c.stateTopic, opts, c.eventMetadata, mgr), nil
	}
	if c.stateFile == "" {
		return newMemoryDetector(rs, opts, c.eventMetadata, mgr), nil
	}
	opts.TrackChanges = true // the state file journals each batch's changes
	d := newMemoryDetector(rs, opts, c.eventMetadata, mgr)
	return newSnapshotDetector(d, c.stateFile, c.snapshotInterval)
}

// engineOptions wires the engine's hooks to cel_detect's metrics and log.
func engineOptions(c processorConfig, mgr *service.Resources, errLog *ruleErrorLog) detect.EngineOptions {
	matches := mgr.Metrics().NewCounter("cel_detect_matches_total", "rule")
	excepted := mgr.Metrics().NewCounter("cel_detect_exceptions_total", "rule")
	ruleErrors := mgr.Metrics().NewCounter("cel_detect_rule_errors_total", "rule")
	evicted, keys := stateBoundHooks(mgr)
	return detect.EngineOptions{
		MaxLateness:  c.maxLateness,
		MaxStateKeys: c.maxStateKeys,
		Hooks: detect.Hooks{
			Match:    func(id string) { matches.Incr(1, id) },
			Excepted: func(id string) { excepted.Incr(1, id) },
			RuleError: func(id string, err error) {
				ruleErrors.Incr(1, id)
				errLog.report(id, err)
			},
			Evicted:   evicted,
			StateKeys: keys,
		},
	}
}

// start runs the detector's background work and the rule file watcher.
func (p *processor) start(c processorConfig, src detect.RuleSources, opts detect.CompileOptions) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		p.state.run(ctx)
	}()
	if !c.watch || len(src.Paths) == 0 {
		return nil
	}
	rl, err := detect.NewReloader(swapperFunc(p.state.swap), src, opts,
		func(ids []string) {
			p.log.Infof("cel_detect: reloaded %d rules: %s", len(ids), strings.Join(ids, ", "))
		},
		func(err error) { p.log.Errorf("cel_detect: %v", err) })
	if err != nil {
		return err
	}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		rl.Run(ctx)
	}()
	return nil
}

// swapperFunc lets a detector's swap serve as the reloader's target.
type swapperFunc func(*detect.RuleSet)

func (f swapperFunc) Swap(rs *detect.RuleSet) { f(rs) }

// ProcessBatch tags the events of a batch. With partitioned state it also
// commits the batch's state changes, and may drop re-delivered records that
// were evaluated and written out before; it fails only on shutdown.
func (p *processor) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	out, err := p.state.processBatch(ctx, batch)
	if err != nil {
		return nil, err
	}
	return []service.MessageBatch{out}, nil
}

// Close stops the background work and writes the state out a last time.
func (p *processor) Close(context.Context) error {
	var err error
	p.once.Do(func() {
		p.stop()
		p.done.Wait()
		err = p.state.close()
	})
	return err
}

// setDetections writes an event's tags: its new bytes (out; nil:
// unchanged), the detection_ids metadata (empty when none) and, for
// detections_to_alerts, the rules' descriptions.
func setDetections(msg *service.Message, dets []detect.Detection, out []byte) {
	msg.MetaSetMut(meta.DetectionIDs, detectionIDs(dets))
	if len(dets) == 0 {
		return
	}
	if out != nil {
		msg.SetBytes(out)
	}
	rules := make([]*detect.RuleInfo, len(dets))
	for i, d := range dets {
		rules[i] = d.Rule
	}
	msg.MetaSetMut(meta.DetectionRules, rules)
}

// detectionIDs joins the matched rule ids, the detection_ids metadata.
func detectionIDs(dets []detect.Detection) string {
	ids := make([]string, len(dets))
	for i, d := range dets {
		ids[i] = d.ID
	}
	return strings.Join(ids, ",")
}
