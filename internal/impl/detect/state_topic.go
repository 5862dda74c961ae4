package detect

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// state_topic: detection state in a compacted Kafka topic, written by the
// pipeline's transactional kafka_producer in the same transaction as the
// batch whose evaluation changed it. cel_detect appends the batch's state
// changes to the batch as messages (topic and key in metadata, a deletion as
// a tombstone); the output commits them with the batch's events, alerts and
// cursor, or not at all. At start, the state is read back up to the last
// stable offset: exactly the state after the last committed batch, whose
// cursor the input resumes from.

// Field names of the state_topic block, besides the connection fields.
const (
	fieldStateTopic      = "state_topic"
	stateFieldTopic      = "topic"
	stateFieldKeyPrefix  = "key_prefix"
	stateFieldPartitions = "partitions"
	stateFieldTimeout    = "restore_timeout"
)

func stateTopicFields() []*service.ConfigField {
	return []*service.ConfigField{
		kafkax.SeedBrokersField(),
		service.NewStringField(stateFieldTopic).
			Description("The compacted topic holding the detection state. Created compacted when missing; an existing topic that does not compact is made to (or the pipeline stops with the command that fixes it).").
			Default("okta.detection_state"),
		service.NewStringField(stateFieldKeyPrefix).
			Description("Prefix of this pipeline's record keys (`<prefix> NUL <entry>`). Pipelines sharing the topic must use distinct prefixes (their `transactional_id` is a good one); a restore reads only its own.").
			Default("oktadetect"),
		service.NewIntField(stateFieldPartitions).
			Description("Partitions of the topic when cel_detect creates it.").
			Default(1).
			Advanced(),
		kafkax.ClientIDField().Advanced(),
		service.NewDurationField(stateFieldTimeout).
			Description("How long one attempt to read the state back may take; a failed attempt is retried (the first batch waits) until it succeeds or the pipeline stops.").
			Default("60s").
			Advanced(),
		kafkax.TLSField(),
		kafkax.SASLField(),
	}
}

// stateTopicConfig is a parsed state_topic block.
type stateTopicConfig struct {
	kafka      *kafkax.Connection
	topic      string
	keyPrefix  string
	partitions int
	timeout    time.Duration
}

func parseStateTopic(conf *service.ParsedConfig) (*stateTopicConfig, error) {
	c := &stateTopicConfig{}
	var err error
	if c.kafka, err = kafkax.ParseConnection(conf); err != nil {
		return nil, err
	}
	for field, dst := range map[string]*string{stateFieldTopic: &c.topic, stateFieldKeyPrefix: &c.keyPrefix} {
		v, err := conf.FieldString(field)
		if err != nil {
			return nil, err
		}
		if *dst = strings.TrimSpace(v); *dst == "" {
			return nil, fmt.Errorf("%s must not be empty", field)
		}
	}
	if strings.ContainsRune(c.keyPrefix, 0) {
		return nil, fmt.Errorf("%s must not hold a NUL byte", stateFieldKeyPrefix)
	}
	if c.partitions, err = conf.FieldInt(stateFieldPartitions); err != nil {
		return nil, err
	}
	if c.partitions < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", stateFieldPartitions, c.partitions)
	}
	if c.timeout, err = conf.FieldDuration(stateFieldTimeout); err != nil {
		return nil, err
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("%s must be positive, got %v", stateFieldTimeout, c.timeout)
	}
	return c, nil
}

// topicStateDetector is a memoryDetector whose state lives in the state
// topic. Batches are evaluated one at a time, so that the changes a batch
// carries are its own and its values are the state after it; with the
// output committing batches in order (pipeline threads: 1, a transactional
// kafka_producer) the topic's committed state is always that after the last
// committed batch.
type topicStateDetector struct {
	*memoryDetector
	conf    *stateTopicConfig
	opts    detect.EngineOptions
	retryIn func(attempt int) time.Duration

	mu       sync.Mutex // one batch at a time; guards the fields below and the engine's replacement
	rules    *detect.RuleSet
	restored bool
	pending  []detect.Change // deletions of stale entries, written with the next batch
	conn     *kafkax.ConnWatch
	records  *service.MetricCounter
}

func newTopicStateDetector(rs *detect.RuleSet, c *stateTopicConfig, opts detect.EngineOptions, sources []metaSource, mgr *service.Resources) *topicStateDetector {
	opts.TrackChanges = true
	records := mgr.Metrics().NewCounter("cel_detect_state_records_total")
	records.Incr(0)
	return &topicStateDetector{
		memoryDetector: newMemoryDetector(rs, opts, sources, mgr),
		conf:           c, opts: opts, rules: rs, retryIn: restoreBackoff,
		conn:    kafkax.NewConnWatch(mgr.Logger(), "cel_detect's state topic"),
		records: records,
	}
}

func restoreBackoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt-1, 6), 5*time.Second)
}

// processBatch restores the state first if it is not yet, evaluates the
// batch and appends its state changes to it. It fails only when ctx ends
// before the state could be restored.
func (d *topicStateDetector) processBatch(ctx context.Context, batch service.MessageBatch) (service.MessageBatch, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ensureRestored(ctx); err != nil {
		return nil, err
	}
	out, err := d.memoryDetector.processBatch(ctx, batch)
	if err != nil {
		return nil, err
	}
	changes, err := d.engine.TakeBatchChanges()
	if err != nil {
		return nil, fmt.Errorf("encoding detection state: %w", err)
	}
	changes = append(d.pending, changes...)
	d.pending = nil
	if len(changes) == 0 {
		return out, nil
	}
	d.records.Incr(int64(len(changes)))
	return append(out[:len(out):len(out)], d.stateMessages(changes)...), nil
}

// stateMessages turns state changes into messages for kafka_producer.
func (d *topicStateDetector) stateMessages(changes []detect.Change) service.MessageBatch {
	out := make(service.MessageBatch, len(changes))
	for i, c := range changes {
		m := service.NewMessage(c.Value)
		m.MetaSetMut(meta.KafkaTopic, d.conf.topic)
		m.MetaSetMut(meta.KafkaKey, d.conf.keyPrefix+"\x00"+string(c.Key))
		m.MetaSetMut(meta.DetectionState, "true")
		m.MetaSetMut(meta.KafkaNoDeadLetter, "true")
		if c.Value == nil {
			m.SetBytes(nil)
			m.MetaSetMut(meta.KafkaTombstone, "true")
		}
		out[i] = m
	}
	return out
}

// ensureRestored reads the state back, retrying until it succeeds or ctx
// ends. Each attempt starts from a fresh engine.
func (d *topicStateDetector) ensureRestored(ctx context.Context) error {
	for attempt := 0; !d.restored; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("detection state not restored from topic %q: %w", d.conf.topic, ctx.Err())
			case <-time.After(d.retryIn(attempt)):
			}
		}
		if err := d.restore(ctx); err != nil {
			if kafkax.IsConnError(err) {
				_ = d.conn.Failed(err)
			} else {
				d.log.Errorf("cel_detect: restoring detection state from topic %q (attempt %d; the pipeline waits): %v", d.conf.topic, attempt+1, err)
			}
			continue
		}
		d.conn.OK()
	}
	return nil
}

// restore reads the topic up to its last stable offset into a fresh engine.
func (d *topicStateDetector) restore(ctx context.Context) error {
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.conf.timeout)
	defer cancel()
	if err := d.ensureTopic(ctx); err != nil {
		return err
	}
	eng := detect.NewEngine(d.rules, d.opts)
	rs, err := detect.NewStateRestore(eng)
	if err != nil {
		return err
	}
	prefix := []byte(d.conf.keyPrefix + "\x00")
	var applyErr error
	err = kafkax.ReadCommitted(ctx, d.conf.kafka.Opts(), d.conf.topic, nil, func(r *kgo.Record) {
		key, ok := bytes.CutPrefix(r.Key, prefix)
		if !ok || applyErr != nil {
			return
		}
		if err := rs.Apply(key, r.Value); err != nil {
			applyErr = err
		}
	})
	if err != nil {
		return fmt.Errorf("reading topic %q: %w", d.conf.topic, err)
	}
	if applyErr != nil {
		return applyErr
	}
	stale, err := rs.Finish()
	if err != nil {
		return err
	}
	d.engine, d.pending, d.restored = eng, stale, true
	n, size := rs.Read()
	d.log.Infof("cel_detect: restored detection state from topic %q: %d records (%d bytes) committed up to its last stable offset, in %v; %d entries of changed or removed rules are deleted with the next batch",
		d.conf.topic, n, size, time.Since(started).Round(time.Millisecond), len(stale))
	return nil
}

// ensureTopic creates the state topic compacted, or makes an existing one
// compact.
func (d *topicStateDetector) ensureTopic(ctx context.Context) error {
	cl, err := kgo.NewClient(d.conf.kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	if err := d.conf.kafka.Ping(ctx, cl); err != nil {
		return err
	}
	return kafkax.EnsureCompactedTopic(ctx, cl, d.conf.topic, int32(d.conf.partitions), d.log.Warn)
}

func (d *topicStateDetector) swap(rs *detect.RuleSet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rules = rs
	d.engine.Swap(rs)
}
