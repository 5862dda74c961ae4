package changelog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// ErrFenced means another worker has taken the partition's state over since
// this writer opened it.
var ErrFenced = errors.New("another worker took this partition's state over")

// Record is one state entry; a nil Value deletes the key.
type Record struct {
	Key, Value []byte
}

// ownerKey is the entry a new owner commits to take a partition over.
const ownerKey = "\x00owner"

// Writer commits the state changes of one source partition.
type Writer struct {
	cl        *kgo.Client
	partition int32
	keyPrefix string
}

func (s *Store) newWriter(source string, partition int32) (*Writer, error) {
	id := s.txnIDPrefix + "-" + source + "-" + strconv.Itoa(int(partition))
	cl, err := kgo.NewClient(s.kafka.Opts(
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(s.txnTimeout),
		kgo.DefaultProduceTopic(s.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return &Writer{cl: cl, partition: partition, keyPrefix: source + "\x00"}, nil
}

// takeOver commits a first transaction: initialising the producer fences the
// previous owner and settles its open transaction, so the read that follows
// sees everything that owner will ever commit.
func (w *Writer) takeOver(ctx context.Context) error {
	host, _ := os.Hostname()
	owner, _ := json.Marshal(map[string]any{"host": host, "pid": os.Getpid(), "at": time.Now().UTC()})
	if err := w.Commit(ctx, []Record{{Key: []byte(ownerKey), Value: owner}}); err != nil {
		return fmt.Errorf("taking over changelog partition %d: %w", w.partition, err)
	}
	return nil
}

// Commit writes the records as one transaction. On any error nothing of them
// is committed or its outcome is unknown: close the writer and Open again,
// which restores the state as committed. A fenced writer's error wraps
// ErrFenced.
func (w *Writer) Commit(ctx context.Context, recs []Record) error {
	if err := w.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning changelog transaction: %w", err)
	}
	krecs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krecs[i] = &kgo.Record{Key: []byte(w.keyPrefix + string(r.Key)), Value: r.Value, Partition: w.partition}
	}
	err := w.cl.ProduceSync(ctx, krecs...).FirstErr()
	if err == nil {
		err = kafkax.AwaitProducedPartitions(ctx, w.cl, krecs...)
	}
	if err == nil {
		err = w.cl.EndTransaction(ctx, kgo.TryCommit)
		if err == nil {
			return nil
		}
	} else {
		_ = w.cl.AbortBufferedRecords(ctx)
		_ = w.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	if kafkax.IsFenced(err) {
		return fmt.Errorf("writing changelog partition %d: %w: %w", w.partition, ErrFenced, err)
	}
	return fmt.Errorf("writing changelog partition %d: %w", w.partition, err)
}

// Close releases the writer's client. An open transaction is aborted by
// Kafka after transaction_timeout, or at once when the partition is opened
// again.
func (w *Writer) Close() { w.cl.Close() }
