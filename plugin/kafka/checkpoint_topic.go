package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errNoCheckpoint means the checkpoint topic holds no committed value for the key.
var errNoCheckpoint = errors.New("no committed checkpoint for the key")

// readCheckpoint returns the latest value of key in topic that a read_committed
// consumer sees: records of aborted or still open transactions are skipped.
// It reads every partition from the start up to its last stable offset, so the
// answer does not depend on how the writer partitioned the key. A tombstone
// (nil value) means no checkpoint.
func readCheckpoint(ctx context.Context, opts []kgo.Opt, topic, key string) ([]byte, error) {
	// The latest record of the key in each partition, in offset order; across
	// partitions (should the key ever have moved) the newest timestamp wins.
	latest := map[int32]*kgo.Record{}
	err := readCommitted(ctx, opts, topic, nil, func(r *kgo.Record) {
		if string(r.Key) != key {
			return
		}
		if prev := latest[r.Partition]; prev == nil || r.Offset > prev.Offset {
			latest[r.Partition] = r
		}
	})
	if err != nil {
		return nil, err
	}
	var best *kgo.Record
	for _, r := range latest {
		if best == nil || r.Timestamp.After(best.Timestamp) {
			best = r
		}
	}
	if best == nil || best.Value == nil {
		return nil, errNoCheckpoint
	}
	return bytes.Clone(best.Value), nil
}

// readCommitted calls fn, in offset order per partition, with every record a
// read_committed consumer sees in the given partitions of topic (all when
// only is nil), from the log start up to the last stable offset at the time
// of the call. Transaction markers are not passed to fn.
//
// Knowing when the read is complete: with KeepControlRecords the transaction
// markers are returned too, and everything below the last stable offset is
// either a committed record, a marker, or an aborted record followed by its
// marker, so the last offset below the LSO is always seen.
func readCommitted(ctx context.Context, opts []kgo.Opt, topic string, only []int32, fn func(*kgo.Record)) error {
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
		return nil, fmt.Errorf("reading metadata of topic %q: %w", topic, explainConnErr(err))
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

// compactedTopicConfigs make a topic whose latest value per key is all that
// matters small to read from the start: segments roll hourly (compaction never
// touches the active segment, 7 days by default) and are compacted once a
// tenth of them is superseded (half by default).
var compactedTopicConfigs = map[string]string{
	"cleanup.policy":            "compact",
	"segment.ms":                "3600000",
	"min.cleanable.dirty.ratio": "0.1",
}

// ensureCompactedTopic creates topic, compacted, with the given number of
// partitions when it does not exist. An existing topic that does not compact
// is made to (see makeCompacted), and warn is told; if that fails, the error
// says how to fix it.
func ensureCompactedTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, warn func(string)) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = -1
	for k, v := range compactedTopicConfigs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name = k
		c.Value = kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("creating topic %q: %w", topic, explainConnErr(err))
	}
	existed := false
	for _, t := range resp.Topics {
		err := kerr.ErrorForCode(t.ErrorCode)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			existed = true
		} else if err != nil {
			return fmt.Errorf("creating topic %q: %w", topic, err)
		}
	}
	if !existed {
		return nil
	}
	was, err := makeCompacted(ctx, cl, topic)
	if err != nil {
		return err
	}
	if was != "" && warn != nil {
		warn(fmt.Sprintf("Topic %q had cleanup.policy %q: its values would have expired with retention.ms (a lost cursor or state starts over silently); set it to compact", topic, was))
	}
	return nil
}
