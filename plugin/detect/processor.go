package detect

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/rules"
)

// Config field names of cel_detect.
const (
	fieldRules            = "rules"
	fieldStateFile        = "state_file"
	fieldSnapshotInterval = "snapshot_interval"
	fieldWatch            = "watch"
	fieldMaxLateness      = "max_lateness"
	fieldCostLimit        = "cost_limit"
)

// MetaDetectionIDs is the metadata key holding the matched rule ids.
const MetaDetectionIDs = "detection_ids"

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
counted in `+"`cel_detect_rule_errors`"+` and logged at debug level; the event is never dropped.

Thresholds, dedup periods and remembered values use the event's `+"`published`"+` time only, never the
wall clock, and do not depend on arrival order. State is held in memory and shared by all
pipeline threads; with `+"`state_file`"+` set it is snapshotted atomically and restored at start.

Rule files on disk are watched: an edit is recompiled and swapped in within two seconds, a broken
edit is logged with file:line:col and the running set kept, and unchanged rules keep their state.

### Metrics

- `+"`cel_detect_events`"+`: events evaluated.
- `+"`cel_detect_matches{rule}`"+`: events tagged by each rule.
- `+"`cel_detect_rule_errors{rule}`"+`: evaluation errors of each rule.
- `+"`cel_detect_decode_errors`"+`: messages that are not JSON objects (passed on unchanged).
- `+"`cel_detect_eval_ns`"+`: time to evaluate all rules on one event.`).
		Fields(
			service.NewStringListField(fieldRules).
				Description("Rule files, directories (searched recursively for `*.cel`) or glob patterns. Empty: the rule pack embedded in the binary.").
				Example([]string{"./rules/okta"}).
				Example([]string{"/etc/oktadetect/rules/*.cel", "/etc/oktadetect/local"}).
				Default([]string{}),
			service.NewStringField(fieldStateFile).
				Description("A file to snapshot detection state to (threshold windows, dedup periods, remembered values), restored at start. Empty: state lives in memory only and a restart forgets it.").
				Example("/var/lib/oktadetect/cel_detect.state.json").
				Default(""),
			service.NewDurationField(fieldSnapshotInterval).
				Description("How often state is snapshotted to `state_file`; it is also written on shutdown.").
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
				Default(DefaultCostLimit).
				Advanced(),
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
`)
}

func init() {
	err := service.RegisterProcessor("cel_detect", ConfigSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
			return newProcessorFromConfig(conf, mgr)
		})
	if err != nil {
		panic(err)
	}
}

// processor is the cel_detect Benthos processor.
type processor struct {
	engine    *Engine
	log       *service.Logger
	stateFile string

	events       *service.MetricCounter
	decodeErrors *service.MetricCounter
	evalTime     *service.MetricTimer

	stop     context.CancelFunc
	done     sync.WaitGroup
	closeOne sync.Once
}

type processorConfig struct {
	rules            []string
	stateFile        string
	snapshotInterval time.Duration
	watch            bool
	maxLateness      time.Duration
	costLimit        int
}

func parseConfig(conf *service.ParsedConfig) (processorConfig, error) {
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
	if c.costLimit <= 0 {
		return c, errors.New("cost_limit must be positive")
	}
	if c.snapshotInterval <= 0 {
		return c, errors.New("snapshot_interval must be positive")
	}
	return c, nil
}

func newProcessorFromConfig(conf *service.ParsedConfig, mgr *service.Resources) (*processor, error) {
	c, err := parseConfig(conf)
	if err != nil {
		return nil, err
	}
	opts := CompileOptions{CostLimit: uint64(c.costLimit)}
	var rs *RuleSet
	if len(c.rules) == 0 {
		rs, err = LoadFS(rules.FS, rules.Root, opts)
	} else {
		rs, err = LoadPaths(c.rules, opts)
	}
	if err != nil {
		return nil, err
	}
	p := newProcessor(rs, c, mgr)
	if err := p.start(c, opts); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func newProcessor(rs *RuleSet, c processorConfig, mgr *service.Resources) *processor {
	m := mgr.Metrics()
	log := mgr.Logger()
	matches := m.NewCounter("cel_detect_matches", "rule")
	ruleErrors := m.NewCounter("cel_detect_rule_errors", "rule")
	p := &processor{
		log:          log,
		stateFile:    c.stateFile,
		events:       m.NewCounter("cel_detect_events"),
		decodeErrors: m.NewCounter("cel_detect_decode_errors"),
		evalTime:     m.NewTimer("cel_detect_eval_ns"),
		stop:         func() {},
	}
	p.engine = NewEngine(rs, EngineOptions{
		MaxLateness: c.maxLateness,
		Hooks: Hooks{
			Match: func(id string) { matches.Incr(1, id) },
			RuleError: func(id string, err error) {
				ruleErrors.Incr(1, id)
				log.Debugf("cel_detect: rule %s: %v", id, err)
			},
		},
	})
	return p
}

// start restores state and starts the snapshot and reload loops.
func (p *processor) start(c processorConfig, opts CompileOptions) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	if c.stateFile != "" {
		if n, err := p.engine.LoadSnapshot(c.stateFile); err != nil {
			p.log.Errorf("cel_detect: ignoring state file %s: %v", c.stateFile, err)
		} else if n > 0 {
			p.log.Infof("cel_detect: restored state of %d rules from %s", n, c.stateFile)
		}
		p.done.Add(1)
		go p.snapshotLoop(ctx, c.snapshotInterval)
	}
	if c.watch && len(c.rules) > 0 {
		rl, err := NewReloader(p.engine, c.rules, opts,
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
	}
	return nil
}

func (p *processor) snapshotLoop(ctx context.Context, every time.Duration) {
	defer p.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.engine.Expire()
			if err := p.engine.SaveSnapshot(p.stateFile); err != nil {
				p.log.Errorf("cel_detect: %v", err)
			}
		}
	}
}

// Process tags one event. It never drops or fails a message.
func (p *processor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	raw, err := msg.AsBytes()
	if err != nil {
		return service.MessageBatch{msg}, nil
	}
	started := time.Now()
	res, err := p.engine.Process(raw)
	p.evalTime.Timing(time.Since(started).Nanoseconds())
	p.events.Incr(1)
	if err != nil {
		p.decodeErrors.Incr(1)
		p.log.Debugf("cel_detect: event passed on untagged: %v", err)
	}
	ids := make([]string, len(res.Detections))
	for i, d := range res.Detections {
		ids[i] = d.ID
	}
	msg.MetaSetMut(MetaDetectionIDs, strings.Join(ids, ","))
	if len(res.Detections) > 0 {
		msg.SetBytes(res.Out)
	}
	return service.MessageBatch{msg}, nil
}

// Close stops the loops and writes a last snapshot.
func (p *processor) Close(context.Context) error {
	var err error
	p.closeOne.Do(func() {
		p.stop()
		p.done.Wait()
		if p.stateFile != "" {
			err = p.engine.SaveSnapshot(p.stateFile)
		}
	})
	return err
}
