package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/meta"
)

const (
	kpFieldSeedBrokers     = "seed_brokers"
	kpFieldTopic           = "topic"
	kpFieldKey             = "key"
	kpFieldPartitioner     = "partitioner"
	kpFieldPartition       = "partition"
	kpFieldClientID        = "client_id"
	kpFieldAcks            = "acks"
	kpFieldIdempotent      = "idempotent_write"
	kpFieldCompression     = "compression"
	kpFieldMaxMessageBytes = "max_message_bytes"
	kpFieldTimeout         = "timeout"
	kpFieldMaxInFlight     = "max_in_flight"
	kpFieldMetadata        = "metadata"
	kpFieldTLS             = "tls"
	kpFieldSASL            = "sasl"
	kpFieldBatching        = "batching"

	kpFieldTransactionalID    = "transactional_id"
	kpFieldTransactionTimeout = "transaction_timeout"
	kpFieldCheckpointTopic    = "checkpoint_topic"
	kpFieldCheckpointMeta     = "checkpoint_metadata"
	kpFieldCheckpointKey      = "checkpoint_key"
)

func kafkaProducerSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Writes messages to Kafka with franz-go; a batch is acknowledged only once Kafka has acknowledged every record in it.").
		Description(`
Each message becomes one record: the message body is the record value, `+"`key`"+` is the record key
and the metadata keys selected by `+"`metadata`"+` become record headers.

By default writes are idempotent with `+"`acks: all`"+`, so broker-side retries never duplicate or
reorder records within a partition, and a batch is acknowledged upstream only when every record
in it has been acknowledged by all in-sync replicas.

### Failures

- A record Kafka refuses for good (larger than `+"`max_message_bytes`"+` or than the topic accepts,
  an invalid record) goes to `+"`dead_letter_topic`"+` with the reason in a header, and its message is
  acknowledged: one bad record never stalls the pipeline.
- A record that cannot be written for another reason specific to it (a failed interpolation, a
  retriable error Kafka returned for its partition) fails only that message; the rest of the
  batch is acknowledged and the input is asked to redeliver the failed messages.
- A topic that does not exist is created by the broker (`+"`allow_auto_topic_creation`"+`) or by this
  output (`+"`create_topics`"+`); one that cannot be created is an error naming it and the fix.
- A connection failure's cause (connection refused, TLS, SASL) is logged once per change, and the
  output reports itself not ready until a broker answers.
- When no record of a batch could be delivered because Kafka is unreachable, the output reports
  itself disconnected: the pipeline waits and retries the whole batch once Kafka answers again.
  Nothing is dropped.

### Partitioning

The default `+"`murmur2`"+` partitioner hashes the key exactly as Kafka's Java client does, so Java
consumers, Kafka Streams and this output agree on which partition holds a key. Records without a
key are spread with sticky partitioning.`).
		Fields(
			service.NewStringListField(kpFieldSeedBrokers).
				Description("Kafka brokers to bootstrap from. Entries may hold several comma-separated addresses.").
				Example([]string{"localhost:9092"}).
				Example([]string{"kafka-1:9092,kafka-2:9092"}),
			service.NewInterpolatedStringField(kpFieldTopic).
				Description("The topic to write each message to.").
				Example("okta.system_log"),
			service.NewInterpolatedStringField(kpFieldKey).
				Description("The record key. Empty means no key.").
				Example(`${! json("uuid") }`).
				Default(""),
			service.NewStringEnumField(kpFieldPartitioner, "murmur2", "round_robin", "least_backup", "manual").
				Description("How records are assigned to partitions: `murmur2` hashes the key like Kafka's Java client (sticky for records without a key), `round_robin` cycles through partitions, `least_backup` picks the partition with the fewest buffered records, `manual` uses the `partition` field.").
				Default("murmur2").
				Advanced(),
			service.NewInterpolatedStringField(kpFieldPartition).
				Description("The partition to write to when `partitioner` is `manual`; must resolve to a number.").
				Example(`${! meta("partition") }`).
				Optional().
				Advanced(),
			service.NewStringField(kpFieldClientID).
				Description("The client ID sent to Kafka, visible in broker logs and quotas.").
				Default("oktadetect"),
			service.NewStringEnumField(kpFieldAcks, "all", "leader", "none").
				Description("How many replicas must acknowledge a write: `all` in-sync replicas, only the `leader`, or `none`. Anything but `all` can lose acknowledged records when a broker fails.").
				Default("all").
				Advanced(),
			service.NewBoolField(kpFieldIdempotent).
				Description("Produce idempotently, so that internal retries never duplicate or reorder records. Requires `acks: all`; set it to false to use another `acks`, or when the principal lacks the IDEMPOTENT_WRITE permission on old brokers.").
				Default(true).
				Advanced(),
			service.NewStringEnumField(kpFieldCompression, "none", "gzip", "snappy", "lz4", "zstd").
				Description("The compression codec for record batches. A batch is only sent compressed if that makes it smaller. `zstd` needs brokers ≥ 2.1.").
				Default("snappy"),
			service.NewIntField(kpFieldMaxMessageBytes).
				Description("The largest record (key, value and headers) accepted. A larger message goes to `dead_letter_topic` (with `dead_letter_topic` empty: fails on its own with a clear error); the rest of its batch is written. Record batches are sized to at most this plus 256 bytes, so keep it at least 256 bytes below the topic's `max.message.bytes` (1048588 by default: the default here leaves room), or Kafka refuses full uncompressed batches.").
				Default(1000000).
				Advanced(),
			service.NewDurationField(kpFieldTimeout).
				Description("How long a batch may wait for records that have not been sent yet. Records already sent under idempotence wait for Kafka's answer regardless, because failing them could duplicate data.").
				Default("10s").
				Advanced(),
			service.NewIntField(kpFieldMaxInFlight).
				Description("The maximum number of batches written concurrently.").
				Default(10),
			service.NewMetadataFilterField(kpFieldMetadata).
				Description("Which metadata keys to forward as record headers. Nothing is forwarded by default.").
				Optional().
				Advanced(),
			service.NewTLSToggledField(kpFieldTLS).
				Description("TLS for broker connections: a custom CA (`root_cas`/`root_cas_file`) and client certificates (`client_certs`) for mutual TLS. `skip_cert_verify` disables server verification and is for tests only."),
			saslField(),
		).
		Fields(topicFields()...).
		Fields(
			deadLetterField(),
			service.NewBatchPolicyField(kpFieldBatching),
			service.NewStringField(kpFieldTransactionalID).
				Description("Enables exactly-once mode: each batch is written in one Kafka transaction under this transactional ID, together with the batch's checkpoint (see `checkpoint_metadata`). Keep it stable across restarts and unique per pipeline (e.g. per Okta org): a restarted producer with the same ID aborts whatever transaction its predecessor left open, and fences it off. Requires `idempotent_write` and `acks: all`, no `batching`, and forces `max_in_flight` to 1. Empty: at-least-once mode.").
				Example("oktadetect-acme.okta.com").
				Default(""),
			service.NewDurationField(kpFieldTransactionTimeout).
				Description("In exactly-once mode, how long Kafka keeps a transaction open before aborting it if this producer disappears without a successor.").
				Default("1m").
				Advanced(),
			service.NewStringField(kpFieldCheckpointTopic).
				Description("In exactly-once mode, the compacted topic the checkpoints are written to (created, compacted, if it does not exist). Read it back with the `kafka_checkpoint` cache.").
				Default("okta.checkpoints"),
			service.NewStringField(kpFieldCheckpointMeta).
				Description("The metadata key holding a message's checkpoint (`okta_system_log` sets `okta_cursor` on the last message of each page). In exactly-once mode the latest checkpoint of a batch is written to `checkpoint_topic` in the batch's transaction. In both modes this key is never forwarded as a header.").
				Default(meta.OktaCursor).
				Advanced(),
			service.NewInterpolatedStringField(kpFieldCheckpointKey).
				Description("In exactly-once mode, the record key of a checkpoint, resolved on the message that carries it; the `kafka_checkpoint` cache is read with the same key. `okta_system_log` sets `okta_cursor_key` to its `checkpoint_key`.").
				Default(`${! meta("`+meta.OktaCursorKey+`") }`).
				Advanced(),
		).
		Example("Plaintext", "Every event to one topic, keyed by its Okta uuid.", `
output:
  kafka_producer:
    seed_brokers: [ localhost:9092 ]
    topic: okta.system_log
    key: ${! json("uuid") }
    batching:
      count: 100
      period: 1s
`).
		Example("SASL and TLS", "A managed cluster with SCRAM authentication over TLS, forwarding the okta_ metadata as headers.", `
output:
  kafka_producer:
    seed_brokers: [ "${KAFKA_BROKERS}" ]
    topic: okta.alerts
    key: ${! json("alert_id") }
    compression: zstd
    tls:
      enabled: true
      root_cas_file: /etc/ssl/kafka-ca.pem
    sasl:
      - mechanism: SCRAM-SHA-512
        username: ${KAFKA_USER}
        # A file keeps the password out of YAML (a "${VAR}" is pasted into the text).
        password_file: /run/secrets/kafka-password
    metadata:
      include_prefixes: [ okta_ ]
`)
}

