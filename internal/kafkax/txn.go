package kafkax

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// AwaitProducedPartitions returns once the client's producer lists every
// partition the produced records went to, with its leader, so that
// EndTransaction can see them. Call it after the records' produce succeeded
// and before committing. It gives up after partitionListWait (or when ctx
// ends) with an error naming the partition: do not commit then.
//
// Why: the first time a franz-go client (v1.22.3) produces to a topic, the
// metadata update that learns the topic's partitions hands the waiting
// records to the partitions, and so to the brokers, before it publishes the
// partitions to the rest of the client. On a busy machine the records can be
// acknowledged in between. EndTransaction then finds no partition in the
// transaction: a commit becomes an abort that reports success (the records
// are lost), and the epoch bump that ends the transaction does not reset the
// unseen partitions' sequence numbers, so the next transaction fails with
// OUT_OF_ORDER_SEQUENCE_NUMBER. The partitions are published microseconds
// later; this waits for that.
func AwaitProducedPartitions(ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) error {
	for i, r := range recs {
		if !listed(cl, partitionOf(r)) {
			return awaitPartitions(ctx, cl, recs[i:])
		}
	}
	return nil // the usual case: no timer, no wait
}

// awaitPartitions waits, at most partitionListWait, until the client lists
// the partitions of recs.
func awaitPartitions(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, partitionListWait)
	defer cancel()
	for _, r := range recs {
		if err := awaitPartition(ctx, cl, partitionOf(r)); err != nil {
			return err
		}
	}
	return nil
}

func partitionOf(r *kgo.Record) TopicPartition {
	return TopicPartition{Topic: r.Topic, Partition: r.Partition}
}

// listed reports whether the client's producer lists tp with a leader. A
// topic's earlier failed load (a topic being auto-created) is no answer:
// the partition must be listed.
func listed(cl *kgo.Client, tp TopicPartition) bool {
	leader, _, _ := cl.PartitionLeader(tp.Topic, tp.Partition)
	return leader >= 0
}

// partitionListWait bounds AwaitProducedPartitions: far beyond the
// microseconds the client takes, short enough that a stuck client fails the
// transaction (which is then retried) rather than stall the pipeline.
const partitionListWait = 10 * time.Second

// awaitPartition waits until the client's producer lists tp.
func awaitPartition(ctx context.Context, cl *kgo.Client, tp TopicPartition) error {
	pause := 20 * time.Microsecond
	for !listed(cl, tp) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("the kafka client has not listed %s, which it wrote to, so it cannot commit the transaction: %w", tp, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, 5*time.Millisecond)
	}
	return nil
}
