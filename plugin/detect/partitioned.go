package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/changelog"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// Partitioned state (the `changelog` field): for events read from Kafka by
// kafka_consumer, state is kept per source partition and follows the
// partition from worker to worker through a compacted changelog topic.
//
// Each source partition has its own engine (rules shared, state separate).
// A batch of a partition is evaluated in offset order, then its state changes
// and a summary of the batch (the "last batch": its offsets and the output of
// its tagged events) are committed to the changelog as one transaction, and
// only then is the batch passed on. So the changelog always holds the state
// after some whole batch B, and B's output may or may not have reached the
// output. With one batch per partition in the pipeline at a time
// (kafka_consumer's default), every batch before B was acknowledged before B
// was handed out.
//
// That makes re-delivery exact. Whoever processes the partition next (the same
// worker after a nack, another after a rebalance or a crash) restores the state
// of B and then, per record:
//   - offset before B: already evaluated and written out: dropped;
//   - offset within B: written out again exactly as B's evaluation tagged it;
//   - offset after B: evaluated from B's state.
//
// Tags are therefore those of one uninterrupted run over the partition: a
// threshold never counts an event twice, an alert keeps its alert_id, and a
// remembered value survives the move. What can repeat is B's output.
//
// The changelog's transactional producer per partition fences any previous
// owner when a worker takes a partition over, so a worker that kept running
// past a rebalance fails its next commit, discards its copy of the state and
// restores it before evaluating again.

// lastBatchKey is the changelog entry of the last committed batch.
const lastBatchKey = "m"

// lastBatch summarises the newest batch whose state is committed.
type lastBatch struct {
	From      int64          `json:"from"`
	To        int64          `json:"to"`
	Watermark int64          `json:"watermark"`
	Tagged    []taggedRecord `json:"tagged,omitempty"`
}

// taggedRecord is a record of the batch that left with detections. The
// event itself is not stored: re-delivery brings it again.
type taggedRecord struct {
	Offset     int64           `json:"offset"`
	Detections json.RawMessage `json:"detections"` // encoded at once: no string of the event is kept
}

func noBatch() lastBatch { return lastBatch{From: -1, To: -1, Watermark: minTime} }

// changelogStore is what partitioned state needs of the changelog
// (changelog.Store).
type changelogStore interface {
	Open(ctx context.Context, source string, partition int32) (*changelog.Writer, map[string][]byte, error)
	Topic() string
}

// sourcePartition names a partition of the input topic.
type sourcePartition struct {
	topic     string
	partition int32
}

func (s sourcePartition) String() string { return fmt.Sprintf("%s/%d", s.topic, s.partition) }

// partitioned holds the state of every source partition this worker has
// processed.
type partitioned struct {
	store   changelogStore
	log     *service.Logger
	opts    EngineOptions
	meta    []metaSource
	rules   atomic.Pointer[RuleSet]
	retryIn func(attempt int) time.Duration

	mu    sync.Mutex
	tasks map[sourcePartition]*partitionTask

	restores, skipped, replayed, commitErrors, noSource *service.MetricCounter
}

func newPartitioned(store changelogStore, rs *RuleSet, opts EngineOptions, meta []metaSource, mgr *service.Resources) *partitioned {
	m := mgr.Metrics()
	opts.trackChanges = true
	p := &partitioned{
		store: store, log: mgr.Logger(), opts: opts, meta: meta, retryIn: commitBackoff,
		tasks:        map[sourcePartition]*partitionTask{},
		restores:     m.NewCounter("cel_detect_state_restores_total"),
		skipped:      m.NewCounter("cel_detect_records_already_evaluated_total"),
		replayed:     m.NewCounter("cel_detect_records_replayed_total"),
		commitErrors: m.NewCounter("cel_detect_changelog_errors_total"),
		noSource:     m.NewCounter("cel_detect_records_without_partition_total"),
	}
	// Series exist from the start, so increase() and alerts see the first
	// occurrence (Benthos creates a series at its first Incr).
	for _, c := range []*service.MetricCounter{p.restores, p.skipped, p.replayed, p.commitErrors, p.noSource} {
		c.Incr(0)
	}
	p.rules.Store(rs)
	return p
}

