package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// What the consumer group's rebalances do to the partitions this member owns:
// assigned ones start, revoked ones drain and commit, lost ones are dropped.

// onAssigned starts tracking newly assigned partitions.
func (k *kafkaConsumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for topic, partitions := range assigned {
		for _, p := range partitions {
			tp := kafkax.TopicPartition{Topic: topic, Partition: p}
			if ps := k.parts[tp]; ps != nil && !ps.revoking {
				continue
			}
			k.parts[tp] = &partState{tp: tp}
			n++
		}
	}
	if n > 0 {
		k.log.Infof("Assigned %d partitions: %v", n, assigned)
	}
	k.signalLocked()
}

// onRevoked stops handing out the revoked partitions, waits (bounded by
// rebalance_drain_timeout) for their in-flight batches, commits what was
// acknowledged and releases them. franz-go has already dropped its buffered
// fetches of these partitions.
func (k *kafkaConsumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	draining := k.beginRelease(revoked)
	if len(draining) == 0 {
		return
	}
	k.mRevoked.Incr(int64(len(draining)))
	k.mu.Lock()
	closing := k.closing
	k.mu.Unlock()
	drainCtx, cancel := context.WithTimeout(ctx, k.drainTimeout)
	defer cancel()
	go func() {
		select {
		case <-closing:
			cancel()
		case <-drainCtx.Done():
		}
	}()
	k.waitUntil(drainCtx, func() bool {
		for _, ps := range draining {
			if ps.active > 0 {
				return false
			}
		}
		return true
	})
	inFlight := k.finishRelease(draining)
	if inFlight > 0 {
		k.log.Warnf("%d batches of revoked partitions were still in the pipeline after %s; their records will be processed again by the partitions' new owner", inFlight, consumerFieldDrainTimeout)
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		k.log.Errorf("Committing offsets of revoked partitions: %v", err)
	}
	k.log.Infof("Released %d partitions: %v", len(draining), revoked)
}

// onLost releases partitions taken away without a chance to commit (the
// session expired): their next owner resumes from the last commit.
func (k *kafkaConsumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	draining := k.beginRelease(lost)
	k.finishRelease(draining)
	if len(draining) > 0 {
		k.mRevoked.Incr(int64(len(draining)))
		k.log.Warnf("Lost %d partitions without committing (group session expired): %v", len(draining), lost)
	}
}

func (k *kafkaConsumer) beginRelease(partitions map[string][]int32) []*partState {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*partState
	for topic, ps := range partitions {
		for _, p := range ps {
			st := k.parts[kafkax.TopicPartition{Topic: topic, Partition: p}]
			if st == nil || st.revoking {
				continue
			}
			st.revoking = true
			for _, b := range st.queue {
				if !b.emitted {
					k.buffered -= len(b.records)
				}
			}
			st.queue = nil
			out = append(out, st)
		}
	}
	k.signalLocked()
	return out
}

// finishRelease forgets the partitions; it returns how many of their batches
// were still in flight.
func (k *kafkaConsumer) finishRelease(draining []*partState) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	inFlight := 0
	for _, ps := range draining {
		inFlight += ps.active
		ps.gone = true
		ps.out = nil
		if k.parts[ps.tp] == ps {
			delete(k.parts, ps.tp)
		}
	}
	k.signalLocked()
	return inFlight
}
