package kafka

import (
	"bytes"
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
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
	err := kafkax.ReadCommitted(ctx, opts, topic, nil, func(r *kgo.Record) {
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
