package kafka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/meta"
)

// Handing batches to the pipeline, one partition's batches in offset order,
// and settling their acknowledgements into commits or redeliveries.

// ReadBatch hands out the next batch of a partition that may have one in
// flight, waiting for records or acknowledgements as needed.
func (k *kafkaConsumer) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	for {
		k.mu.Lock()
		if k.cl == nil {
			k.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		}
		select {
		case <-k.loopDone:
			k.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		default:
		}
		b, wait := k.nextLocked(time.Now())
		ch := k.changed
		k.mu.Unlock()
		if b != nil {
			msgs, ack := k.deliver(b)
			return msgs, ack, nil
		}
		if err := waitChange(ctx, ch, wait); err != nil {
			return nil, nil, err
		}
	}
}

// waitChange waits for ch to close, or for wait when it is positive.
func waitChange(ctx context.Context, ch <-chan struct{}, wait time.Duration) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ch:
	case <-timer:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// nextLocked takes the next deliverable batch, or says how long until a
// backed-off retry becomes deliverable (0: wait for a change).
func (k *kafkaConsumer) nextLocked(now time.Time) (*pendingBatch, time.Duration) {
	var wait time.Duration
	for _, ps := range k.parts { // map order: no partition is favoured
		if ps.revoking || len(ps.queue) == 0 || ps.active >= k.maxInFlight {
			continue
		}
		b := ps.queue[0]
		if d := b.notBefore.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		ps.queue = ps.queue[1:]
		ps.active++
		if !b.emitted {
			b.emitted = true
			ps.out = append(ps.out, b)
			k.buffered -= len(b.records)
			k.signalLocked() // room in the buffer
		}
		return b, 0
	}
	return nil, wait
}

// deliver turns a batch into messages and its ack function.
func (k *kafkaConsumer) deliver(b *pendingBatch) (service.MessageBatch, service.AckFunc) {
	idx := b.redeliver
	if idx == nil {
		idx = make([]int, len(b.records))
		for i := range idx {
			idx[i] = i
		}
	}
	msgs := make(service.MessageBatch, len(idx))
	for i, ri := range idx {
		msgs[i] = recordMessage(b.records[ri])
	}
	indexer := msgs.Index()
	var once sync.Once
	return msgs, func(_ context.Context, err error) error {
		once.Do(func() { k.ack(b, idx, indexer, err) })
		return nil
	}
}

func recordMessage(r *kgo.Record) *service.Message {
	m := service.NewMessage(r.Value)
	for _, h := range r.Headers {
		m.MetaSetMut(h.Key, string(h.Value))
	}
	m.MetaSetMut(meta.KafkaKey, string(r.Key))
	m.MetaSetMut(meta.KafkaTopic, r.Topic)
	m.MetaSetMut(meta.KafkaPartition, int64(r.Partition))
	m.MetaSetMut(meta.KafkaOffset, r.Offset)
	m.MetaSetMut(meta.KafkaTimestampUnix, r.Timestamp.Unix())
	return m
}

// ack settles a delivered batch: on success the partition's acknowledged
// prefix is marked for commit; on failure the batch (or only its failed
// messages) goes back to the front of its partition's queue.
func (k *kafkaConsumer) ack(b *pendingBatch, idx []int, indexer *service.Indexer, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ps := b.part
	ps.active--
	defer k.signalLocked()
	if ps.gone {
		return
	}
	if err != nil {
		k.mNacks.Incr(1)
		if ps.revoking {
			return // stays uncommitted: the partition's next owner reads it again
		}
		b.redeliver = failedRecords(idx, indexer, err)
		b.attempts++
		b.notBefore = time.Now().Add(retryBackoff(b.attempts))
		ps.queue = append([]*pendingBatch{b}, ps.queue...)
		k.log.Warnf("%d records of %s (offsets %d-%d) failed downstream, delivering them again (attempt %d): %v",
			len(b.redeliver), ps.tp, b.records[0].Offset, b.records[len(b.records)-1].Offset, b.attempts+1, err)
		return
	}
	b.done = true
	var last *kgo.Record
	for len(ps.out) > 0 && ps.out[0].done {
		last = ps.out[0].records[len(ps.out[0].records)-1]
		ps.out[0] = nil
		ps.out = ps.out[1:]
	}
	if last != nil && k.cl != nil {
		k.cl.MarkCommitRecords(last)
	}
}

// failedRecords returns the record indexes to deliver again: those of the
// messages a batch error names, or all of idx.
func failedRecords(idx []int, indexer *service.Indexer, err error) []int {
	var bErr *service.BatchError
	if !errors.As(err, &bErr) || bErr.IndexedErrors() == 0 {
		return idx
	}
	failed := map[int]bool{}
	bErr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, mErr error) bool {
		if mErr != nil {
			failed[i] = true
		}
		return true
	})
	if len(failed) == 0 {
		return idx
	}
	out := make([]int, 0, len(failed))
	for i, ri := range idx {
		if failed[i] || failed[-1] {
			out = append(out, ri)
		}
	}
	return out
}

func retryBackoff(attempts int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempts && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}