func init() {
	service.MustRegisterBatchOutput("kafka_producer", kafkaProducerSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			out, err := newKafkaProducer(conf, mgr)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			return out, out.batching, out.maxInFlight, nil
		})
}

// kafkaProducer is the kafka_producer output. The franz-go client is created
// once in Connect and kept across reconnects: it owns the idempotent producer
// state, which must survive a broker outage for deduplication to hold.
type kafkaProducer struct {
	log *service.Logger

	topic     *service.InterpolatedString
	key       *service.InterpolatedString
	partition *service.InterpolatedString // only for the manual partitioner
	headers   *service.MetadataFilter

	maxMessageBytes int
	timeout         time.Duration
	maxInFlight     int
	batching        service.BatchPolicy
	opts            []kgo.Opt

	checkpointMeta string
	txn            *txnConfig // nil: at-least-once mode

	topics   *topicGate
	dlqTopic string // "": no dead letters
	mDead    *service.MetricCounter
	conn     *connWatch
	hints    connHints

	mu     sync.Mutex
	client *kgo.Client

	builderMu   sync.Mutex
	lastBuilder *recordBuilder // buildRecord's, for the exactly-once path
}

func newKafkaProducer(conf *service.ParsedConfig, mgr *service.Resources) (*kafkaProducer, error) {
	k := &kafkaProducer{
		log:   mgr.Logger(),
		mDead: mgr.Metrics().NewCounter("kafka_producer_dead_letters_total", "reason"),
		conn:  newConnWatch(mgr.Logger(), "kafka_producer"),
	}
	var err error
	if k.topic, err = conf.FieldInterpolatedString(kpFieldTopic); err != nil {
		return nil, err
	}
	if k.key, err = conf.FieldInterpolatedString(kpFieldKey); err != nil {
		return nil, err
	}
	if k.maxMessageBytes, err = conf.FieldInt(kpFieldMaxMessageBytes); err != nil {
		return nil, err
	}
	if k.maxMessageBytes < 1 {
		return nil, fmt.Errorf("%s must be positive, got %d", kpFieldMaxMessageBytes, k.maxMessageBytes)
	}
	if k.timeout, err = conf.FieldDuration(kpFieldTimeout); err != nil {
		return nil, err
	}
	if k.timeout <= 0 {
		return nil, fmt.Errorf("%s must be positive, got %v", kpFieldTimeout, k.timeout)
	}
	if k.maxInFlight, err = conf.FieldInt(kpFieldMaxInFlight); err != nil {
		return nil, err
	}
	if k.maxInFlight < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", kpFieldMaxInFlight, k.maxInFlight)
	}
	if k.batching, err = conf.FieldBatchPolicy(kpFieldBatching); err != nil {
		return nil, err
	}
	if conf.Contains(kpFieldMetadata) {
		if k.headers, err = conf.FieldMetadataFilter(kpFieldMetadata); err != nil {
			return nil, err
		}
	}
	if k.checkpointMeta, err = conf.FieldString(kpFieldCheckpointMeta); err != nil {
		return nil, err
	}
	if k.dlqTopic, err = conf.FieldString(kpFieldDeadLetterTopic); err != nil {
		return nil, err
	}
	k.dlqTopic = strings.TrimSpace(k.dlqTopic)
	k.topics = &topicGate{}
	if k.topics.autoCreate, err = conf.FieldBool(kpFieldAutoCreate); err != nil {
		return nil, err
	}
	if k.topics.create, err = parseTopicSpec(conf); err != nil {
		return nil, err
	}
	if k.opts, err = k.clientOpts(conf); err != nil {
		return nil, err
	}
	k.hints = connHintsOf(conf)
	if k.txn, err = parseTxnConfig(conf, k); err != nil {
		return nil, err
	}
	if k.txn != nil {
		k.maxInFlight = 1
	}
	return k, nil
}

