package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// Field names of kafka_consumer, besides kafkax's connection fields.
const (
	consumerFieldTopics                 = "topics"
	consumerFieldGroup                  = "consumer_group"
	consumerFieldStartOffset            = "start_offset"
	consumerFieldReadCommitted          = "read_committed"
	consumerFieldCommitPeriod           = "commit_period"
	consumerFieldMaxInFlight            = "max_in_flight_per_partition"
	consumerFieldFetchMaxPartitionBytes = "fetch_max_partition_bytes"
	consumerFieldSessionTimeout         = "session_timeout"
	consumerFieldRebalanceTimeout       = "rebalance_timeout"
	consumerFieldDrainTimeout           = "rebalance_drain_timeout"
)

// maxBufferedRecords bounds the records fetched but not yet handed to the
// pipeline; the fetch loop stops polling (so franz-go stops fetching) above it.
const maxBufferedRecords = 10000

func kafkaConsumerSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Consumes Kafka topics as a member of a consumer group with franz-go; an offset is committed only once the pipeline has acknowledged the record and every earlier record of its partition.").
		Description(`
Run several pipelines with the same `+"`consumer_group`"+` and Kafka splits the topics' partitions
between them, moving partitions when a member joins, leaves or dies (cooperative-sticky
rebalancing: members keep the partitions they have and only the moved ones stop).

### Delivery: at least once

Each fetch of a partition becomes one batch. A batch's records are marked for commit when the
pipeline acknowledges the batch *and* every earlier batch of the same partition, so a commit never
skips a record that is still in flight; marked offsets are committed every `+"`commit_period`"+`,
when partitions are revoked and on shutdown.

- A batch rejected downstream (a nack) is delivered again, after a backoff, before anything later
  of its partition (only the messages that failed, when the output names them). It is never
  committed past.
- On a rebalance the revoked partitions stop being read, their in-flight batches get up to
  `+"`rebalance_drain_timeout`"+` to be acknowledged, then what was acknowledged is committed and the
  partitions are released. A graceful move (a member added or stopped) therefore processes nothing
  twice; a batch still unacknowledged after the drain is read again by the partition's new owner.
- A member that dies is noticed after `+"`session_timeout`"+`; its partitions' new owners resume from
  the last commit, so up to `+"`commit_period`"+` of its acknowledged records plus its in-flight
  batches are processed twice. Nothing is skipped.

### Ordering

With `+"`max_in_flight_per_partition: 1`"+` (the default) a partition's next batch is only handed to the
pipeline once the previous one is acknowledged, so records of one partition (hence of one key)
are processed in offset order even with several pipeline threads; throughput comes from
partitions being processed in parallel.

### Metadata

Every record header becomes a metadata key (so `+"`okta_org`"+`, `+"`okta_uuid`"+`, … written by
`+"`kafka_producer`"+` travel on), then `+"`kafka_key`"+`, `+"`kafka_topic`"+`, `+"`kafka_partition`"+`,
`+"`kafka_offset`"+` and `+"`kafka_timestamp_unix`"+` (the record timestamp in Unix seconds) are set.`).
		Fields(
			kafkax.SeedBrokersField(),
			service.NewStringListField(consumerFieldTopics).
				Description("The topics to consume. Entries may hold several comma-separated topics.").
				Example([]string{"okta.system_log"}),
			service.NewStringField(consumerFieldGroup).
				Description("The consumer group. Every pipeline with the same group shares the topics' partitions; committed offsets belong to the group.").
				Example("oktadetect-detect"),
			kafkax.ClientIDField(),
			service.NewStringEnumField(consumerFieldStartOffset, "earliest", "latest").
				Description("Where to start in a partition the group has no committed offset for (or whose committed offset is out of range): `earliest` reads what the topic retains, `latest` only records produced from now on.").
				Default("earliest"),
			service.NewBoolField(consumerFieldReadCommitted).
				Description("Read only records of committed transactions (`read_committed` isolation), so records of aborted or still open transactions written by a transactional `kafka_producer` are never seen. Set to false for `read_uncommitted`.").
				Default(true),
			service.NewDurationField(consumerFieldCommitPeriod).
				Description("How often acknowledged offsets are committed. Shorter means fewer records processed twice after a crash, at the cost of more commit requests.").
				Default("5s"),
			service.NewIntField(consumerFieldMaxInFlight).
				Description("How many batches of one partition may be in the pipeline at once. 1 keeps the records of a partition (and of a key) in offset order through the pipeline; more can raise throughput with few partitions, but batches of a partition may then be processed out of order.").
				Default(1).
				Advanced(),
			service.NewIntField(consumerFieldFetchMaxPartitionBytes).
				Description("The most bytes fetched from one partition in one request, which bounds a batch's size (a single larger record is still fetched whole).").
				Default(1048576).
				Advanced(),
			service.NewDurationField(consumerFieldSessionTimeout).
				Description("How long the group waits for a silent member before giving its partitions to the others: how quickly a crashed worker's partitions move. Heartbeats are sent every third of it (at most every 3s). The broker bounds it (`group.min.session.timeout.ms`, 6s by default).").
				Default("45s").
				Advanced(),
			service.NewDurationField(consumerFieldRebalanceTimeout).
				Description("How long the group waits for every member to rejoin during a rebalance, which includes this member's drain of revoked partitions.").
				Default("60s").
				Advanced(),
			service.NewDurationField(consumerFieldDrainTimeout).
				Description("On a rebalance, how long to wait for the in-flight batches of revoked partitions to be acknowledged before committing and releasing the partitions. Must be shorter than `rebalance_timeout`. 0 releases them at once (their in-flight records are then processed again by the new owner).").
				Default("10s").
				Advanced(),
			kafkax.ConsumerCreateTopicsField(),
			kafkax.TLSField(),
			kafkax.SASLField(),
		).
		Example("Detection worker", "One of several workers sharing the events topic; run as many as there are partitions at most.", `
input:
  kafka_consumer:
    seed_brokers: [ localhost:9092 ]
    topics: [ okta.system_log ]
    consumer_group: oktadetect-detect
`).
		Example("SASL and TLS", "A managed cluster with SCRAM authentication over TLS.", `
input:
  kafka_consumer:
    seed_brokers: [ "${KAFKA_BROKERS}" ]
    topics: [ okta.system_log ]
    consumer_group: oktadetect-detect
    start_offset: latest
    tls:
      enabled: true
      root_cas_file: /etc/ssl/kafka-ca.pem
    sasl:
      - mechanism: SCRAM-SHA-512
        username: ${KAFKA_USER}
        password: ${KAFKA_PASSWORD}
`)
}

