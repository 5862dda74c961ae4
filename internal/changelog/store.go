package changelog

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// Each source partition has its own transactional producer,
// `<transactional_id_prefix>-<source topic>-<partition>`. A worker that takes
// a partition over initialises that producer, which makes Kafka abort what the
// previous owner left open and fence it: from then on the previous owner's
// writes fail, so two workers never both advance one partition's state. A
// batch's state changes are one transaction, so the changelog holds the state
// after whole batches only.
//
// Keys are `<source topic> NUL <entry key>`, so one changelog topic can serve
// several source topics.

// connWatchName is how the log names the changelog's connection.
const connWatchName = "the state changelog"

// Store opens the state of source partitions. Construction (NewStore) does
// no I/O.
type Store struct {
	kafka       *kafkax.Connection
	topic       string
	txnIDPrefix string
	txnTimeout  time.Duration
	timeout     time.Duration

	mu         sync.Mutex
	partitions int32 // of the changelog topic, once known
	log        *service.Logger
	conn       *kafkax.ConnWatch
}

// SetLogger makes the store log what an operator must see: a connection
// failure's cause (once per change) and a changelog topic it had to make
// compacted. Without it these only reach the errors Open returns.
func (s *Store) SetLogger(l *service.Logger) {
	s.log = l
	s.conn = kafkax.NewConnWatch(l, connWatchName)
}

// Topic is the changelog topic's name.
func (s *Store) Topic() string { return s.topic }

// Open takes the state of one source partition over: it fences any earlier
// writer of it (aborting what that one left uncommitted) and returns the
// committed entries, latest per key with deletions applied, and a writer.
func (s *Store) Open(ctx context.Context, source string, partition int32) (*Writer, map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.ensureTopic(ctx, source, partition); err != nil {
		return nil, nil, err
	}
	w, err := s.newWriter(source, partition)
	if err != nil {
		return nil, nil, err
	}
	if err := w.takeOver(ctx); err != nil {
		w.Close()
		return nil, nil, err
	}
	entries := map[string][]byte{}
	err = kafkax.ReadCommitted(ctx, s.kafka.Opts(), s.topic, []int32{partition}, func(r *kgo.Record) {
		key, ok := strings.CutPrefix(string(r.Key), w.keyPrefix)
		if !ok || key == ownerKey {
			return
		}
		if r.Value == nil {
			delete(entries, key)
		} else {
			entries[key] = r.Value
		}
	})
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("restoring %s/%d from changelog: %w", source, partition, err)
	}
	return w, entries, nil
}

// ensureTopic makes sure the changelog has a partition for the source's.
func (s *Store) ensureTopic(ctx context.Context, source string, partition int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if partition < s.partitions {
		return nil
	}
	cl, err := kgo.NewClient(s.kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	if err := s.kafka.Ping(ctx, cl); err != nil {
		_ = s.conn.Failed(err)
		return err
	}
	s.conn.OK()
	want, err := kafkax.PartitionCount(ctx, cl, source)
	if err != nil {
		return err
	}
	warn := func(msg string) {
		if s.log != nil {
			s.log.Warn(msg)
		}
	}
	if err := kafkax.EnsureCompactedTopic(ctx, cl, s.topic, max(want, partition+1), warn); err != nil {
		return err
	}
	have, err := kafkax.PartitionCount(ctx, cl, s.topic)
	if err != nil {
		return err
	}
	if partition >= have {
		return fmt.Errorf("changelog topic %q has %d partitions but %s has partition %d: give the changelog at least as many partitions as %s", s.topic, have, source, partition, source)
	}
	s.partitions = have
	return nil
}
