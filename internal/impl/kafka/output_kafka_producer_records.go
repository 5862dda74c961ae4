package kafka

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/meta"
)

// Messages into records: topic, key, partition, headers, and the size that
// max_message_bytes limits.

// buildRecords turns messages into records. A message that cannot become a
// record gets its error in errs and a nil record; one over
// max_message_bytes becomes a dead letter (dead[i] says so), unless it must
// not (kafka_no_dead_letter).
func (k *kafkaProducer) buildRecords(batch service.MessageBatch, errs []error) (records []*kgo.Record, dead []*deadLettered) {
	records = make([]*kgo.Record, len(batch))
	rb := k.newRecordBuilder(batch)
	for i := range batch {
		r, err := rb.build(i)
		if d := k.oversize(r, err); d != nil && !noDeadLetter(batch[i]) {
			records[i] = k.deadLetter(r, err, false)
			if dead == nil {
				dead = make([]*deadLettered, len(batch))
			}
			dead[i] = d
			continue
		}
		if err != nil {
			errs[i] = err
			continue
		}
		records[i] = r
	}
	return records, dead
}

// oversize says whether build refused r for its size and a dead letter
// should replace it.
func (k *kafkaProducer) oversize(r *kgo.Record, err error) *deadLettered {
	var tl *tooLargeError
	if k.deadLetterTopic == "" || r == nil || !errors.As(err, &tl) {
		return nil
	}
	return &deadLettered{topic: r.Topic, key: string(r.Key), label: "max_message_bytes", reason: err}
}

// recordBuilder turns the messages of one batch into records. The
// interpolations are resolved with one executor per batch: the batch-wide
// MessageBatch.TryInterpolated* methods copy the whole batch on every call,
// which made building a batch of n records cost O(n²). A static topic is not
// interpolated at all.
type recordBuilder struct {
	k           *kafkaProducer
	batch       service.MessageBatch
	topic       *service.MessageBatchInterpolationExecutor // nil: staticTopic
	staticTopic string
	key         *service.MessageBatchInterpolationExecutor
	partition   *service.MessageBatchInterpolationExecutor // nil unless the manual partitioner
}

func (k *kafkaProducer) newRecordBuilder(batch service.MessageBatch) *recordBuilder {
	rb := &recordBuilder{k: k, batch: batch, key: batch.InterpolationExecutor(k.key)}
	if s, ok := k.topic.Static(); ok {
		rb.staticTopic = s
	} else {
		rb.topic = batch.InterpolationExecutor(k.topic)
	}
	if k.partition != nil {
		rb.partition = batch.InterpolationExecutor(k.partition)
	}
	return rb
}

// buildRecord turns message i of batch into a record (the exactly-once path
// calls it once per message of a batch: the builder of the latest batch is
// kept, so that too costs one executor per batch, not per message).
func (k *kafkaProducer) buildRecord(batch service.MessageBatch, i int) (*kgo.Record, error) {
	k.builderMu.Lock()
	rb := k.lastBuilder
	if rb == nil || !rb.sameBatch(batch) {
		rb = k.newRecordBuilder(batch)
		k.lastBuilder = rb
	}
	k.builderMu.Unlock()
	r, err := rb.build(i)
	if i == len(batch)-1 {
		k.builderMu.Lock()
		if k.lastBuilder == rb {
			k.lastBuilder = nil // do not hold the batch's messages any longer
		}
		k.builderMu.Unlock()
	}
	return r, err
}

// sameBatch reports whether batch is the slice the builder was made for.
func (rb *recordBuilder) sameBatch(batch service.MessageBatch) bool {
	return len(batch) == len(rb.batch) && len(batch) > 0 && &batch[0] == &rb.batch[0] && batch[0] == rb.batch[0]
}

func (rb *recordBuilder) build(i int) (*kgo.Record, error) {
	k, msg := rb.k, rb.batch[i]
	value, err := msg.AsBytes()
	if err != nil {
		return nil, fmt.Errorf("reading message: %w", err)
	}
	topic := rb.staticTopic
	if rb.topic != nil {
		if topic, err = rb.topic.TryString(i); err != nil {
			return nil, fmt.Errorf("interpolating topic: %w", err)
		}
	}
	if topic == "" {
		return nil, errors.New("topic interpolated to an empty string")
	}
	r := &kgo.Record{Topic: topic, Value: value}
	if isTrue(msg, meta.KafkaTombstone) {
		r.Value = nil // a tombstone: deletes the key from a compacted topic
	}
	key, err := rb.key.TryBytes(i)
	if err != nil {
		return nil, fmt.Errorf("interpolating key: %w", err)
	}
	if len(key) > 0 {
		r.Key = key
	}
	if rb.partition != nil {
		if r.Partition, err = rb.resolvePartition(i); err != nil {
			return nil, err
		}
	}
	if err := k.addHeaders(msg, r); err != nil {
		return nil, err
	}
	if size := recordSize(r); size > k.maxMessageBytes {
		return r, &tooLargeError{size: size, limit: k.maxMessageBytes}
	}
	return r, nil
}

func (rb *recordBuilder) resolvePartition(i int) (int32, error) {
	s, err := rb.partition.TryString(i)
	if err != nil {
		return 0, fmt.Errorf("interpolating partition: %w", err)
	}
	p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || p < 0 {
		return 0, fmt.Errorf("partition %q is not a non-negative number", s)
	}
	return int32(p), nil
}

func (k *kafkaProducer) addHeaders(msg *service.Message, r *kgo.Record) error {
	if k.headers == nil {
		return nil
	}
	return k.headers.Walk(msg, func(key, value string) error {
		if key == k.checkpointMeta || key == k.checkpointKeyMeta {
			return nil // a checkpoint is not a header; see checkpoint_metadata
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
		return nil
	})
}

// isTrue says whether the message's metadata key is "true".
func isTrue(msg *service.Message, key string) bool {
	v, ok := msg.MetaGet(key)
	return ok && v == "true"
}

// noDeadLetter says whether a message must reach its topic as it is: Kafka
// refusing it for good fails its write, which says why, instead of turning it
// into a dead letter (cel_detect's state records: a lost one would silently
// change what is detected).
func noDeadLetter(msg *service.Message) bool { return isTrue(msg, meta.KafkaNoDeadLetter) }

// recordSize is what max_message_bytes limits: the user-visible bytes.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// recordTopics lists the distinct topics of records (nil entries skipped).
func recordTopics(records []*kgo.Record) []string {
	var out []string
	for _, r := range records {
		if r != nil && !slices.Contains(out, r.Topic) {
			out = append(out, r.Topic)
		}
	}
	return out
}
