package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Partitioned state: for events read from a partitioned source (Kafka), state
// is kept per source partition and follows the partition from worker to
// worker through a PartitionStore (the Kafka changelog in production).
//
// Each source partition has its own engine (rules shared, state separate).
// A batch of a partition is evaluated in offset order, then its state changes
// and a summary of the batch (the "last batch": its offsets and the output of
// its tagged events) are committed to the store as one transaction, and
// only then is the batch passed on. So the store always holds the state
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
// The store fences any previous owner when a worker opens a partition, so a
// worker that kept running past a rebalance fails its next commit, discards
// its copy of the state and restores it before evaluating again.

// lastBatchKey is the store entry of the last committed batch.
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
	Detections json.RawMessage `json:"detections,omitempty"` // encoded at once: no string of the event is kept
	Deferred   json.RawMessage `json:"deferred,omitempty"`   // the absences it made due ([]Deferred)
}

func noBatch() lastBatch { return lastBatch{From: -1, To: -1, Watermark: minTime} }

// SourcePartition names a partition of the source topic.
type SourcePartition struct {
	Topic     string
	Partition int32
}

func (s SourcePartition) String() string { return fmt.Sprintf("%s/%d", s.Topic, s.Partition) }

// Change is one state entry to write: a nil Value deletes the key.
type Change struct {
	Key, Value []byte
}

// PartitionStore keeps the state of source partitions outside the process
// (internal/changelog's Kafka topic in production).
type PartitionStore interface {
	// Open takes the partition over, fencing any previous owner, and
	// returns its writer and every entry committed so far.
	Open(ctx context.Context, src SourcePartition) (PartitionWriter, map[string][]byte, error)
	// Name says where the state lives, for log lines ("changelog topic x").
	Name() string
}

// PartitionWriter commits a partition's changes atomically; a commit fails
// once another owner has opened the partition.
type PartitionWriter interface {
	Commit(ctx context.Context, changes []Change) error
	Close()
}

// Logger is what the engine logs through (Benthos' *service.Logger is one).
type Logger interface {
	Debugf(format string, v ...any)
	Infof(format string, v ...any)
	Warnf(format string, v ...any)
	Errorf(format string, v ...any)
}

// PartitionOptions configure PartitionEngines.
type PartitionOptions struct {
	Counters PartitionCounters
	// RetryIn is the wait before the attempt-th retry of a failed restore or
	// commit; nil: 100 ms doubling up to 5 s.
	RetryIn func(attempt int) time.Duration
}

// PartitionCounters are incremented as partitions are restored and records
// re-delivered; nil functions are skipped.
type PartitionCounters struct {
	Restored     func()      // a partition's state restored from the store
	Skipped      func(n int) // re-delivered records evaluated and written out before: dropped
	Replayed     func(n int) // re-delivered records of the last committed batch: written out as first tagged
	CommitFailed func()      // a failed restore or commit (retried after restoring again)
}

func (c PartitionCounters) restored() {
	if c.Restored != nil {
		c.Restored()
	}
}

func (c PartitionCounters) skipped(n int) {
	if c.Skipped != nil && n > 0 {
		c.Skipped(n)
	}
}

func (c PartitionCounters) replayed(n int) {
	if c.Replayed != nil && n > 0 {
		c.Replayed(n)
	}
}

func (c PartitionCounters) commitFailed() {
	if c.CommitFailed != nil {
		c.CommitFailed()
	}
}

// PartitionEngines holds the state of every source partition one worker
// has processed: an engine and a store writer per partition.
type PartitionEngines struct {
	store    PartitionStore
	log      Logger
	opts     EngineOptions
	counters PartitionCounters
	rules    atomic.Pointer[RuleSet]
	retryIn  func(attempt int) time.Duration

	mu      sync.Mutex
	engines map[SourcePartition]*partitionEngine
}

// NewPartitionEngines returns partitioned state over store; no I/O happens
// until the first batch of a partition.
func NewPartitionEngines(store PartitionStore, rs *RuleSet, opts EngineOptions, log Logger, popts PartitionOptions) *PartitionEngines {
	opts.TrackChanges = true
	p := &PartitionEngines{
		store: store, log: log, opts: opts, counters: popts.Counters, retryIn: popts.RetryIn,
		engines: map[SourcePartition]*partitionEngine{},
	}
	if p.retryIn == nil {
		p.retryIn = commitBackoff
	}
	p.rules.Store(rs)
	return p
}

// partitionEngine is one source partition's engine and store writer; nil
// engine: not restored (yet, or again after a failed commit).
type partitionEngine struct {
	mu       sync.Mutex // one batch of the partition at a time
	src      SourcePartition
	engine   *Engine
	writer   PartitionWriter
	last     lastBatch
	stale    []string // store entries to delete with the next commit
	lastUsed time.Time
	evicted  bool // released by EvictIdle: fetch the partition's engine anew
}