func init() {
	service.MustRegisterBatchInput("kafka_consumer", kafkaConsumerSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			return newKafkaConsumer(conf, mgr)
		})
}

// partState is what this member tracks of one partition it owns. A new
// assignment of the same partition gets a new partState; acks that arrive for
// an old one (gone) are ignored, since the partition's next owner reads those
// records again from the last commit.
type partState struct {
	tp       kafkax.TopicPartition
	queue    []*pendingBatch // to hand to the pipeline, in order (a nacked batch goes back first)
	out      []*pendingBatch // handed out and not yet committable, in offset order
	active   int             // batches currently in the pipeline
	revoking bool            // draining: nothing more is handed out
	gone     bool            // released; acks are ignored
}

// pendingBatch is one fetch of one partition.
type pendingBatch struct {
	part      *partState
	records   []*kgo.Record
	redeliver []int // on a retry, the indexes of records to deliver again (nil: all)
	emitted   bool
	done      bool
	attempts  int
	notBefore time.Time
}

// kafkaConsumer is the kafka_consumer input.
type kafkaConsumer struct {
	log          *service.Logger
	conn         *kafkax.ConnWatch
	kafka        *kafkax.Connection
	mNacks       *service.MetricCounter
	mRevoked     *service.MetricCounter
	opts         []kgo.Opt
	topics       []string
	create       *kafkax.TopicCreator // nil: create_topics off
	maxInFlight  int
	drainTimeout time.Duration

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change of the state below
	cl       *kgo.Client
	parts    map[kafkax.TopicPartition]*partState
	buffered int // records fetched and never handed out yet
	stop     context.CancelFunc
	loopDone chan struct{}
	closing  chan struct{} // closed by Close: drains stop waiting
}

