package kafka

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// Field names of kafka_producer, besides kafkax's connection and topic
// creation fields.
const (
	producerFieldTopic           = "topic"
	producerFieldKey             = "key"
	producerFieldPartitioner     = "partitioner"
	producerFieldPartition       = "partition"
	producerFieldAcks            = "acks"
	producerFieldIdempotent      = "idempotent_write"
	producerFieldCompression     = "compression"
	producerFieldMaxMessageBytes = "max_message_bytes"
	producerFieldTimeout         = "timeout"
	producerFieldMaxInFlight     = "max_in_flight"
	producerFieldMetadata        = "metadata"
	producerFieldBatching        = "batching"

	producerFieldTransactionalID    = "transactional_id"
	producerFieldTransactionTimeout = "transaction_timeout"
	producerFieldCheckpointTopic    = "checkpoint_topic"
	producerFieldCheckpointMeta     = "checkpoint_metadata"
	producerFieldCheckpointKey      = "checkpoint_key"
	producerFieldCheckpointKeyMeta  = "checkpoint_key_metadata"
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
  acknowledged: one bad record never stalls the pipeline. A message with metadata
  `+"`kafka_no_dead_letter`"+` = `+"`true`"+` (`+"`cel_detect`"+`'s state records) is never replaced by a dead
  letter: its refusal fails the write, with the reason, and the batch is retried.
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

### Tombstones

A message with metadata `+"`kafka_tombstone`"+` = `+"`true`"+` is written with a null value whatever its body:
a tombstone, which deletes its key from a compacted topic.

### Partitioning

The default `+"`murmur2`"+` partitioner hashes the key exactly as Kafka's Java client does, so Java
consumers, Kafka Streams and this output agree on which partition holds a key. Records without a
key are spread with sticky partitioning.`).
		Fields(
			kafkax.SeedBrokersField(),
			service.NewInterpolatedStringField(producerFieldTopic).
				Description("The topic to write each message to.").
				Example("okta.system_log"),
			service.NewInterpolatedStringField(producerFieldKey).
				Description("The record key. Empty means no key.").
				Example(`${! json("uuid") }`).
				Default(""),
			service.NewStringEnumField(producerFieldPartitioner, "murmur2", "round_robin", "least_backup", "manual").
				Description("How records are assigned to partitions: `murmur2` hashes the key like Kafka's Java client (sticky for records without a key), `round_robin` cycles through partitions, `least_backup` picks the partition with the fewest buffered records, `manual` uses the `partition` field.").
				Default("murmur2").
				Advanced(),
			service.NewInterpolatedStringField(producerFieldPartition).
				Description("The partition to write to when `partitioner` is `manual`; must resolve to a number.").
				Example(`${! meta("partition") }`).
				Optional().
				Advanced(),
			kafkax.ClientIDField(),
			service.NewStringEnumField(producerFieldAcks, "all", "leader", "none").
				Description("How many replicas must acknowledge a write: `all` in-sync replicas, only the `leader`, or `none`. Anything but `all` can lose acknowledged records when a broker fails.").
				Default("all").
				Advanced(),
			service.NewBoolField(producerFieldIdempotent).
				Description("Produce idempotently, so that internal retries never duplicate or reorder records. Requires `acks: all`; set it to false to use another `acks`, or when the principal lacks the IDEMPOTENT_WRITE permission on old brokers.").
				Default(true).
				Advanced(),
			service.NewStringEnumField(producerFieldCompression, "none", "gzip", "snappy", "lz4", "zstd").
				Description("The compression codec for record batches. A batch is only sent compressed if that makes it smaller. `zstd` needs brokers ≥ 2.1.").
				Default("snappy"),
			service.NewIntField(producerFieldMaxMessageBytes).
				Description("The largest record (key, value and headers) accepted. A larger message goes to `dead_letter_topic` (with `dead_letter_topic` empty: fails on its own with a clear error); the rest of its batch is written. Record batches are sized to at most this plus 256 bytes, so keep it at least 256 bytes below the topic's `max.message.bytes` (1048588 by default: the default here leaves room), or Kafka refuses full uncompressed batches.").
				Default(1000000).
				Advanced(),
			service.NewDurationField(producerFieldTimeout).
				Description("How long a batch may wait for records that have not been sent yet. Records already sent under idempotence wait for Kafka's answer regardless, because failing them could duplicate data.").
				Default("10s").
				Advanced(),
			service.NewIntField(producerFieldMaxInFlight).
				Description("The maximum number of batches written concurrently.").
				Default(10),
			service.NewMetadataFilterField(producerFieldMetadata).
				Description("Which metadata keys to forward as record headers. Nothing is forwarded by default.").
				Optional().
				Advanced(),
			kafkax.TLSField(),
			kafkax.SASLField(),
		).
		Fields(kafkax.TopicCreationFields()...).
		Fields(
			deadLetterField(),
			service.NewBatchPolicyField(producerFieldBatching),
			service.NewStringField(producerFieldTransactionalID).
				Description("Enables exactly-once mode: each batch is written in one Kafka transaction under this transactional ID, together with the batch's checkpoint (see `checkpoint_metadata`). Keep it stable across restarts and unique per pipeline (e.g. per Okta org): a restarted producer with the same ID aborts whatever transaction its predecessor left open, and fences it off. Requires `idempotent_write` and `acks: all`, no `batching`, and forces `max_in_flight` to 1. Empty: at-least-once mode.").
				Example("oktadetect-acme.okta.com").
				Default(""),
			service.NewDurationField(producerFieldTransactionTimeout).
				Description("In exactly-once mode, how long Kafka keeps a transaction open before aborting it if this producer disappears without a successor.").
				Default("1m").
				Advanced(),
			service.NewStringField(producerFieldCheckpointTopic).
				Description("In exactly-once mode, the compacted topic the checkpoints are written to (created, compacted, if it does not exist). Read it back with the `kafka_checkpoint` cache.").
				Default("okta.checkpoints"),
			service.NewStringField(producerFieldCheckpointMeta).
				Description("The metadata key holding a message's checkpoint (`okta_system_log` sets `okta_cursor` on the last message of each page). In exactly-once mode the latest checkpoint of a batch is written to `checkpoint_topic` in the batch's transaction. In both modes this key is never forwarded as a header.").
				Default(meta.OktaCursor).
				Advanced(),
			service.NewStringField(producerFieldCheckpointKeyMeta).
				Description("The metadata key holding the record key of a message's checkpoint (`okta_system_log` sets `okta_cursor_key` next to `okta_cursor`; the default `checkpoint_key` reads it). Like `checkpoint_metadata`, it is never forwarded as a header.").
				Default(meta.OktaCursorKey).
				Advanced(),
			service.NewInterpolatedStringField(producerFieldCheckpointKey).
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
	kafka           *kafkax.Connection
	opts            []kgo.Opt // kafka's and the producer's, without transactions

	checkpointMeta    string     // never a header; the checkpoint in exactly-once mode
	checkpointKeyMeta string     // never a header
	txn               *txnConfig // nil: at-least-once mode

	topics          *kafkax.TopicGate
	deadLetterTopic string // "": no dead letters
	deadLetters     *service.MetricCounter
	conn            *kafkax.ConnWatch

	mu     sync.Mutex
	client *kgo.Client

	builderMu   sync.Mutex
	lastBuilder *recordBuilder // buildRecord's, for the exactly-once path
}

// newKafkaProducer validates the config; it does no I/O.
func newKafkaProducer(conf *service.ParsedConfig, mgr *service.Resources) (*kafkaProducer, error) {
	k := &kafkaProducer{
		log:         mgr.Logger(),
		deadLetters: mgr.Metrics().NewCounter("kafka_producer_dead_letters_total", "reason"),
		conn:        kafkax.NewConnWatch(mgr.Logger(), "kafka_producer"),
	}
	var err error
	if k.topic, err = conf.FieldInterpolatedString(producerFieldTopic); err != nil {
		return nil, err
	}
	if k.key, err = conf.FieldInterpolatedString(producerFieldKey); err != nil {
		return nil, err
	}
	if k.maxMessageBytes, err = conf.FieldInt(producerFieldMaxMessageBytes); err != nil {
		return nil, err
	}
	if k.maxMessageBytes < 1 {
		return nil, fmt.Errorf("%s must be positive, got %d", producerFieldMaxMessageBytes, k.maxMessageBytes)
	}
	if k.timeout, err = conf.FieldDuration(producerFieldTimeout); err != nil {
		return nil, err
	}
	if k.timeout <= 0 {
		return nil, fmt.Errorf("%s must be positive, got %v", producerFieldTimeout, k.timeout)
	}
	if k.maxInFlight, err = conf.FieldInt(producerFieldMaxInFlight); err != nil {
		return nil, err
	}
	if k.maxInFlight < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", producerFieldMaxInFlight, k.maxInFlight)
	}
	if k.batching, err = conf.FieldBatchPolicy(producerFieldBatching); err != nil {
		return nil, err
	}
	if conf.Contains(producerFieldMetadata) {
		if k.headers, err = conf.FieldMetadataFilter(producerFieldMetadata); err != nil {
			return nil, err
		}
	}
	if k.checkpointMeta, err = conf.FieldString(producerFieldCheckpointMeta); err != nil {
		return nil, err
	}
	if k.checkpointKeyMeta, err = conf.FieldString(producerFieldCheckpointKeyMeta); err != nil {
		return nil, err
	}
	if k.deadLetterTopic, err = conf.FieldString(producerFieldDeadLetterTopic); err != nil {
		return nil, err
	}
	k.deadLetterTopic = strings.TrimSpace(k.deadLetterTopic)
	if k.topics, err = kafkax.ParseTopicGate(conf); err != nil {
		return nil, err
	}
	if k.opts, err = k.clientOpts(conf); err != nil {
		return nil, err
	}
	if k.txn, err = parseTxnConfig(conf, k); err != nil {
		return nil, err
	}
	if k.txn != nil {
		k.maxInFlight = 1
	}
	return k, nil
}