// Swap installs a reloaded rule set in every partition's engine.
func (p *PartitionEngines) Swap(rs *RuleSet) {
	p.rules.Store(rs)
	for _, t := range p.snapshot() {
		t.mu.Lock()
		if t.engine != nil {
			t.engine.Swap(rs)
		}
		t.mu.Unlock()
	}
}

func (p *PartitionEngines) snapshot() []*partitionEngine {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*partitionEngine, 0, len(p.engines))
	for _, t := range p.engines {
		out = append(out, t)
	}
	return out
}

// Held is the number of partitions whose state is in memory.
func (p *PartitionEngines) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.engines)
}

func (p *PartitionEngines) engineOf(src SourcePartition) *partitionEngine {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.engines[src]
	if t == nil {
		t = &partitionEngine{src: src}
		p.engines[src] = t
	}
	return t
}

// locked returns the partition's engine, locked; one evicted while this
// waited for its lock is replaced by the current one.
func (p *PartitionEngines) locked(src SourcePartition) *partitionEngine {
	for {
		t := p.engineOf(src)
		t.mu.Lock()
		if !t.evicted {
			return t
		}
		t.mu.Unlock()
	}
}

// Record is one event of a source partition.
type Record struct {
	Bytes  []byte
	Meta   []MetaField
	Offset int64
	// Rule, when set, is the only rule evaluated on the record: it came
	// through a repartition topic for that rule's state (routes.go).
	Rule string
}

// Outcome is what becomes of one record of a batch.
type Outcome struct {
	Drop       bool        // evaluated and written out before: leave it out
	Detections []Detection // the record's tags (again, for a replayed one)
	Out        []byte      // the record's new bytes; nil: unchanged
	Deferred   []Deferred  // absences the record made due: messages to emit after it
}

// Process evaluates one partition's records in offset order and commits the
// state. A failed commit (the store down, or the partition taken over by
// another worker) discards the state, which is restored again before the
// records are evaluated again; this repeats until it succeeds or ctx ends.
func (p *PartitionEngines) Process(ctx context.Context, src SourcePartition, recs []Record) ([]Outcome, error) {
	t := p.locked(src)
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
				p.counters.commitFailed()
				p.log.Warnf("cel_detect: restoring state of %s from %s (attempt %d): %v", t.src, p.store.Name(), attempt+1, err)
				continue
			}
		}
		plan, next, changes, err := p.evaluate(t, recs)
		if err == nil && changes != nil {
			err = t.writer.Commit(ctx, changes)
		}
		if err != nil {
			p.counters.commitFailed()
			logf := p.log.Warnf
			if attempt >= 3 {
				logf = p.log.Errorf // not a passing hiccup: the batch waits until this is fixed
			}
			logf("cel_detect: committing state of %s (offsets %d-%d) to %s (attempt %d), restoring it again: %v",
				t.src, recs[0].Offset, recs[len(recs)-1].Offset, p.store.Name(), attempt+1, err)
			t.discard()
			continue
		}
		if changes != nil {
			t.last, t.stale = next, nil
		}
		if n := dropped(plan); n > 0 {
			p.log.Infof("cel_detect: %d re-delivered records of %s were evaluated and written out before (%s says the partition is evaluated up to offset %d); not evaluating them again",
				n, t.src, p.store.Name(), t.last.To)
		}
		return plan, nil
	}
}

func commitBackoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 6)
	return min(d, 5*time.Second)
}

// restore opens the partition in the store: fencing any previous owner,
// then loading what it committed.
func (p *PartitionEngines) restore(ctx context.Context, t *partitionEngine) error {
	started := time.Now()
	w, entries, err := p.store.Open(ctx, t.src)
	if err != nil {
		return err
	}
	eng := NewEngine(p.rules.Load(), p.opts)
	stale, err := eng.restoreEntries(entries)
	last := noBatch()
	if err == nil {
		if raw, ok := entries[lastBatchKey]; ok {
			if uerr := json.Unmarshal(raw, &last); uerr != nil {
				err = fmt.Errorf("entry of the last batch: %w", uerr)
			}
		}
	}
	if err != nil {
		w.Close()
		return err
	}
	eng.restoreWatermark(last.Watermark)
	t.engine, t.writer, t.last, t.stale = eng, w, last, stale
	p.counters.restored()
	p.log.Infof("cel_detect: restored state of %s from %s: %d entries, evaluated up to offset %d, in %v",
		t.src, p.store.Name(), len(entries), last.To, time.Since(started).Round(time.Millisecond))
	return nil
}

// discard forgets the partition's state and closes its writer.
func (t *partitionEngine) discard() {
	if t.writer != nil {
		t.writer.Close()
	}
	if t.engine != nil {
		t.engine.ReleaseState()
	}
	t.engine, t.writer, t.last, t.stale = nil, nil, noBatch(), nil
}

func dropped(plan []Outcome) int {
	n := 0
	for _, o := range plan {
		if o.Drop {
			n++
		}
	}
	return n
}

