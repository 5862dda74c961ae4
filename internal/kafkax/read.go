package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReadCommitted calls fn, in offset order per partition, with every record a
// read_committed consumer sees in the given partitions of topic (all when
// only is nil), from the log start up to the last stable offset at the time
// of the call. Transaction markers are not passed to fn.
//
// Knowing when the read is complete: with KeepControlRecords the transaction
// markers are returned too, and everything below the last stable offset is
// either a committed record, a marker, or an aborted record followed by its
// marker, so the last offset below the LSO is always seen.
func ReadCommitted(ctx context.Context, opts []kgo.Opt, topic string, only []int32, fn func(*kgo.Record)) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()

	ends, err := lastStableOffsets(ctx, cl, topic)
	if err != nil {
		return err
	}
	consume := map[int32]kgo.Offset{}
	for p, end := range ends {
		if end.lso > end.start && (only == nil || slices.Contains(only, p)) {
			consume[p] = kgo.NewOffset().At(end.start)
		}
	}
	if len(consume) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume})
	remaining := len(consume)
	seen := map[int32]int64{}
	for remaining > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading topic %q: %w", topic, err)
		}
		var fetchErr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.Canceled) {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			return fmt.Errorf("reading topic %q: %w", topic, fetchErr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end := ends[r.Partition]
			if r.Offset >= end.lso {
				return
			}
			if last, ok := seen[r.Partition]; !ok || r.Offset > last {
				seen[r.Partition] = r.Offset
				if r.Offset+1 >= end.lso {
					remaining--
				}
			}
			if !r.Attrs.IsControl() {
				fn(r)
			}
		})
	}
	return nil
}

type partitionEnds struct{ start, lso int64 }

// lastStableOffsets returns each partition's log start offset and last stable
// offset. A topic that does not exist has no partitions.
func lastStableOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]partitionEnds, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of topic %q: %w", topic, explain(err, false, false))
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("metadata for topic %q: %d topics in the answer", topic, len(mresp.Topics))
	}
	t := mresp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return map[int32]partitionEnds{}, nil
		}
		return nil, fmt.Errorf("metadata for topic %q: %w", topic, err)
	}
	ends := map[int32]partitionEnds{}
	for _, ts := range []int64{-2, -1} { // earliest, then latest (the LSO under read_committed)
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.IsolationLevel = 1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p.Partition
			rp.CurrentLeaderEpoch = -1
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		// Sharded by the client to each partition's leader.
		shards := cl.RequestSharded(ctx, req)
		for _, sh := range shards {
			if sh.Err != nil {
				return nil, fmt.Errorf("listing offsets of topic %q: %w", topic, sh.Err)
			}
			resp := sh.Resp.(*kmsg.ListOffsetsResponse)
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						return nil, fmt.Errorf("listing offsets of topic %q partition %d: %w", topic, rp.Partition, err)
					}
					e := ends[rp.Partition]
					if ts == -2 {
						e.start = rp.Offset
					} else {
						e.lso = rp.Offset
					}
					ends[rp.Partition] = e
				}
			}
		}
	}
	return ends, nil
}
