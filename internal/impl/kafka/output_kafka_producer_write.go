package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// The write path: connecting, producing a batch and mapping Kafka's answers
// to acknowledgements. Exactly-once mode branches off in WriteBatch to
// output_kafka_producer_txn.go.

// Connect creates the client on first use and otherwise checks that a broker
// answers. Keeping the client is deliberate: see kafkaProducer.
func (k *kafkaProducer) Connect(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client == nil {
		cl, err := kgo.NewClient(k.clientOptsForMode()...)
		if err != nil {
			return fmt.Errorf("creating kafka client: %w", err)
		}
		k.client = cl
	}
	pingCtx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	if err := k.kafka.Ping(pingCtx, k.client); err != nil {
		return k.conn.Failed(err)
	}
	if err := k.prepareTopics(pingCtx); err != nil {
		return k.conn.Failed(err)
	}
	k.conn.OK()
	return nil
}

// prepareTopics checks the static topic and, in exactly-once mode, the
// checkpoint topic before the first write, so that a topic that cannot be
// used keeps the output not ready with the reason in the log.
func (k *kafkaProducer) prepareTopics(ctx context.Context) error {
	if topic, ok := k.topic.Static(); ok {
		if err := k.topics.Ensure(ctx, k.client, topic); err != nil {
			return err
		}
	}
	if k.txn != nil && !k.txn.topicReady {
		warn := func(msg string) { k.log.Warn(msg) }
		if err := kafkax.EnsureCompactedTopic(ctx, k.client, k.txn.topic, 1, warn); err != nil {
			return err
		}
		k.txn.topicReady = true
	}
	return nil
}

func (k *kafkaProducer) getClient() *kgo.Client {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.client
}

// WriteBatch produces every message of the batch and returns once Kafka has
// answered for each. See the spec's description for how failures map to
// acknowledgements.
func (k *kafkaProducer) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	if k.txn != nil {
		return k.writeBatchTxn(ctx, batch)
	}
	cl := k.getClient()
	if cl == nil {
		return service.ErrNotConnected
	}
	errs := make([]error, len(batch))
	records, dead := k.buildRecords(batch, errs)
	if err := k.topics.Ensure(ctx, cl, recordTopics(records)...); err != nil {
		if kafkax.IsConnError(err) {
			return k.conn.Failed(err) // reconnect, rather than nack
		}
		return err
	}
	if err := k.produceAll(ctx, cl, records, errs); err != nil {
		return err
	}
	for i, d := range dead {
		if d != nil && errs[i] == nil {
			k.noteDeadLetter(d)
		}
	}
	k.replaceRefused(ctx, cl, batch, records, errs)
	return k.batchResult(batch, errs)
}

// produceAll hands every record to franz-go and waits for all of them.
// ProduceSync rather than Produce: it stops partitions lingering once the
// batch is enqueued, since nothing else of this batch is coming.
//
// Records not yet sent when the timeout expires fail with it. A record that
// was sent without an answer (the connection died mid-request) cannot be
// failed safely under idempotence: franz-go waits for Kafka to come back and
// settle it, and so do we, because re-sending it from Benthos could
// duplicate it. Only the caller's ctx, which Benthos cancels on shutdown,
// stops the wait early; the batch is then not acknowledged.
func (k *kafkaProducer) produceAll(ctx context.Context, cl *kgo.Client, records []*kgo.Record, errs []error) error {
	index := make(map[*kgo.Record]int, len(records))
	toSend := make([]*kgo.Record, 0, len(records))
	for i, r := range records {
		if r != nil {
			index[r] = i
			toSend = append(toSend, r)
		}
	}
	if len(toSend) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	done := make(chan kgo.ProduceResults, 1)
	go func() { done <- cl.ProduceSync(pctx, toSend...) }()

	var results kgo.ProduceResults
	select {
	case results = <-done:
	case <-pctx.Done():
		if ctx.Err() == nil {
			k.log.Warnf("Records sent to Kafka are still unsettled after %v; waiting for their outcome, as failing them could duplicate records", k.timeout)
		}
		select {
		case results = <-done:
		case <-ctx.Done():
			return fmt.Errorf("abandoned waiting for kafka: %w: %w", service.ErrNotConnected, ctx.Err())
		}
	}
	for _, res := range results {
		errs[index[res.Record]] = res.Err
	}
	return nil
}

// batchResult maps per-record outcomes to what Benthos expects: nil when all
// were acknowledged, ErrNotConnected when Kafka was unreachable for the whole
// batch (so the pipeline reconnects and retries it without duplicating
// anything), otherwise a BatchError naming only the failed messages.
func (k *kafkaProducer) batchResult(batch service.MessageBatch, errs []error) error {
	failed, transient := 0, 0
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		failed++
		if isTransient(err) {
			transient++
		}
	}
	if failed == 0 {
		return nil
	}
	if transient == len(batch) {
		return fmt.Errorf("kafka unreachable: %w: %w", service.ErrNotConnected, first)
	}
	bErr := service.NewBatchError(batch, fmt.Errorf("%d of %d records failed, first: %w", failed, len(batch), first))
	for i, err := range errs {
		if err != nil {
			bErr = bErr.Failed(i, err)
		}
	}
	return bErr
}

// isTransient reports errors that mean "Kafka did not answer in time" rather
// than "Kafka refused this record".
func isTransient(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, kgo.ErrRecordTimeout),
		errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrClientClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.As(err, &netErr):
		return true
	}
	return false
}

// Close flushes what is buffered, bounded by ctx, then closes the client;
// records still unacknowledged after that fail and are nacked, not dropped.
func (k *kafkaProducer) Close(ctx context.Context) error {
	k.mu.Lock()
	cl := k.client
	k.client = nil
	k.mu.Unlock()
	if cl == nil {
		return nil
	}
	flushCtx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	err := cl.Flush(flushCtx)
	cl.Close()
	if err != nil {
		return fmt.Errorf("flushing kafka producer: %w", err)
	}
	return nil
}