// partitionTask is one source partition's engine and changelog writer; nil
// engine: not restored (yet, or again after a failed commit).
type partitionTask struct {
	mu       sync.Mutex // one batch of the partition at a time
	src      sourcePartition
	engine   *Engine
	writer   *changelog.Writer
	last     lastBatch
	stale    []string // changelog entries to delete with the next commit
	lastUsed time.Time
	evicted  bool // released by evictIdle: fetch the partition's task anew
}

// Swap installs a reloaded rule set in every partition's engine.
func (p *partitioned) Swap(rs *RuleSet) {
	p.rules.Store(rs)
	p.mu.Lock()
	tasks := make([]*partitionTask, 0, len(p.tasks))
	for _, t := range p.tasks {
		tasks = append(tasks, t)
	}
	p.mu.Unlock()
	for _, t := range tasks {
		t.mu.Lock()
		if t.engine != nil {
			t.engine.Swap(rs)
		}
		t.mu.Unlock()
	}
}

func (p *partitioned) task(src sourcePartition) *partitionTask {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tasks[src]
	if t == nil {
		t = &partitionTask{src: src}
		p.tasks[src] = t
	}
	return t
}

// processBatch evaluates a batch, partition by partition. Records without
// Kafka metadata are passed on untagged with an error. It fails only when
// ctx ends (shutdown) before a partition's changes are committed.
func (p *partitioned) processBatch(ctx context.Context, batch service.MessageBatch) (service.MessageBatch, error) {
	out := make(service.MessageBatch, 0, len(batch))
	var order []sourcePartition
	groups := map[sourcePartition][]sourced{}
	for _, msg := range batch {
		src, off, err := sourceOf(msg)
		if err != nil {
			p.noSource.Incr(1)
			p.log.Errorf("cel_detect: event passed on untagged: %v", err)
			msg.SetError(err)
			out = append(out, msg)
			continue
		}
		if _, ok := groups[src]; !ok {
			order = append(order, src)
		}
		groups[src] = append(groups[src], sourced{msg: msg, offset: off})
	}
	for _, src := range order {
		kept, err := p.processPartition(ctx, src, groups[src])
		if err != nil {
			return nil, err
		}
		out = append(out, kept...)
	}
	return out, nil
}

// lockedTask returns the partition's task, locked; one evicted while this
// waited for its lock is replaced by the current one.
func (p *partitioned) lockedTask(src sourcePartition) *partitionTask {
	for {
		t := p.task(src)
		t.mu.Lock()
		if !t.evicted {
			return t
		}
		t.mu.Unlock()
	}
}

// sourced is a message with its offset in its source partition.
type sourced struct {
	msg    *service.Message
	offset int64
}

func sourceOf(msg *service.Message) (sourcePartition, int64, error) {
	topic, ok := msg.MetaGet(meta.KafkaTopic)
	if !ok || topic == "" {
		return sourcePartition{}, 0, errors.New("no kafka_topic metadata: cel_detect with a changelog needs events read by kafka_consumer")
	}
	part, err := metaInt(msg, meta.KafkaPartition)
	if err != nil {
		return sourcePartition{}, 0, err
	}
	off, err := metaInt(msg, meta.KafkaOffset)
	if err != nil {
		return sourcePartition{}, 0, err
	}
	return sourcePartition{topic: topic, partition: int32(part)}, off, nil
}

func metaInt(msg *service.Message, key string) (int64, error) {
	v, ok := msg.MetaGetMut(key)
	if !ok {
		return 0, fmt.Errorf("no %s metadata: cel_detect with a changelog needs events read by kafka_consumer", key)
	}
	switch n := v.(type) {
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s metadata %q is not an integer", key, n)
		}
		return i, nil
	}
	return 0, fmt.Errorf("%s metadata is a %T, not an integer", key, v)
}

