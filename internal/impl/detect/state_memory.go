package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
)

// memoryDetector keeps one engine's state in memory, shared by all pipeline
// threads; a restart forgets it.
type memoryDetector struct {
	engine *detect.Engine
	meta   []metaSource
	log    *service.Logger

	events       *service.MetricCounter
	decodeErrors *service.MetricCounter
	evalTime     *service.MetricTimer
}

func newMemoryDetector(rs *detect.RuleSet, opts detect.EngineOptions, sources []metaSource, mgr *service.Resources) *memoryDetector {
	m := mgr.Metrics()
	return &memoryDetector{
		engine:       detect.NewEngine(rs, opts),
		meta:         sources,
		log:          mgr.Logger(),
		events:       m.NewCounter("cel_detect_events_total"),
		decodeErrors: m.NewCounter("cel_detect_decode_errors_total"),
		evalTime:     m.NewTimer("cel_detect_eval_ns"),
	}
}

func (d *memoryDetector) processBatch(_ context.Context, batch service.MessageBatch) (service.MessageBatch, error) {
	var out service.MessageBatch // the batch with deferred messages; nil while there are none
	for i, msg := range batch {
		deferred := d.process(msg)
		if out != nil {
			out = append(out, msg)
		}
		if len(deferred) > 0 {
			if out == nil {
				out = append(make(service.MessageBatch, 0, len(batch)+len(deferred)), batch[:i+1]...)
			}
			out = append(out, deferredMessages(msg, deferred, d.meta)...)
		}
	}
	if out == nil {
		return batch, nil
	}
	return out, nil
}

// process tags one event and returns the absences its time made due. It
// never drops or fails a message.
func (d *memoryDetector) process(msg *service.Message) []detect.Deferred {
	raw, err := msg.AsBytes()
	if err != nil {
		return nil
	}
	started := time.Now()
	res, err := d.engine.ProcessWithMeta(raw, metaFields(d.meta, msg))
	d.evalTime.Timing(time.Since(started).Nanoseconds())
	d.events.Incr(1)
	if err != nil {
		d.decodeErrors.Incr(1)
		d.log.Debugf("cel_detect: event passed on untagged: %v", err)
	}
	setDetections(msg, res.Detections, res.Out)
	return res.Deferred
}

func (d *memoryDetector) swap(rs *detect.RuleSet) { d.engine.Swap(rs) }
func (d *memoryDetector) run(context.Context)     {}
func (d *memoryDetector) close() error            { return nil }

// snapshotDetector is a memoryDetector whose state lives in a state file:
// every batch's changes are journaled (fsynced) before the batch moves on,
// and the whole state is snapshotted every interval and on close (see
// detect.StateFile). So the state on disk is never behind what left the
// processor, and a crash at any instant loses no counted event.
type snapshotDetector struct {
	*memoryDetector
	file  *detect.StateFile
	path  string
	every time.Duration
}

// newSnapshotDetector prepares the state file's directory (a bad path stops
// the pipeline at start) and restores what the snapshot and journal hold.
// The memory detector's engine must track changes.
func newSnapshotDetector(d *memoryDetector, path string, every time.Duration) (*snapshotDetector, error) {
	if err := detect.PrepareStateDir(path); err != nil {
		return nil, err
	}
	f, restored, replayed, err := detect.OpenStateFile(path, d.engine)
	if err != nil {
		d.log.Errorf("cel_detect: ignoring state file %s (starting with empty state; it is replaced at the next snapshot): %v", path, err)
		if f, err = freshStateFile(path, d); err != nil {
			return nil, err
		}
	} else if restored > 0 || replayed > 0 {
		d.log.Infof("cel_detect: restored state of %d rules from %s and %d journal commits after it", restored, path, replayed)
	}
	return &snapshotDetector{memoryDetector: d, file: f, path: path, every: every}, nil
}

// freshStateFile moves an unreadable snapshot aside and starts anew.
func freshStateFile(path string, d *memoryDetector) (*detect.StateFile, error) {
	aside := path + ".unreadable"
	if err := os.Rename(path, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state_file %s cannot be read nor moved aside: %w", path, err)
	}
	d.log.Warnf("cel_detect: the unreadable state file is kept as %s", aside)
	f, _, _, err := detect.OpenStateFile(path, d.engine)
	return f, err
}

func (d *snapshotDetector) processBatch(ctx context.Context, batch service.MessageBatch) (service.MessageBatch, error) {
	out, err := d.memoryDetector.processBatch(ctx, batch)
	if err != nil {
		return nil, err
	}
	if err := d.commit(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// commit journals the batch's state changes before the batch moves on,
// retrying until it succeeds: a batch that left with its state unwritten
// would be detected once and forgotten by a restart. (A processor's error
// does not hold a batch back in Benthos: its messages go on, marked.) Only
// a forced shutdown ends the wait; the journal keeps the changes for the
// next commit either way.
func (d *snapshotDetector) commit(ctx context.Context) error {
	delay, lastLogged := 100*time.Millisecond, time.Time{}
	for attempt := 1; ; attempt++ {
		err := d.file.Commit()
		if err == nil {
			if attempt > 1 {
				d.log.Infof("cel_detect: journaled detection state to %s after %d attempts", d.path, attempt)
			}
			return nil
		}
		if time.Since(lastLogged) >= 10*time.Second {
			d.log.Errorf("cel_detect: journaling detection state to %s failed (attempt %d; the pipeline waits, nothing is lost; free the disk or fix the directory's permissions): %v", d.path, attempt, err)
			lastLogged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("journaling detection state to %s: %w", d.path, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (d *snapshotDetector) run(ctx context.Context) {
	// No expiry here: the engine sweeps as event time moves, so that
	// state, and the tags it gives, never depend on when a timer fired.
	every(ctx, d.every, func() {
		if err := d.file.Snapshot(); err != nil {
			d.log.Errorf("cel_detect: %v", err)
		}
	})
}

// every calls f each period until ctx ends.
func every(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func (d *snapshotDetector) close() error { return d.file.Close() }
