package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// Exactly-once mode (transactional_id set).
//
// Each batch is one Kafka transaction holding every record of the batch and,
// when a message of the batch carries a checkpoint (metadata
// checkpoint_metadata, e.g. okta_cursor), the latest such checkpoint as a
// record of checkpoint_topic keyed by checkpoint_key. A read_committed consumer
// therefore sees a page's events, their alerts and the cursor that moves past
// them all at once or not at all, and an input that restores its cursor from
// the topic (cache kafka_checkpoint) resumes exactly after the last committed
// page.
//
// Ordering is what makes the cursor safe: a batch's cursor may be committed
// only after every earlier batch's records. So writes are serialised
// (max_in_flight is forced to 1), a batch is never split (no batching), and a
// batch is never nacked while the pipeline runs — a nack would let the input
// redeliver it after later batches. Instead WriteBatch retries the batch in a
// new transaction until it commits; only shutdown (ctx cancelled) returns an
// error, and then nothing of the batch is committed and the restarted
// pipeline reads it again from the committed cursor.
//
// A commit whose outcome is unknown (the connection died during EndTxn) is
// resolved before the batch is committed again: the transaction is aborted
// (which bumps the producer epoch and settles it broker-side), and the next
// attempt, once its records are produced, reads the checkpoint topic: if it
// already holds this batch's checkpoint, the earlier commit landed and the new
// transaction is aborted instead of committing the batch twice. (A batch
// without a checkpoint cannot be checked this way and is written again.)
//
// Fencing: the client initialises its producer ID with transactional_id; Kafka
// then aborts the transaction a crashed predecessor left open, and fences a
// still running one. A fenced producer never recovers by re-initialising
// (that would fence its successor in turn and both would write the same
// events): it stops writing and logs an error until it is stopped.

type txnConfig struct {
	id         string
	timeout    time.Duration
	topic      string
	key        *service.InterpolatedString
	topicReady bool

	mu sync.Mutex // one transaction at a time
	// fenced is set once Kafka says a successor took over; it is atomic so
	// that it can be read while a write holds mu.
	fenced atomic.Bool
}

func parseTxnConfig(conf *service.ParsedConfig, k *kafkaProducer) (*txnConfig, error) {
	id, err := conf.FieldString(producerFieldTransactionalID)
	if err != nil || id == "" {
		return nil, err
	}
	t := &txnConfig{id: id}
	if t.timeout, err = conf.FieldDuration(producerFieldTransactionTimeout); err != nil {
		return nil, err
	}
	if t.timeout < time.Second {
		return nil, fmt.Errorf("%s must be at least 1s, got %v", producerFieldTransactionTimeout, t.timeout)
	}
	if t.topic, err = conf.FieldString(producerFieldCheckpointTopic); err != nil {
		return nil, err
	}
	if t.topic == "" {
		return nil, fmt.Errorf("%s must not be empty with %s", producerFieldCheckpointTopic, producerFieldTransactionalID)
	}
	if t.key, err = conf.FieldInterpolatedString(producerFieldCheckpointKey); err != nil {
		return nil, err
	}
	idempotent, err := conf.FieldBool(producerFieldIdempotent)
	if err != nil {
		return nil, err
	}
	if !idempotent {
		return nil, fmt.Errorf("%s requires %s: true", producerFieldTransactionalID, producerFieldIdempotent)
	}
	b := k.batching
	if b.Count > 1 || b.ByteSize > 0 || b.Period != "" || b.Check != "" {
		return nil, fmt.Errorf("%s cannot be combined with batching: a batch policy could split an input batch across transactions and commit a page's events without its cursor; remove batching (each input batch is one transaction)", producerFieldTransactionalID)
	}
	return t, nil
}

// clientOptsForMode adds the transactional options in exactly-once mode.
func (k *kafkaProducer) clientOptsForMode() []kgo.Opt {
	if k.txn == nil {
		return k.opts
	}
	return append(append([]kgo.Opt(nil), k.opts...),
		kgo.TransactionalID(k.txn.id),
		kgo.TransactionTimeout(k.txn.timeout),
	)
}

// plainOpts are the client options without transactions, for reading the
// checkpoint topic back.
func (k *kafkaProducer) plainOpts() []kgo.Opt { return k.opts }