// evaluate decides each record's outcome against the last committed batch
// and evaluates the new ones. changes is nil when no record was new (the
// state did not change and nothing needs committing).
func (p *PartitionEngines) evaluate(t *partitionEngine, recs []Record) ([]Outcome, lastBatch, []Change, error) {
	plan := make([]Outcome, len(recs))
	next := lastBatch{From: -1, To: -1}
	replay := map[int64]taggedRecord{}
	for _, r := range t.last.Tagged {
		replay[r.Offset] = r
	}
	evaluated := false
	skipped, replayed := 0, 0
	for i, r := range recs {
		var o Outcome
		switch {
		case r.Offset < t.last.From || r.Offset <= next.To:
			o.Drop = true
			skipped++
		case r.Offset <= t.last.To:
			if tr, ok := replay[r.Offset]; ok {
				if err := replayTagged(&o, r, tr, p.rules.Load()); err != nil {
					return nil, next, nil, err
				}
			}
			replayed++
		default:
			res, err := t.engine.process(r.Bytes, r.Meta, r.Rule)
			if err != nil {
				p.log.Debugf("cel_detect: event passed on untagged: %v", err)
			}
			if len(res.Detections) > 0 {
				o.Detections, o.Out = res.Detections, res.Out
			}
			o.Deferred = res.Deferred
			evaluated = true
		}
		plan[i] = o
		if o.Drop {
			continue
		}
		if next.From < 0 {
			next.From = r.Offset
		}
		next.To = r.Offset
		if len(o.Detections) > 0 || len(o.Deferred) > 0 {
			tr, err := tagged(r.Offset, o)
			if err != nil {
				return nil, next, nil, err
			}
			next.Tagged = append(next.Tagged, tr)
		}
	}
	p.counters.skipped(skipped)
	p.counters.replayed(replayed)
	if !evaluated {
		return plan, next, nil, nil
	}
	changes, err := p.changes(t, next)
	return plan, next, changes, err
}

// tagged summarises a record that left with detections or deferred
// absences, for replaying it.
func tagged(offset int64, o Outcome) (taggedRecord, error) {
	tr := taggedRecord{Offset: offset}
	var err error
	if len(o.Detections) > 0 {
		if tr.Detections, err = json.Marshal(o.Detections); err != nil {
			return tr, fmt.Errorf("offset %d: encoding detections: %w", offset, err)
		}
	}
	if len(o.Deferred) > 0 {
		if tr.Deferred, err = json.Marshal(o.Deferred); err != nil {
			return tr, fmt.Errorf("offset %d: encoding deferred absences: %w", offset, err)
		}
	}
	return tr, nil
}

// replayTagged writes a record of the last committed batch out as it was
// first tagged, with the absences it made due; the rules' descriptions come
// from the set running now.
func replayTagged(o *Outcome, r Record, tr taggedRecord, rs *RuleSet) error {
	if len(tr.Deferred) > 0 {
		if err := json.Unmarshal(tr.Deferred, &o.Deferred); err != nil {
			return fmt.Errorf("offset %d: deferred absences of the last batch: %w", r.Offset, err)
		}
		for j := range o.Deferred {
			for i := range o.Deferred[j].Detections {
				o.Deferred[j].Detections[i].Rule = rs.Info(o.Deferred[j].Detections[i].ID)
			}
		}
	}
	if len(tr.Detections) == 0 {
		return nil
	}
	if err := json.Unmarshal(tr.Detections, &o.Detections); err != nil {
		return fmt.Errorf("offset %d: detections of the last batch: %w", r.Offset, err)
	}
	for i := range o.Detections {
		o.Detections[i].Rule = rs.Info(o.Detections[i].ID)
	}
	out, err := withDetections(r.Bytes, o.Detections)
	if err != nil {
		return fmt.Errorf("offset %d: %w", r.Offset, err)
	}
	o.Out = out
	return nil
}

// changes are the engine's state changes, the stale entries' deletions and
// the summary of the batch, to commit as one.
func (p *PartitionEngines) changes(t *partitionEngine, next lastBatch) ([]Change, error) {
	changes, err := t.engine.takeChanges()
	if err != nil {
		return nil, err
	}
	next.Watermark = t.engine.watermark.Load()
	summary, err := json.Marshal(next)
	if err != nil {
		return nil, fmt.Errorf("encoding the batch summary: %w", err)
	}
	for _, k := range t.stale {
		changes = append(changes, Change{Key: []byte(k)})
	}
	return append(changes, Change{Key: []byte(lastBatchKey), Value: summary}), nil
}

// EvictIdle forgets the state of partitions no batch came for within idle:
// most likely they moved to another worker. The store has it all, so a
// partition that comes back is restored from there.
func (p *PartitionEngines) EvictIdle(idle time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for src, t := range p.engines {
		if !t.mu.TryLock() {
			continue
		}
		if time.Since(t.lastUsed) > idle {
			t.discard()
			t.evicted = true
			delete(p.engines, src)
			p.log.Debugf("cel_detect: released state of %s (idle)", src)
		}
		t.mu.Unlock()
	}
}

// Close releases every writer.
func (p *PartitionEngines) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.engines {
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
