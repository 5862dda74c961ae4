package detect

import (
	"context"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/meta"
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
	msg.MetaSetMut(meta.DetectionIDs, detectionIDs(res.Detections))
	if len(res.Detections) > 0 {
		msg.SetBytes(res.Out)
	}
	return res.Deferred
}

func (d *memoryDetector) swap(rs *detect.RuleSet) { d.engine.Swap(rs) }
func (d *memoryDetector) run(context.Context)     {}
func (d *memoryDetector) close() error            { return nil }

// snapshotDetector is a memoryDetector whose state is snapshotted to a file
// every interval and on close, and restored from it at start.
type snapshotDetector struct {
	*memoryDetector
	path  string
	every time.Duration
}

// newSnapshotDetector prepares the state file's directory (a bad path stops
// the pipeline at start) and restores what the file holds.
func newSnapshotDetector(d *memoryDetector, path string, every time.Duration) (*snapshotDetector, error) {
	if err := detect.PrepareStateDir(path); err != nil {
		return nil, err
	}
	if n, err := d.engine.LoadSnapshot(path); err != nil {
		d.log.Errorf("cel_detect: ignoring state file %s: %v", path, err)
	} else if n > 0 {
		d.log.Infof("cel_detect: restored state of %d rules from %s", n, path)
	}
	return &snapshotDetector{memoryDetector: d, path: path, every: every}, nil
}

func (d *snapshotDetector) run(ctx context.Context) {
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.engine.Expire()
			if err := d.engine.SaveSnapshot(d.path); err != nil {
				d.log.Errorf("cel_detect: %v", err)
			}
		}
	}
}

func (d *snapshotDetector) close() error { return d.engine.SaveSnapshot(d.path) }
