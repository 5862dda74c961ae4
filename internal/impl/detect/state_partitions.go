package detect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/changelog"
	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// idlePartition is how long the state of a source partition no batch came
// for stays in memory (partitioned state); it is in the changelog anyway.
const idlePartition = 10 * time.Minute

// partitionedDetector keeps state per Kafka source partition in a changelog
// topic (the `changelog` field): the Benthos side of detect.PartitionEngines.
type partitionedDetector struct {
	engines  *detect.PartitionEngines
	meta     []metaSource
	log      *service.Logger
	noSource *service.MetricCounter
	// counted is told each batch's events and cel_route's watermark
	// records (which are no events: no rule evaluates them).
	counted func(events, watermarks int)
}

// retryIn is the wait before retrying a failed restore or commit (nil: the
// engine's default backoff).
func newPartitionedDetector(cl *changelog.Store, rs *detect.RuleSet, opts detect.EngineOptions, sources []metaSource, mgr *service.Resources, retryIn func(int) time.Duration) *partitionedDetector {
	m := mgr.Metrics()
	restores := m.NewCounter("cel_detect_state_restores_total")
	skipped := m.NewCounter("cel_detect_records_already_evaluated_total")
	replayed := m.NewCounter("cel_detect_records_replayed_total")
	commitErrors := m.NewCounter("cel_detect_changelog_errors_total")
	events, watermarks := m.NewCounter("cel_detect_events_total"), m.NewCounter("cel_detect_watermarks_total")
	d := &partitionedDetector{
		meta:     sources,
		log:      mgr.Logger(),
		noSource: m.NewCounter("cel_detect_records_without_partition_total"),
		counted: func(e, w int) {
			events.Incr(int64(e))
			watermarks.Incr(int64(w))
		},
	}
	// Series exist from the start, so increase() and alerts see the first
	// occurrence (Benthos creates a series at its first Incr).
	for _, c := range []*service.MetricCounter{restores, skipped, replayed, commitErrors, d.noSource, watermarks} {
		c.Incr(0)
	}
	d.engines = detect.NewPartitionEngines(changelogStore{cl}, rs, opts, mgr.Logger(), detect.PartitionOptions{
		Counters: detect.PartitionCounters{
			Restored:     func() { restores.Incr(1) },
			Skipped:      func(n int) { skipped.Incr(int64(n)) },
			Replayed:     func(n int) { replayed.Incr(int64(n)) },
			CommitFailed: func() { commitErrors.Incr(1) },
		},
		RetryIn: retryIn,
	})
	return d
}

// processBatch evaluates a batch, partition by partition. Records without
// Kafka metadata are passed on untagged with an error. It fails only when
// ctx ends (shutdown) before a partition's changes are committed.
func (d *partitionedDetector) processBatch(ctx context.Context, batch service.MessageBatch) (service.MessageBatch, error) {
	out := make(service.MessageBatch, 0, len(batch))
	var order []detect.SourcePartition
	groups := map[detect.SourcePartition]service.MessageBatch{}
	records := map[detect.SourcePartition][]detect.Record{}
	watermarks := 0
	for _, msg := range batch {
		src, off, err := sourceOf(msg)
		if err != nil {
			d.noSource.Incr(1)
			d.log.Errorf("cel_detect: event passed on untagged: %v", err)
			msg.SetError(err)
			out = append(out, msg)
			continue
		}
		if _, ok := groups[src]; !ok {
			order = append(order, src)
		}
		raw, _ := msg.AsBytes()
		groups[src] = append(groups[src], msg)
		rule, _ := msg.MetaGet(meta.DetectRule) // a record of cel_route's repartition topic
		if rule == detect.WatermarkRule {
			watermarks++
		}
		records[src] = append(records[src], detect.Record{Bytes: raw, Meta: metaFields(d.meta, msg), Offset: off, Rule: rule})
	}
	for _, src := range order {
		plan, err := d.engines.Process(ctx, src, records[src])
		if err != nil {
			return nil, err
		}
		out = applyOutcomes(out, groups[src], plan, d.meta)
	}
	d.counted(len(batch)-watermarks, watermarks)
	return out, nil
}

// applyOutcomes sets the planned bytes and metadata, leaves out dropped
// messages and adds the deferred ones.
func applyOutcomes(out, msgs service.MessageBatch, plan []detect.Outcome, sources []metaSource) service.MessageBatch {
	for i, o := range plan {
		if o.Drop {
			continue
		}
		setDetections(msgs[i], o.Detections, o.Out)
		out = append(out, msgs[i])
		out = append(out, deferredMessages(msgs[i], o.Deferred, sources)...)
	}
	return out
}

func sourceOf(msg *service.Message) (detect.SourcePartition, int64, error) {
	topic, ok := msg.MetaGet(meta.KafkaTopic)
	if !ok || topic == "" {
		return detect.SourcePartition{}, 0, errors.New("no kafka_topic metadata: cel_detect with a changelog needs events read by kafka_consumer")
	}
	part, err := metaInt(msg, meta.KafkaPartition)
	if err != nil {
		return detect.SourcePartition{}, 0, err
	}
	off, err := metaInt(msg, meta.KafkaOffset)
	if err != nil {
		return detect.SourcePartition{}, 0, err
	}
	return detect.SourcePartition{Topic: topic, Partition: int32(part)}, off, nil
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

func (d *partitionedDetector) swap(rs *detect.RuleSet) { d.engines.Swap(rs) }

func (d *partitionedDetector) run(ctx context.Context) {
	every(ctx, idlePartition/4, func() { d.engines.EvictIdle(idlePartition) })
}

func (d *partitionedDetector) close() error {
	d.engines.Close()
	return nil
}

// changelogStore is the Kafka changelog as the engine's PartitionStore.
type changelogStore struct{ cl *changelog.Store }

func (s changelogStore) Open(ctx context.Context, src detect.SourcePartition) (detect.PartitionWriter, map[string][]byte, error) {
	w, entries, err := s.cl.Open(ctx, src.Topic, src.Partition)
	if err != nil {
		return nil, nil, err
	}
	return changelogWriter{w}, entries, nil
}

func (s changelogStore) Name() string { return fmt.Sprintf("changelog %q", s.cl.Topic()) }

type changelogWriter struct{ w *changelog.Writer }

func (w changelogWriter) Commit(ctx context.Context, changes []detect.Change) error {
	recs := make([]changelog.Record, len(changes))
	for i, c := range changes {
		recs[i] = changelog.Record{Key: c.Key, Value: c.Value}
	}
	return w.w.Commit(ctx, recs)
}

func (w changelogWriter) Close() { w.w.Close() }