// newKafkaConsumer validates the config; it does no I/O.
func newKafkaConsumer(conf *service.ParsedConfig, mgr *service.Resources) (*kafkaConsumer, error) {
	k := &kafkaConsumer{
		log:      mgr.Logger(),
		conn:     kafkax.NewConnWatch(mgr.Logger(), "kafka_consumer"),
		mNacks:   mgr.Metrics().NewCounter("kafka_consumer_nacked_batches_total"),
		mRevoked: mgr.Metrics().NewCounter("kafka_consumer_revoked_partitions_total"),
		changed:  make(chan struct{}),
	}
	// Series exist from the start, so increase() and alerts see the first
	// nack or revocation (Benthos creates a series at its first Incr).
	k.mNacks.Incr(0)
	k.mRevoked.Incr(0)
	var err error
	if k.kafka, err = kafkax.ParseConnection(conf); err != nil {
		return nil, err
	}
	topics, err := kafkax.SplitList(conf, consumerFieldTopics)
	if err != nil {
		return nil, err
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%s must list at least one topic", consumerFieldTopics)
	}
	k.topics = topics
	if k.create, err = kafkax.ParseTopicCreator(conf); err != nil {
		return nil, err
	}
	group, err := conf.FieldString(consumerFieldGroup)
	if err != nil {
		return nil, err
	}
	if group = strings.TrimSpace(group); group == "" {
		return nil, fmt.Errorf("%s is empty", consumerFieldGroup)
	}
	startName, err := conf.FieldString(consumerFieldStartOffset)
	if err != nil {
		return nil, err
	}
	start := kgo.NewOffset().AtStart()
	switch startName {
	case "earliest":
	case "latest":
		start = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("unknown %s %q", consumerFieldStartOffset, startName)
	}
	readCommitted, err := conf.FieldBool(consumerFieldReadCommitted)
	if err != nil {
		return nil, err
	}
	commitPeriod, err := positiveDuration(conf, consumerFieldCommitPeriod)
	if err != nil {
		return nil, err
	}
	if k.maxInFlight, err = conf.FieldInt(consumerFieldMaxInFlight); err != nil {
		return nil, err
	}
	if k.maxInFlight < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", consumerFieldMaxInFlight, k.maxInFlight)
	}
	fetchBytes, err := conf.FieldInt(consumerFieldFetchMaxPartitionBytes)
	if err != nil {
		return nil, err
	}
	if fetchBytes < 1 || fetchBytes > 1<<30 {
		return nil, fmt.Errorf("%s must be between 1 and 1073741824, got %d", consumerFieldFetchMaxPartitionBytes, fetchBytes)
	}
	session, err := positiveDuration(conf, consumerFieldSessionTimeout)
	if err != nil {
		return nil, err
	}
	rebalance, err := positiveDuration(conf, consumerFieldRebalanceTimeout)
	if err != nil {
		return nil, err
	}
	if k.drainTimeout, err = conf.FieldDuration(consumerFieldDrainTimeout); err != nil {
		return nil, err
	}
	if k.drainTimeout < 0 || k.drainTimeout >= rebalance {
		return nil, fmt.Errorf("%s (%v) must be at least 0 and shorter than %s (%v)", consumerFieldDrainTimeout, k.drainTimeout, consumerFieldRebalanceTimeout, rebalance)
	}

	k.opts = k.kafka.Opts(
		kgo.ConsumeTopics(topics...),
		kgo.ConsumerGroup(group),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxPartitionBytes(int32(fetchBytes)),
		kgo.SessionTimeout(session),
		// Kafka's rule of thumb: heartbeat at most a third of the session
		// timeout apart, so one lost heartbeat does not expire the session.
		kgo.HeartbeatInterval(min(3*time.Second, session/3)),
		kgo.RebalanceTimeout(rebalance),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(commitPeriod),
		kgo.OnPartitionsAssigned(k.onAssigned),
		kgo.OnPartitionsRevoked(k.onRevoked),
		kgo.OnPartitionsLost(k.onLost),
		// A topic created after the consumer started — on a new broker the
		// events topic comes with stage 1, the repartition topic with the
		// first worker that writes to it — is found by a metadata refresh:
		// within seconds, not franz-go's default five minutes of a pipeline
		// that reads nothing and says nothing.
		kgo.MetadataMaxAge(topicDiscoveryInterval),
	)
	if readCommitted {
		k.opts = append(k.opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return k, nil
}

// createTopics creates the missing topics it reads (create_topics) before
// the group client exists: it joins the group as soon as it is made.
func (k *kafkaConsumer) createTopics(ctx context.Context) error {
	if k.create == nil {
		return nil
	}
	cl, err := kgo.NewClient(k.kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	notes, err := k.create.Create(ctx, cl, k.topics)
	for _, n := range notes {
		k.log.Warnf("kafka_consumer: %s", n)
	}
	if err != nil {
		return k.conn.Failed(err)
	}
	return nil
}

// topicDiscoveryInterval is how often the consumer refreshes metadata, and
// so how soon it reads a topic created after it started.
const topicDiscoveryInterval = 5 * time.Second

func positiveDuration(conf *service.ParsedConfig, field string) (time.Duration, error) {
	d, err := conf.FieldDuration(field)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s must be positive, got %v", field, d)
	}
	return d, nil
}

// signalLocked wakes everyone waiting for a change. Call with k.mu held.
func (k *kafkaConsumer) signalLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// Connect creates the client, checks that a broker answers and starts the
// fetch loop; joining the group happens in the background.
func (k *kafkaConsumer) Connect(ctx context.Context) error {
	k.mu.Lock()
	cl, loopDone := k.cl, k.loopDone
	k.mu.Unlock()
	if cl != nil {
		select {
		case <-loopDone:
			// The fetch loop ended without Close: start over.
			_ = k.Close(ctx)
		default:
			return nil
		}
	}
	// The group callbacks may run as soon as the client exists, so the
	// state they use is ready first. k.mu is not held while franz-go runs:
	// closing a client calls onRevoked, which takes it.
	closing := make(chan struct{})
	k.mu.Lock()
	k.parts = map[kafkax.TopicPartition]*partState{}
	k.buffered = 0
	k.closing = closing
	k.mu.Unlock()
	if err := k.createTopics(ctx); err != nil {
		close(closing)
		return err
	}
	cl, err := kgo.NewClient(k.opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := k.kafka.Ping(pingCtx, cl); err != nil {
		close(closing)
		cl.Close()
		return k.conn.Failed(err)
	}
	k.conn.OK()
	loopCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	k.mu.Lock()
	k.cl, k.stop, k.loopDone = cl, stop, done
	k.mu.Unlock()
	go k.fetchLoop(loopCtx, cl, done)
	return nil
}

// fetchLoop polls Kafka and queues each partition's records as one batch. It
// stops polling while too much is buffered, which makes franz-go stop fetching.
func (k *kafkaConsumer) fetchLoop(ctx context.Context, cl *kgo.Client, done chan struct{}) {
	defer close(done)
	for {
		if !k.waitUntil(ctx, func() bool { return k.buffered < maxBufferedRecords }) {
			return
		}
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		failed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			if topic == "" {
				k.log.Errorf("Kafka consumer group: %v", err)
			} else {
				k.log.Errorf("Kafka fetch from %s/%d: %v", topic, partition, err)
			}
		})
		k.enqueue(fetches)
		if failed && fetches.NumRecords() == 0 {
			// Do not spin on a persistent error; franz-go retries inside.
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
	}
}

// waitUntil blocks until cond (evaluated with k.mu held) is true; false if ctx ends first.
func (k *kafkaConsumer) waitUntil(ctx context.Context, cond func() bool) bool {
	for {
		k.mu.Lock()
		ok := cond()
		ch := k.changed
		k.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (k *kafkaConsumer) enqueue(fetches kgo.Fetches) {
	k.mu.Lock()
	defer k.mu.Unlock()
	added := false
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		tp := kafkax.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		ps := k.parts[tp]
		if ps == nil || ps.revoking {
			// Fetched just before the partition was revoked: its next
			// owner reads these records from the last commit.
			k.log.Debugf("Dropping %d records of %s fetched before it was revoked", len(p.Records), tp)
			return
		}
		ps.queue = append(ps.queue, &pendingBatch{part: ps, records: p.Records})
		k.buffered += len(p.Records)
		added = true
	})
	if added {
		k.signalLocked()
	}
}

// Close stops fetching, commits everything acknowledged (Benthos has waited
// for pending acknowledgements before calling Close) and leaves the group, so
// the partitions move to the other members at once.
func (k *kafkaConsumer) Close(ctx context.Context) error {
	k.mu.Lock()
	cl, stop, loopDone, closing := k.cl, k.stop, k.loopDone, k.closing
	k.mu.Unlock()
	if cl == nil {
		return nil
	}
	stop()
	select {
	case <-loopDone:
	case <-ctx.Done():
	}
	close(closing)
	commitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := cl.CommitMarkedOffsets(commitCtx)
	cl.Close() // leaves the group; onRevoked releases the partitions
	k.mu.Lock()
	k.cl = nil
	k.mu.Unlock()
	if err != nil {
		return fmt.Errorf("committing offsets: %w", err)
	}
	return nil
}
