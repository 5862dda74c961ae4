package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// Field names of kafka_checkpoint, besides kafkax's connection fields.
const (
	checkpointCacheFieldTopic   = "topic"
	checkpointCacheFieldTimeout = "timeout"
)

func kafkaCheckpointSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Reads checkpoints (e.g. the Okta cursor) from a compacted Kafka topic as a read_committed consumer; writes are done by `kafka_producer` inside its transactions.").
		Description(`
This cache is the read side of exactly-once delivery into Kafka. `+"`kafka_producer`"+` with a
`+"`transactional_id`"+` writes each checkpoint (a message's `+"`checkpoint_metadata`"+`, e.g. `+"`okta_cursor`"+`)
to `+"`topic`"+` in the same Kafka transaction as the records it covers. An input that resumes from
a cache (`+"`okta_system_log`"+`'s `+"`checkpoint_cache`"+`) reads it back here at start.

- `+"`get`"+` returns the latest value of the key that a `+"`read_committed`"+` consumer sees: the topic is
  read from its start up to the last stable offset, so a checkpoint of an aborted or unfinished
  transaction is never returned. A missing key or topic is "not found" (start from scratch).
- `+"`set`"+` and `+"`add`"+` do nothing and succeed: the output commits the value transactionally, and a
  write from outside that transaction would break the guarantee. `+"`delete`"+` does nothing either;
  delete a checkpoint by producing a tombstone for its key.`).
		Fields(
			kafkax.SeedBrokersField(),
			service.NewStringField(checkpointCacheFieldTopic).
				Description("The compacted topic holding the checkpoints, keyed by checkpoint key.").
				Default("okta.checkpoints"),
			kafkax.ClientIDField(),
			service.NewDurationField(checkpointCacheFieldTimeout).
				Description("How long one read of the topic may take before it fails (the input then retries).").
				Default("30s").
				Advanced(),
			kafkax.TLSField(),
			kafkax.SASLField(),
		).
		Example("Okta cursor", "The Okta input resumes from the cursor that kafka_producer commits with the events.", `
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    api_token: ${OKTA_API_TOKEN}
    checkpoint_cache: okta_cursor
cache_resources:
  - label: okta_cursor
    kafka_checkpoint:
      seed_brokers: [ "${KAFKA_BROKERS}" ]
      topic: okta.checkpoints
`)
}

func init() {
	service.MustRegisterCache("kafka_checkpoint", kafkaCheckpointSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Cache, error) {
			c, err := newKafkaCheckpointCache(conf)
			if err == nil {
				c.conn = kafkax.NewConnWatch(mgr.Logger(), "kafka_checkpoint cache")
			}
			return c, err
		})
}

type kafkaCheckpointCache struct {
	kafka   *kafkax.Connection
	topic   string
	timeout time.Duration
	conn    *kafkax.ConnWatch
}

// newKafkaCheckpointCache validates the config; it does no I/O.
func newKafkaCheckpointCache(conf *service.ParsedConfig) (*kafkaCheckpointCache, error) {
	c := &kafkaCheckpointCache{conn: kafkax.NewConnWatch(nil, "kafka_checkpoint cache")}
	var err error
	if c.topic, err = conf.FieldString(checkpointCacheFieldTopic); err != nil {
		return nil, err
	}
	if c.topic == "" {
		return nil, errors.New("topic must not be empty")
	}
	if c.timeout, err = conf.FieldDuration(checkpointCacheFieldTimeout); err != nil {
		return nil, err
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("%s must be positive", checkpointCacheFieldTimeout)
	}
	if c.kafka, err = kafkax.ParseConnection(conf); err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns the latest committed checkpoint of key.
func (c *kafkaCheckpointCache) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := readCheckpoint(ctx, c.kafka.Opts(), c.topic, key)
	if kafkax.IsConnError(err) {
		_ = c.conn.Failed(err) // logged once; the caller retries
		return nil, err
	}
	c.conn.OK()
	if errors.Is(err, errNoCheckpoint) {
		return nil, service.ErrKeyNotFound
	}
	return v, err
}

// Set does nothing: kafka_producer commits checkpoints in its transactions.
func (c *kafkaCheckpointCache) Set(context.Context, string, []byte, *time.Duration) error {
	return nil
}

// Add does nothing, like Set.
func (c *kafkaCheckpointCache) Add(context.Context, string, []byte, *time.Duration) error {
	return nil
}

// Delete does nothing; produce a tombstone to the topic to forget a checkpoint.
func (c *kafkaCheckpointCache) Delete(context.Context, string) error { return nil }

func (c *kafkaCheckpointCache) Close(context.Context) error { return nil }