// txnBatch is a batch turned into records, ready to be produced (again).
type txnBatch struct {
	records       []*kgo.Record
	msgIndex      []int // of each record's message; -1 for the checkpoint
	dead          []*deadLettered
	checkpoint    []byte // nil: the batch carries no checkpoint
	checkpointKey string
	kept          map[int]bool // messages never replaced by a dead letter (kafka_no_dead_letter)
}

// txnRefusals is what earlier attempts of one batch learnt about records
// Kafka refuses for good. A refused produce fails the whole transaction, and
// Kafka refuses a produce request's batch as a whole, so a record refused
// with others is a suspect, produced alone in the next attempt; one refused
// alone is dead, and becomes a dead letter in the attempt after.
type txnRefusals struct {
	suspect map[int]bool
	dead    map[int]refusal
}

type refusal struct {
	err       error
	label     string
	partition int32
}

func (k *kafkaProducer) buildTxnBatch(batch service.MessageBatch, rf *txnRefusals) (*txnBatch, error) {
	tb := &txnBatch{records: make([]*kgo.Record, 0, len(batch)+1)}
	for i := range batch {
		r, err := k.buildRecord(batch, i)
		if d := k.oversize(r, err); d != nil && !noDeadLetter(batch[i]) {
			r, err = k.deadLetter(r, err, false), nil
			tb.dead = append(tb.dead, d)
		} else if ref, ok := rf.dead[i]; ok && err == nil {
			tb.dead = append(tb.dead, &deadLettered{topic: r.Topic, key: string(r.Key), label: ref.label, reason: ref.err})
			r.Partition = ref.partition
			r = k.deadLetter(r, ref.err, true)
		}
		if err != nil {
			return nil, fmt.Errorf("message %d of the batch: %w", i, err)
		}
		tb.records = append(tb.records, r)
		tb.msgIndex = append(tb.msgIndex, i)
		if noDeadLetter(batch[i]) {
			if tb.kept == nil {
				tb.kept = map[int]bool{}
			}
			tb.kept[i] = true
		}
		if cp, ok := batch[i].MetaGetMut(k.checkpointMeta); ok {
			key, err := batch.TryInterpolatedString(i, k.txn.key)
			if err != nil {
				return nil, fmt.Errorf("interpolating %s: %w", producerFieldCheckpointKey, err)
			}
			if key == "" {
				return nil, fmt.Errorf("%s resolved to an empty key for a message carrying %s", producerFieldCheckpointKey, k.checkpointMeta)
			}
			tb.checkpoint, tb.checkpointKey = toBytes(cp), key
		}
	}
	if tb.checkpoint != nil {
		tb.records = append(tb.records, &kgo.Record{
			Topic: k.txn.topic, Key: []byte(tb.checkpointKey), Value: tb.checkpoint,
		})
		tb.msgIndex = append(tb.msgIndex, -1)
	}
	return tb, nil
}

func toBytes(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	}
	return fmt.Append(nil, v)
}

// fresh copies the records for one attempt: franz-go sets partition, offset
// and producer fields on a record it produced.
func (tb *txnBatch) fresh() []*kgo.Record {
	out := make([]*kgo.Record, len(tb.records))
	for i, r := range tb.records {
		out[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: r.Partition}
	}
	return out
}

