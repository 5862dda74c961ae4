package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Dead letters. A record Kafka refuses for good (larger than the topic
// accepts, malformed) would otherwise be retried forever: in at-least-once
// mode its nack holds the Okta cursor, in exactly-once mode its page's
// transaction never commits, and either way every later event of the org,
// attacks included, waits behind it. Such a record goes to
// dead_letter_topic instead, with the reason and where it was going in
// headers and at most deadLetterValueBytes of its value (so the dead letter
// itself always fits), and the pipeline moves on. In exactly-once mode the
// dead letter is part of the page's transaction, like the record would have
// been.

const (
	producerFieldDeadLetterTopic = "dead_letter_topic"

	// Header keys of a dead letter. The record key is the original key.
	deadLetterHeaderReason     = "dead_letter_reason"
	deadLetterHeaderTopic      = "dead_letter_topic"
	deadLetterHeaderPartition  = "dead_letter_partition"
	deadLetterHeaderValueBytes = "dead_letter_value_bytes"

	// deadLetterValueBytes of the value, and of each header value, are kept:
	// enough to identify the event, small enough to fit any topic.
	deadLetterValueBytes = 1024
	deadLetterKeyBytes   = 512
	deadLetterMaxHeaders = 32
)

func deadLetterField() *service.ConfigField {
	return service.NewStringField(producerFieldDeadLetterTopic).
		Description("Where a record goes that Kafka refuses for good (larger than `max_message_bytes` or than the topic's `max.message.bytes`, an invalid record): the original key and headers, the first 1 KiB of the value, and headers `" + deadLetterHeaderReason + "`, `" + deadLetterHeaderTopic + "`, `" + deadLetterHeaderPartition + "` (when Kafka had assigned one) and `" + deadLetterHeaderValueBytes + "`. The message is then acknowledged, so one bad record never stalls the pipeline; each is logged and counted in `kafka_producer_dead_letters_total{reason}`. In exactly-once mode the dead letter is written in the batch's transaction. Empty: a refused record fails its message (at-least-once: nacked and retried; exactly-once: the batch is retried until it is committed).").
		Default("okta.deadletter")
}

// tooLargeError is a record over max_message_bytes, found before producing.
type tooLargeError struct{ size, limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("record of %d bytes exceeds %s %d", e.size, producerFieldMaxMessageBytes, e.limit)
}

// refusedForGood reports whether Kafka refused a record in a way that sending
// it again cannot change, and a short label for the metric.
func refusedForGood(err error) (label string, ok bool) {
	var tl *tooLargeError
	switch {
	case errors.As(err, &tl):
		return "max_message_bytes", true
	case errors.Is(err, kerr.MessageTooLarge):
		return "message_too_large", true
	case errors.Is(err, kerr.RecordListTooLarge):
		return "record_list_too_large", true
	case errors.Is(err, kerr.InvalidRecord):
		return "invalid_record", true
	case errors.Is(err, kerr.CorruptMessage):
		return "corrupt_message", true
	case errors.Is(err, kerr.InvalidTimestamp):
		return "invalid_timestamp", true
	}
	return "", false
}

// deadLetter is the record that goes to dead_letter_topic instead of r.
// partitioned says whether r.Partition is one Kafka assigned. It always fits
// max_message_bytes: what is kept of r shrinks until it does.
func (k *kafkaProducer) deadLetter(r *kgo.Record, reason error, partitioned bool) *kgo.Record {
	meta := []kgo.RecordHeader{
		{Key: deadLetterHeaderReason, Value: truncate([]byte(reason.Error()), 512)},
		{Key: deadLetterHeaderTopic, Value: truncate([]byte(r.Topic), 256)},
		{Key: deadLetterHeaderValueBytes, Value: []byte(strconv.Itoa(len(r.Value)))},
	}
	if partitioned {
		meta = append(meta, kgo.RecordHeader{Key: deadLetterHeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))})
	}
	d := &kgo.Record{Topic: k.deadLetterTopic, Key: truncate(r.Key, deadLetterKeyBytes), Value: truncate(r.Value, deadLetterValueBytes)}
	for i, h := range r.Headers {
		if i == deadLetterMaxHeaders {
			break
		}
		d.Headers = append(d.Headers, kgo.RecordHeader{Key: string(truncate([]byte(h.Key), 256)), Value: truncate(h.Value, deadLetterValueBytes)})
	}
	d.Headers = append(d.Headers, meta...)
	// A small max_message_bytes: give up the copied headers, then the value.
	if recordSize(d) > k.maxMessageBytes {
		d.Headers = meta
	}
	if over := recordSize(d) - k.maxMessageBytes; over > 0 {
		d.Value = d.Value[:max(0, len(d.Value)-over)]
	}
	if d.Value == nil {
		d.Value = []byte{} // not a tombstone
	}
	return d
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n]
}

// deadLettered is a record replaced by its dead letter, logged and counted
// once the dead letter is acknowledged.
type deadLettered struct {
	topic, key, label string
	reason            error
}

func (k *kafkaProducer) noteDeadLetter(d *deadLettered) {
	k.deadLetters.Incr(1, d.label)
	k.log.Warnf("Kafka refuses a record for topic %s (key %q) for good: %v; it went to dead-letter topic %s instead, and the pipeline moves on", d.topic, truncate([]byte(d.key), 200), d.reason, k.deadLetterTopic)
}

// replaceRefused retries, one at a time, the records Kafka refused for good
// (a refusal of a whole produce batch may be caused by its neighbours), and
// writes a dead letter for each refused alone too, except for messages that
// must not become one (kafka_no_dead_letter): their error stays. errs is
// updated with the outcome.
func (k *kafkaProducer) replaceRefused(ctx context.Context, cl *kgo.Client, batch service.MessageBatch, records []*kgo.Record, errs []error) {
	if k.deadLetterTopic == "" {
		return
	}
	for i, err := range errs {
		if _, ok := refusedForGood(err); !ok || records[i] == nil || records[i].Topic == k.deadLetterTopic || noDeadLetter(batch[i]) {
			continue
		}
		r := records[i]
		alone := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: r.Partition}
		pctx, cancel := context.WithTimeout(ctx, k.timeout)
		err = cl.ProduceSync(pctx, alone).FirstErr()
		cancel()
		label, refused := refusedForGood(err)
		if !refused {
			errs[i] = err
			continue
		}
		errs[i] = k.writeDeadLetter(ctx, cl, alone, err, label)
	}
}

func (k *kafkaProducer) writeDeadLetter(ctx context.Context, cl *kgo.Client, r *kgo.Record, reason error, label string) error {
	if err := k.topics.Ensure(ctx, cl, k.deadLetterTopic); err != nil {
		return fmt.Errorf("%w; and the dead-letter topic: %w", reason, err)
	}
	pctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	if err := cl.ProduceSync(pctx, k.deadLetter(r, reason, true)).FirstErr(); err != nil {
		return fmt.Errorf("%w; writing it to dead-letter topic %s: %w", reason, k.deadLetterTopic, err)
	}
	k.noteDeadLetter(&deadLettered{topic: r.Topic, key: string(r.Key), label: label, reason: reason})
	return nil
}