// processPartition evaluates one partition's records in order and commits
// the state. A failed commit (Kafka down, or the partition taken over by
// another worker) discards the state, which is restored again before the
// records are evaluated again; this repeats until it succeeds or ctx ends.
func (p *partitioned) processPartition(ctx context.Context, src sourcePartition, recs []sourced) (service.MessageBatch, error) {
	t := p.lockedTask(src)
	defer t.mu.Unlock()
	t.lastUsed = time.Now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("state of %s not committed: %w", t.src, ctx.Err())
			case <-time.After(p.retryIn(attempt)):
			}
		}
		if t.engine == nil {
			if err := p.restore(ctx, t); err != nil {
				p.commitErrors.Incr(1)
				p.log.Warnf("cel_detect: restoring state of %s from changelog %q (attempt %d): %v", t.src, p.store.Topic(), attempt+1, err)
				continue
			}
		}
		plan, next, changes, err := p.evaluate(t, recs)
		if err == nil && changes != nil {
			err = t.writer.Commit(ctx, changes)
		}
		if err != nil {
			p.commitErrors.Incr(1)
			logf := p.log.Warnf
			if attempt >= 3 {
				logf = p.log.Errorf // not a passing hiccup: the batch waits until this is fixed
			}
			logf("cel_detect: committing state of %s (offsets %d-%d) to changelog %q (attempt %d), restoring it again: %v",
				t.src, recs[0].offset, recs[len(recs)-1].offset, p.store.Topic(), attempt+1, err)
			t.discard()
			continue
		}
		if changes != nil {
			t.last, t.stale = next, nil
		}
		if n := plan.dropped(); n > 0 {
			p.log.Infof("cel_detect: %d re-delivered records of %s were evaluated and written out before (changelog %q says the partition is evaluated up to offset %d); not evaluating them again",
				n, t.src, p.store.Topic(), t.last.To)
		}
		return plan.apply(), nil
	}
}

func commitBackoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	return min(d, 5*time.Second)
}

// restore opens the partition's changelog: fencing any previous owner, then
// loading what it committed.
func (p *partitioned) restore(ctx context.Context, t *partitionTask) error {
	started := time.Now()
	w, entries, err := p.store.Open(ctx, t.src.topic, t.src.partition)
	if err != nil {
		return err
	}
	eng := NewEngine(p.rules.Load(), p.opts)
	stale, err := eng.restoreEntries(entries)
	last := noBatch()
	if err == nil {
		if raw, ok := entries[lastBatchKey]; ok {
			if uerr := json.Unmarshal(raw, &last); uerr != nil {
				err = fmt.Errorf("changelog entry of the last batch: %w", uerr)
			}
		}
	}
	if err != nil {
		w.Close()
		return err
	}
	eng.setWatermark(last.Watermark)
	t.engine, t.writer, t.last, t.stale = eng, w, last, stale
	p.restores.Incr(1)
	p.log.Infof("cel_detect: restored state of %s from changelog %q: %d entries, evaluated up to offset %d, in %v",
		t.src, p.store.Topic(), len(entries), last.To, time.Since(started).Round(time.Millisecond))
	return nil
}

// discard forgets the partition's state and closes its writer.
func (t *partitionTask) discard() {
	if t.writer != nil {
		t.writer.Close()
	}
	t.engine, t.writer, t.last, t.stale = nil, nil, noBatch(), nil
}

// outcome is what happens to one message of a batch.
type outcome struct {
	msg  *service.Message
	drop bool
	dets []Detection
	out  []byte // nil: unchanged
}

type batchPlan []outcome

func (plan batchPlan) dropped() int {
	n := 0
	for _, o := range plan {
		if o.drop {
			n++
		}
	}
	return n
}

// apply sets the planned bytes and metadata, and leaves out dropped messages.
func (plan batchPlan) apply() service.MessageBatch {
	out := make(service.MessageBatch, 0, len(plan))
	for _, o := range plan {
		if o.drop {
			continue
		}
		o.msg.MetaSetMut(meta.DetectionIDs, detectionIDs(o.dets))
		if o.out != nil {
			o.msg.SetBytes(o.out)
		}
		out = append(out, o.msg)
	}
	return out
}

