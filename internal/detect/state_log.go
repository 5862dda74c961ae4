package detect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// State in a log committed by someone else: an engine whose state changes
// leave with each batch as keyed records (TakeBatchChanges), for an output
// that writes them in the same transaction as the batch's events (cel_detect's
// state_topic with a transactional kafka_producer), and whose state is read
// back, record by record in log order, with a StateRestore. The keys are the
// changelog entries' (state_entries.go) plus the watermark's.

// watermarkKey is the log entry holding the engine's watermark; it has no
// NUL, so restoring state entries skips it.
const watermarkKey = "w"

// TakeBatchChanges returns the current value (or deletion: nil Value) of
// every state entry changed since the last call, with the watermark, and
// forgets the changes; nil when nothing changed. The engine must track
// changes (EngineOptions.TrackChanges). Call it once per batch, after the
// batch is evaluated and before another batch is: the values are the state
// after this batch.
func (e *Engine) TakeBatchChanges() ([]Change, error) {
	if !e.track {
		return nil, errors.New("the engine does not track changes (EngineOptions.TrackChanges)")
	}
	changes, err := e.takeChanges()
	if err != nil || len(changes) == 0 {
		return nil, err
	}
	w := strconv.AppendInt(nil, e.watermark.Load(), 10)
	return append(changes, Change{Key: []byte(watermarkKey), Value: w}), nil
}

// StateRestore rebuilds an engine's state from the records of a log read in
// order: the latest record of a key wins and a nil value deletes it. Each
// record is applied as it is read and not kept, so restoring holds the state
// and one record, never the log.
type StateRestore struct {
	engine    *Engine
	rules     map[string]activeRule
	stale     map[string]struct{}
	watermark int64
	records   int
	bytes     int64
	scratch   frozenScratch
}

// NewStateRestore starts restoring into e, a fresh engine that tracks
// changes.
func NewStateRestore(e *Engine) (*StateRestore, error) {
	if !e.track {
		return nil, errors.New("restoring state: the engine does not track changes (EngineOptions.TrackChanges)")
	}
	return &StateRestore{engine: e, rules: e.rulesByID(), stale: map[string]struct{}{}, watermark: minTime}, nil
}

// Apply applies one record of the log: its key (without any prefix the
// writer added) and value. Neither is kept: what state keeps is copied.
func (r *StateRestore) Apply(key, value []byte) error {
	// A view, not a copy: most keys are copied into their state entry
	// anyway (restoreEntryOf), and a log holds millions of them.
	k := bytesView(key)
	r.records++
	r.bytes += int64(len(k) + len(value))
	if k == watermarkKey {
		if value == nil {
			return nil
		}
		w, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil {
			return fmt.Errorf("state log: watermark %q: %w", value, err)
		}
		r.watermark = max(r.watermark, w)
		return nil
	}
	stale, err := restoreEntryOf(r.rules, r.engine.orgs, k, value, &r.scratch)
	if err != nil {
		return err
	}
	if stale {
		r.stale[strings.Clone(k)] = struct{}{}
	} else {
		delete(r.stale, k)
	}
	return nil
}

// Read says how many records and bytes (keys and values) were applied.
func (r *StateRestore) Read() (records int, bytes int64) { return r.records, r.bytes }

// Finish completes the restore. It returns the deletions of the entries no
// active rule can use (a rule removed or changed since they were written),
// for the caller to write with its next batch.
func (r *StateRestore) Finish() ([]Change, error) {
	restoreDeadlines(r.rules)
	r.engine.restoreWatermark(r.watermark)
	if _, err := r.engine.takeChanges(); err != nil { // restoring is no change
		return nil, err
	}
	out := make([]Change, 0, len(r.stale))
	for k := range r.stale {
		out = append(out, Change{Key: []byte(k)})
	}
	return out, nil
}