// clientOpts turns the config into franz-go options; all validation happens
// here so a bad config fails at startup rather than on first connect.
func (k *kafkaProducer) clientOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	opts, err := connectionOpts(conf)
	if err != nil {
		return nil, err
	}
	if k.topics.autoCreate {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	// franz-go counts the whole batch against this limit, so a single record
	// just under max_message_bytes still fits.
	opts = append(opts, kgo.ProducerBatchMaxBytes(int32(min(k.maxMessageBytes+batchOverhead, 1<<30))))
	partOpts, err := k.partitionerOpts(conf)
	if err != nil {
		return nil, err
	}
	opts = append(opts, partOpts...)
	ackOpts, err := ackOpts(conf)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ackOpts...)
	codec, err := compressionCodec(conf)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

// batchOverhead is a generous bound on the record-batch header plus one
// record's framing, so max_message_bytes can speak about the record alone.
const batchOverhead = 256

func (k *kafkaProducer) partitionerOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	name, err := conf.FieldString(kpFieldPartitioner)
	if err != nil {
		return nil, err
	}
	hasPartition := conf.Contains(kpFieldPartition)
	if hasPartition != (name == "manual") {
		return nil, fmt.Errorf("%s is required with partitioner manual and only allowed with it", kpFieldPartition)
	}
	var p kgo.Partitioner
	switch name {
	case "murmur2":
		// A nil hasher is franz-go's KafkaHasher(murmur2): the Java client's
		// default for keyed records.
		p = kgo.StickyKeyPartitioner(nil)
	case "round_robin":
		p = kgo.RoundRobinPartitioner()
	case "least_backup":
		p = kgo.LeastBackupPartitioner()
	case "manual":
		if k.partition, err = conf.FieldInterpolatedString(kpFieldPartition); err != nil {
			return nil, err
		}
		p = kgo.ManualPartitioner()
	default:
		return nil, fmt.Errorf("unknown partitioner %q", name)
	}
	return []kgo.Opt{kgo.RecordPartitioner(p)}, nil
}

func ackOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	acksName, err := conf.FieldString(kpFieldAcks)
	if err != nil {
		return nil, err
	}
	idempotent, err := conf.FieldBool(kpFieldIdempotent)
	if err != nil {
		return nil, err
	}
	var acks kgo.Acks
	switch acksName {
	case "all":
		acks = kgo.AllISRAcks()
	case "leader":
		acks = kgo.LeaderAck()
	case "none":
		acks = kgo.NoAck()
	default:
		return nil, fmt.Errorf("unknown acks %q", acksName)
	}
	if idempotent && acksName != "all" {
		// Kafka rejects idempotent produce without acks=all; say so now
		// rather than let every write fail later.
		return nil, fmt.Errorf("%s requires acks: all (got %q); set %s: false to use weaker acks", kpFieldIdempotent, acksName, kpFieldIdempotent)
	}
	opts := []kgo.Opt{kgo.RequiredAcks(acks)}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts, nil
}

func compressionCodec(conf *service.ParsedConfig) (kgo.CompressionCodec, error) {
	name, err := conf.FieldString(kpFieldCompression)
	if err != nil {
		return kgo.NoCompression(), err
	}
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown compression %q", name)
}

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
	if err := pingBrokers(pingCtx, k.client, k.hints); err != nil {
		return k.conn.failed(err)
	}
	if err := k.prepareTopics(pingCtx); err != nil {
		return k.conn.failed(err)
	}
	k.conn.ok()
	return nil
}

// prepareTopics checks the static topic and, in exactly-once mode, the
// checkpoint topic before the first write, so that a topic that cannot be
// used keeps the output not ready with the reason in the log.
func (k *kafkaProducer) prepareTopics(ctx context.Context) error {
	if topic, ok := k.topic.Static(); ok {
		if err := k.topics.ensure(ctx, k.client, topic); err != nil {
			return err
		}
	}
	if k.txn != nil && !k.txn.topicReady {
		warn := func(msg string) { k.log.Warn(msg) }
		if err := ensureCompactedTopic(ctx, k.client, k.txn.topic, 1, warn); err != nil {
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
	if err := k.topics.ensure(ctx, cl, recordTopics(records)...); err != nil {
		var connErr *connError
		if errors.As(err, &connErr) {
			return k.conn.failed(err) // reconnect, rather than nack
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
	k.replaceRefused(ctx, cl, records, errs)
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

// buildRecords turns messages into records. A message that cannot become a
// record gets its error in errs and a nil record; one over
// max_message_bytes becomes a dead letter (dead[i] says so).
func (k *kafkaProducer) buildRecords(batch service.MessageBatch, errs []error) (records []*kgo.Record, dead []*deadLettered) {
	records = make([]*kgo.Record, len(batch))
	rb := k.newRecordBuilder(batch)
	for i := range batch {
		r, err := rb.build(i)
		if d := k.oversize(r, err); d != nil {
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
	if k.dlqTopic == "" || r == nil || !errors.As(err, &tl) {
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
		if key == k.checkpointMeta || key == k.checkpointMeta+"_key" {
			return nil // a checkpoint is not a header; see checkpoint_metadata
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
		return nil
	})
}

// recordSize is what max_message_bytes limits: the user-visible bytes.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
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