// evaluate decides each record's outcome against the last committed batch
// and evaluates the new ones. changes is nil when no record was new (the
// state did not change and nothing needs committing).
func (p *partitioned) evaluate(t *partitionTask, recs []sourced) (batchPlan, lastBatch, []changelog.Record, error) {
	plan := make(batchPlan, len(recs))
	next := lastBatch{From: -1, To: -1}
	replay := map[int64]taggedRecord{}
	for _, r := range t.last.Tagged {
		replay[r.Offset] = r
	}
	evaluated := false
	for i, r := range recs {
		o := outcome{msg: r.msg}
		switch {
		case r.offset < t.last.From || r.offset <= next.To:
			o.drop = true
			p.skipped.Incr(1)
		case r.offset <= t.last.To:
			if tr, ok := replay[r.offset]; ok {
				if err := json.Unmarshal(tr.Detections, &o.dets); err != nil {
					return nil, next, nil, fmt.Errorf("offset %d: detections of the last batch: %w", r.offset, err)
				}
				if raw, err := r.msg.AsBytes(); err == nil {
					o.out, err = withDetections(raw, o.dets)
					if err != nil {
						return nil, next, nil, fmt.Errorf("offset %d: %w", r.offset, err)
					}
				}
			}
			p.replayed.Incr(1)
		default:
			raw, err := r.msg.AsBytes()
			if err != nil {
				break
			}
			res, err := t.engine.ProcessWithMeta(raw, metaFields(p.meta, r.msg))
			if err != nil {
				p.log.Debugf("cel_detect: event passed on untagged: %v", err)
			}
			if len(res.Detections) > 0 {
				o.dets, o.out = res.Detections, res.Out
			}
			evaluated = true
		}
		plan[i] = o
		if o.drop {
			continue
		}
		if next.From < 0 {
			next.From = r.offset
		}
		next.To = r.offset
		if len(o.dets) > 0 {
			dj, err := json.Marshal(o.dets)
			if err != nil {
				return nil, next, nil, fmt.Errorf("offset %d: encoding detections: %w", r.offset, err)
			}
			next.Tagged = append(next.Tagged, taggedRecord{Offset: r.offset, Detections: dj})
		}
	}
	if !evaluated {
		return plan, next, nil, nil
	}
	changes, err := t.engine.takeChanges()
	if err != nil {
		return nil, next, nil, err
	}
	next.Watermark = t.engine.watermark.Load()
	summary, err := json.Marshal(next)
	if err != nil {
		return nil, next, nil, fmt.Errorf("encoding the batch summary: %w", err)
	}
	for _, k := range t.stale {
		changes = append(changes, changelog.Record{Key: []byte(k)})
	}
	changes = append(changes, changelog.Record{Key: []byte(lastBatchKey), Value: summary})
	return plan, next, changes, nil
}

// evictIdle forgets the state of partitions no batch came for within idle:
// most likely they moved to another worker. The changelog has it all, so a
// partition that comes back is restored from there.
func (p *partitioned) evictIdle(idle time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for src, t := range p.tasks {
		if !t.mu.TryLock() {
			continue
		}
		if time.Since(t.lastUsed) > idle {
			t.discard()
			t.evicted = true
			delete(p.tasks, src)
			p.log.Debugf("cel_detect: released state of %s (idle)", src)
		}
		t.mu.Unlock()
	}
}

// close releases every writer.
func (p *partitioned) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.tasks {
		t.mu.Lock()
		t.discard()
		t.mu.Unlock()
	}
}

// withDetections writes detections into an event again, as its first
// evaluation did.
func withDetections(raw []byte, dets []Detection) ([]byte, error) {
	ev, err := decodeEvent(raw)
	if err != nil {
		return nil, err
	}
	return addDetections(raw, ev.root, false, dets)
}