// writeBatchTxn commits the batch in one transaction, retrying until it is
// committed or ctx ends (shutdown).
func (k *kafkaProducer) writeBatchTxn(ctx context.Context, batch service.MessageBatch) error {
	t := k.txn
	t.mu.Lock()
	defer t.mu.Unlock()

	delay := 100 * time.Millisecond
	var lastLogged time.Time
	inDoubt := false
	rf := &txnRefusals{suspect: map[int]bool{}, dead: map[int]refusal{}}
	for attempt := 1; ; attempt++ {
		err := k.tryTxn(ctx, batch, &inDoubt, rf)
		if err == nil {
			if attempt > 1 {
				k.log.Infof("Kafka transaction committed after %d attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka transaction not committed before shutdown (the batch is read again after a restart): %w: %w", service.ErrNotConnected, err)
		}
		if time.Since(lastLogged) > 10*time.Second || attempt <= 3 {
			k.log.Errorf("Kafka transaction %d failed, retrying the whole batch in a new transaction in %v (the pipeline waits; nothing of the batch is visible to read_committed consumers): %v", attempt, delay, err)
			lastLogged = time.Now()
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("kafka transaction not committed before shutdown (the batch is read again after a restart): %w: %w", service.ErrNotConnected, err)
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// errFenced marks a producer another instance took over from.
var errFenced = errors.New("another producer with the same transactional_id took over: this instance no longer writes; stop it (and make transactional_id unique per running pipeline)")

// isFenced reports Kafka's fencing errors and errFenced.
func isFenced(err error) bool {
	return kafkax.IsFenced(err) || errors.Is(err, errFenced)
}

// tryTxn makes one attempt: begin, produce everything, commit. On failure the
// transaction is aborted. *inDoubt is set when a commit's outcome is unknown;
// the next attempt then produces (which makes the client initialise its
// producer ID if it was replaced, settling the earlier transaction
// broker-side) and, before committing, reads the checkpoint topic: if it
// already holds this batch's checkpoint, the earlier commit landed, and the
// new transaction is aborted instead of committing the batch twice.
func (k *kafkaProducer) tryTxn(ctx context.Context, batch service.MessageBatch, inDoubt *bool, rf *txnRefusals) error {
	if k.txn.fenced.Load() {
		return errFenced
	}
	tb, err := k.buildTxnBatch(batch, rf)
	if err != nil {
		// A message that cannot become a record (a failed interpolation: a
		// config error) stalls the pipeline rather than be skipped or
		// reordered; the error is logged on every attempt.
		return err
	}
	cl := k.getClient()
	if cl == nil {
		return service.ErrNotConnected
	}
	if err := k.topics.Ensure(ctx, cl, recordTopics(tb.records)...); err != nil {
		return err
	}
	if err := cl.BeginTransaction(); err != nil {
		return k.recover(cl, fmt.Errorf("beginning transaction: %w", err))
	}
	recs := tb.fresh()
	stopWarning := warnWhileWaiting(txnStallWarning, func(waited time.Duration) {
		k.log.Warnf("Kafka has not acknowledged the %d records of this transaction for %v (brokers down or refusing writes?); still waiting, nothing is lost", len(recs), waited.Round(time.Second))
	})
	err = k.produceTxn(ctx, cl, tb, recs, rf)
	stopWarning()
	if err != nil {
		_ = k.abort(ctx, cl)
		return k.recover(cl, fmt.Errorf("producing: %w", err))
	}
	// Never cancel a commit half way: its outcome would be unknown. It is
	// bounded by the client's request timeouts and retries instead.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.txn.timeout)
	defer cancel()
	if *inDoubt && tb.checkpoint != nil {
		got, err := readCheckpoint(commitCtx, k.plainOpts(), k.txn.topic, tb.checkpointKey)
		if err != nil && !errors.Is(err, errNoCheckpoint) {
			_ = k.abort(ctx, cl)
			return k.recover(cl, fmt.Errorf("checking whether the previous commit landed: %w", err))
		}
		if bytes.Equal(got, tb.checkpoint) {
			*inDoubt = false
			if err := k.abort(ctx, cl); err != nil {
				k.log.Warnf("Aborting a transaction not needed: %v", err)
				_ = k.recover(cl, err)
			}
			k.log.Warnf("A Kafka commit reported an error but had landed (its checkpoint is in %s): the batch is acknowledged, not written twice", k.txn.topic)
			for _, d := range tb.dead {
				k.noteDeadLetter(d) // they landed with it
			}
			return nil
		}
	}
	*inDoubt = false
	commitErr := cl.EndTransaction(commitCtx, kgo.TryCommit)
	if commitErr == nil {
		for _, d := range tb.dead {
			k.noteDeadLetter(d)
		}
		return nil
	}
	*inDoubt = true
	if err := k.abort(commitCtx, cl); err != nil {
		return k.recover(cl, fmt.Errorf("committing: %w; then aborting: %w", commitErr, err))
	}
	return k.recover(cl, fmt.Errorf("committing: %w", commitErr))
}

// produceTxn produces recs (tb's records, fresh) in the open transaction:
// all but the suspects together, then each suspect alone. Records Kafka
// refuses for good are noted in rf for the next attempt.
func (k *kafkaProducer) produceTxn(ctx context.Context, cl *kgo.Client, tb *txnBatch, recs []*kgo.Record, rf *txnRefusals) error {
	var together, alone []int
	for i := range recs {
		if idx := tb.msgIndex[i]; idx >= 0 && rf.suspect[idx] {
			alone = append(alone, i)
		} else {
			together = append(together, i)
		}
	}
	batch := make([]*kgo.Record, len(together))
	index := make(map[*kgo.Record]int, len(together))
	for j, i := range together {
		batch[j] = recs[i]
		index[recs[i]] = i
	}
	// Results come in the order Kafka answered, not the order given.
	results := cl.ProduceSync(ctx, batch...)
	if err := results.FirstErr(); err != nil {
		for _, res := range results {
			k.noteRefusal(tb, recs, index[res.Record], res.Err, false, rf)
		}
		return err
	}
	for _, i := range alone {
		if err := cl.ProduceSync(ctx, recs[i]).FirstErr(); err != nil {
			k.noteRefusal(tb, recs, i, err, true, rf)
			return err
		}
	}
	return kafkax.AwaitProducedPartitions(ctx, cl, recs...)
}

// noteRefusal records a refused-for-good record i of the attempt: a suspect
// if it was produced with others, dead if it was produced alone.
func (k *kafkaProducer) noteRefusal(tb *txnBatch, recs []*kgo.Record, i int, err error, alone bool, rf *txnRefusals) {
	label, ok := refusedForGood(err)
	idx := tb.msgIndex[i]
	if !ok || idx < 0 || k.deadLetterTopic == "" || recs[i].Topic == k.deadLetterTopic || tb.kept[idx] {
		return
	}
	if alone {
		rf.dead[idx] = refusal{err: err, label: label, partition: recs[i].Partition}
		delete(rf.suspect, idx)
	} else {
		rf.suspect[idx] = true
	}
}

// abort aborts the open transaction, dropping buffered records.
func (k *kafkaProducer) abort(ctx context.Context, cl *kgo.Client) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.txn.timeout)
	defer cancel()
	if err := cl.AbortBufferedRecords(actx); err != nil {
		return err
	}
	return cl.EndTransaction(actx, kgo.TryAbort)
}

// recover decides what a failed attempt leaves behind. A fenced producer
// stops for good. Otherwise, if the client cannot start a new transaction
// (its producer ID failed, or a transaction is stuck open), it is replaced by
// a new client with the same transactional ID: initialising it aborts
// whatever the old one left open.
func (k *kafkaProducer) recover(cl *kgo.Client, err error) error {
	fenced := func(err error) error {
		k.txn.fenced.Store(true)
		k.log.Errorf("Kafka: %v (%v)", errFenced, err)
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	if isFenced(err) {
		return fenced(err)
	}
	// Abort whatever may still be open: for a producer a successor took over
	// from, this is where Kafka says so — and then it must not replace its
	// client, as that would fence the successor in turn.
	if aerr := k.abort(context.Background(), cl); isFenced(aerr) {
		return fenced(aerr)
	}
	if berr := cl.BeginTransaction(); berr == nil {
		// Healthy: undo the probe. Nothing was produced, so ending is a no-op.
		_ = cl.EndTransaction(context.Background(), kgo.TryAbort)
		return err
	}
	k.mu.Lock()
	if k.client == cl {
		k.client = nil
	}
	k.mu.Unlock()
	cl.Close()
	ncl, nerr := kgo.NewClient(k.clientOptsForMode()...)
	if nerr != nil {
		return fmt.Errorf("%w; replacing the kafka client: %w", err, nerr)
	}
	k.mu.Lock()
	if k.client == nil {
		k.client = ncl
	} else {
		ncl.Close()
	}
	k.mu.Unlock()
	return err
}

// txnStallWarning is how often a transaction waiting on Kafka says so.
const txnStallWarning = 10 * time.Second

// warnWhileWaiting calls warn every period until the returned stop is
// called: franz-go retries a produce silently for as long as Kafka is
// unreachable, and an operator must see why the pipeline stands still.
func warnWhileWaiting(period time.Duration, warn func(waited time.Duration)) (stop func()) {
	done := make(chan struct{})
	started := time.Now()
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				warn(time.Since(started))
			}
		}
	}()
	return func() { close(done) }
}
