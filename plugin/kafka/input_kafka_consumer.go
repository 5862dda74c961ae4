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

	"github.com/oktadetect/oktadetect/internal/meta"
)

const (
	kcoFieldTopics             = "topics"
	kcoFieldConsumerGroup      = "consumer_group"
	kcoFieldStartOffset        = "start_offset"
	kcoFieldReadCommitted      = "read_committed"
	kcoFieldCommitPeriod       = "commit_period"
	kcoFieldMaxInFlight        = "max_in_flight_per_partition"
	kcoFieldFetchPartitionSize = "fetch_max_partition_bytes"
	kcoFieldSessionTimeout     = "session_timeout"
	kcoFieldRebalanceTimeout   = "rebalance_timeout"
	kcoFieldDrainTimeout       = "rebalance_drain_timeout"
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
			service.NewStringListField(kpFieldSeedBrokers).
				Description("Kafka brokers to bootstrap from. Entries may hold several comma-separated addresses.").
				Example([]string{"localhost:9092"}).
				Example([]string{"kafka-1:9092,kafka-2:9092"}),
			service.NewStringListField(kcoFieldTopics).
				Description("The topics to consume. Entries may hold several comma-separated topics.").
				Example([]string{"okta.system_log"}),
			service.NewStringField(kcoFieldConsumerGroup).
				Description("The consumer group. Every pipeline with the same group shares the topics' partitions; committed offsets belong to the group.").
				Example("oktadetect-detect"),
			service.NewStringField(kpFieldClientID).
				Description("The client ID sent to Kafka, visible in broker logs and quotas.").
				Default("oktadetect"),
			service.NewStringEnumField(kcoFieldStartOffset, "earliest", "latest").
				Description("Where to start in a partition the group has no committed offset for (or whose committed offset is out of range): `earliest` reads what the topic retains, `latest` only records produced from now on.").
				Default("earliest"),
			service.NewBoolField(kcoFieldReadCommitted).
				Description("Read only records of committed transactions (`read_committed` isolation), so records of aborted or still open transactions written by a transactional `kafka_producer` are never seen. Set to false for `read_uncommitted`.").
				Default(true),
			service.NewDurationField(kcoFieldCommitPeriod).
				Description("How often acknowledged offsets are committed. Shorter means fewer records processed twice after a crash, at the cost of more commit requests.").
				Default("5s"),
			service.NewIntField(kcoFieldMaxInFlight).
				Description("How many batches of one partition may be in the pipeline at once. 1 keeps the records of a partition (and of a key) in offset order through the pipeline; more can raise throughput with few partitions, but batches of a partition may then be processed out of order.").
				Default(1).
				Advanced(),
			service.NewIntField(kcoFieldFetchPartitionSize).
				Description("The most bytes fetched from one partition in one request, which bounds a batch's size (a single larger record is still fetched whole).").
				Default(1048576).
				Advanced(),
			service.NewDurationField(kcoFieldSessionTimeout).
				Description("How long the group waits for a silent member before giving its partitions to the others: how quickly a crashed worker's partitions move. Heartbeats are sent every third of it (at most every 3s). The broker bounds it (`group.min.session.timeout.ms`, 6s by default).").
				Default("45s").
				Advanced(),
			service.NewDurationField(kcoFieldRebalanceTimeout).
				Description("How long the group waits for every member to rejoin during a rebalance, which includes this member's drain of revoked partitions.").
				Default("60s").
				Advanced(),
			service.NewDurationField(kcoFieldDrainTimeout).
				Description("On a rebalance, how long to wait for the in-flight batches of revoked partitions to be acknowledged before committing and releasing the partitions. Must be shorter than `rebalance_timeout`. 0 releases them at once (their in-flight records are then processed again by the new owner).").
				Default("10s").
				Advanced(),
			service.NewTLSToggledField(kpFieldTLS).
				Description("TLS for broker connections: a custom CA (`root_cas`/`root_cas_file`) and client certificates (`client_certs`) for mutual TLS. `skip_cert_verify` disables server verification and is for tests only."),
			saslField(),
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

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.partition) }

// partState is what this member tracks of one partition it owns. A new
// assignment of the same partition gets a new partState; acks that arrive for
// an old one (gone) are ignored, since the partition's next owner reads those
// records again from the last commit.
type partState struct {
	tp       topicPartition
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
	conn         *connWatch
	hints        connHints
	mNacks       *service.MetricCounter
	mRevoked     *service.MetricCounter
	opts         []kgo.Opt
	maxInFlight  int
	drainTimeout time.Duration

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change of the state below
	cl       *kgo.Client
	parts    map[topicPartition]*partState
	buffered int // records fetched and never handed out yet
	stop     context.CancelFunc
	loopDone chan struct{}
	closing  chan struct{} // closed by Close: drains stop waiting
}

func newKafkaConsumer(conf *service.ParsedConfig, mgr *service.Resources) (*kafkaConsumer, error) {
	k := &kafkaConsumer{
		log:      mgr.Logger(),
		conn:     newConnWatch(mgr.Logger(), "kafka_consumer"),
		mNacks:   mgr.Metrics().NewCounter("kafka_consumer_nacked_batches_total"),
		mRevoked: mgr.Metrics().NewCounter("kafka_consumer_revoked_partitions_total"),
		changed:  make(chan struct{}),
	}
	// Series exist from the start, so increase() and alerts see the first
	// nack or revocation (Benthos creates a series at its first Incr).
	k.mNacks.Incr(0)
	k.mRevoked.Incr(0)
	conn, err := connectionOpts(conf)
	k.hints = connHintsOf(conf)
	if err != nil {
		return nil, err
	}
	topics, err := splitList(conf, kcoFieldTopics)
	if err != nil {
		return nil, err
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%s must list at least one topic", kcoFieldTopics)
	}
	group, err := conf.FieldString(kcoFieldConsumerGroup)
	if err != nil {
		return nil, err
	}
	if group = strings.TrimSpace(group); group == "" {
		return nil, fmt.Errorf("%s is empty", kcoFieldConsumerGroup)
	}
	startName, err := conf.FieldString(kcoFieldStartOffset)
	if err != nil {
		return nil, err
	}
	start := kgo.NewOffset().AtStart()
	switch startName {
	case "earliest":
	case "latest":
		start = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("unknown %s %q", kcoFieldStartOffset, startName)
	}
	readCommitted, err := conf.FieldBool(kcoFieldReadCommitted)
	if err != nil {
		return nil, err
	}
	commitPeriod, err := positiveDuration(conf, kcoFieldCommitPeriod)
	if err != nil {
		return nil, err
	}
	if k.maxInFlight, err = conf.FieldInt(kcoFieldMaxInFlight); err != nil {
		return nil, err
	}
	if k.maxInFlight < 1 {
		return nil, fmt.Errorf("%s must be at least 1, got %d", kcoFieldMaxInFlight, k.maxInFlight)
	}
	fetchBytes, err := conf.FieldInt(kcoFieldFetchPartitionSize)
	if err != nil {
		return nil, err
	}
	if fetchBytes < 1 || fetchBytes > 1<<30 {
		return nil, fmt.Errorf("%s must be between 1 and 1073741824, got %d", kcoFieldFetchPartitionSize, fetchBytes)
	}
	session, err := positiveDuration(conf, kcoFieldSessionTimeout)
	if err != nil {
		return nil, err
	}
	rebalance, err := positiveDuration(conf, kcoFieldRebalanceTimeout)
	if err != nil {
		return nil, err
	}
	if k.drainTimeout, err = conf.FieldDuration(kcoFieldDrainTimeout); err != nil {
		return nil, err
	}
	if k.drainTimeout < 0 || k.drainTimeout >= rebalance {
		return nil, fmt.Errorf("%s (%v) must be at least 0 and shorter than %s (%v)", kcoFieldDrainTimeout, k.drainTimeout, kcoFieldRebalanceTimeout, rebalance)
	}

	k.opts = append(conn,
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
	)
	if readCommitted {
		k.opts = append(k.opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return k, nil
}

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
	k.parts = map[topicPartition]*partState{}
	k.buffered = 0
	k.closing = closing
	k.mu.Unlock()
	cl, err := kgo.NewClient(k.opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pingBrokers(pingCtx, cl, k.hints); err != nil {
		close(closing)
		cl.Close()
		return k.conn.failed(err)
	}
	k.conn.ok()
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
		tp := topicPartition{p.Topic, p.Partition}
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

// ReadBatch hands out the next batch of a partition that may have one in
// flight, waiting for records or acknowledgements as needed.
func (k *kafkaConsumer) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	for {
		k.mu.Lock()
		if k.cl == nil {
			k.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		}
		select {
		case <-k.loopDone:
			k.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		default:
		}
		b, wait := k.nextLocked(time.Now())
		ch := k.changed
		k.mu.Unlock()
		if b != nil {
			msgs, ack := k.deliver(b)
			return msgs, ack, nil
		}
		if err := waitChange(ctx, ch, wait); err != nil {
			return nil, nil, err
		}
	}
}

// waitChange waits for ch to close, or for wait when it is positive.
func waitChange(ctx context.Context, ch <-chan struct{}, wait time.Duration) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ch:
	case <-timer:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// nextLocked takes the next deliverable batch, or says how long until a
// backed-off retry becomes deliverable (0: wait for a change).
func (k *kafkaConsumer) nextLocked(now time.Time) (*pendingBatch, time.Duration) {
	var wait time.Duration
	for _, ps := range k.parts { // map order: no partition is favoured
		if ps.revoking || len(ps.queue) == 0 || ps.active >= k.maxInFlight {
			continue
		}
		b := ps.queue[0]
		if d := b.notBefore.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		ps.queue = ps.queue[1:]
		ps.active++
		if !b.emitted {
			b.emitted = true
			ps.out = append(ps.out, b)
			k.buffered -= len(b.records)
			k.signalLocked() // room in the buffer
		}
		return b, 0
	}
	return nil, wait
}

// deliver turns a batch into messages and its ack function.
func (k *kafkaConsumer) deliver(b *pendingBatch) (service.MessageBatch, service.AckFunc) {
	idx := b.redeliver
	if idx == nil {
		idx = make([]int, len(b.records))
		for i := range idx {
			idx[i] = i
		}
	}
	msgs := make(service.MessageBatch, len(idx))
	for i, ri := range idx {
		msgs[i] = recordMessage(b.records[ri])
	}
	indexer := msgs.Index()
	var once sync.Once
	return msgs, func(_ context.Context, err error) error {
		once.Do(func() { k.ack(b, idx, indexer, err) })
		return nil
	}
}

func recordMessage(r *kgo.Record) *service.Message {
	m := service.NewMessage(r.Value)
	for _, h := range r.Headers {
		m.MetaSetMut(h.Key, string(h.Value))
	}
	m.MetaSetMut(meta.KafkaKey, string(r.Key))
	m.MetaSetMut(meta.KafkaTopic, r.Topic)
	m.MetaSetMut(meta.KafkaPartition, int64(r.Partition))
	m.MetaSetMut(meta.KafkaOffset, r.Offset)
	m.MetaSetMut(meta.KafkaTimestampUnix, r.Timestamp.Unix())
	return m
}

// ack settles a delivered batch: on success the partition's acknowledged
// prefix is marked for commit; on failure the batch (or only its failed
// messages) goes back to the front of its partition's queue.
func (k *kafkaConsumer) ack(b *pendingBatch, idx []int, indexer *service.Indexer, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ps := b.part
	ps.active--
	defer k.signalLocked()
	if ps.gone {
		return
	}
	if err != nil {
		k.mNacks.Incr(1)
		if ps.revoking {
			return // stays uncommitted: the partition's next owner reads it again
		}
		b.redeliver = failedRecords(idx, indexer, err)
		b.attempts++
		b.notBefore = time.Now().Add(retryBackoff(b.attempts))
		ps.queue = append([]*pendingBatch{b}, ps.queue...)
		k.log.Warnf("%d records of %s (offsets %d-%d) failed downstream, delivering them again (attempt %d): %v",
			len(b.redeliver), ps.tp, b.records[0].Offset, b.records[len(b.records)-1].Offset, b.attempts+1, err)
		return
	}
	b.done = true
	var last *kgo.Record
	for len(ps.out) > 0 && ps.out[0].done {
		last = ps.out[0].records[len(ps.out[0].records)-1]
		ps.out[0] = nil
		ps.out = ps.out[1:]
	}
	if last != nil && k.cl != nil {
		k.cl.MarkCommitRecords(last)
	}
}

// failedRecords returns the record indexes to deliver again: those of the
// messages a batch error names, or all of idx.
func failedRecords(idx []int, indexer *service.Indexer, err error) []int {
	var bErr *service.BatchError
	if !errors.As(err, &bErr) || bErr.IndexedErrors() == 0 {
		return idx
	}
	failed := map[int]bool{}
	bErr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, mErr error) bool {
		if mErr != nil {
			failed[i] = true
		}
		return true
	})
	if len(failed) == 0 {
		return idx
	}
	out := make([]int, 0, len(failed))
	for i, ri := range idx {
		if failed[i] || failed[-1] {
			out = append(out, ri)
		}
	}
	return out
}

func retryBackoff(attempts int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempts && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

func (k *kafkaConsumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for topic, partitions := range assigned {
		for _, p := range partitions {
			tp := topicPartition{topic, p}
			if ps := k.parts[tp]; ps != nil && !ps.revoking {
				continue
			}
			k.parts[tp] = &partState{tp: tp}
			n++
		}
	}
	if n > 0 {
		k.log.Infof("Assigned %d partitions: %v", n, assigned)
	}
	k.signalLocked()
}

// onRevoked stops handing out the revoked partitions, waits (bounded by
// rebalance_drain_timeout) for their in-flight batches, commits what was
// acknowledged and releases them. franz-go has already dropped its buffered
// fetches of these partitions.
func (k *kafkaConsumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	draining := k.beginRelease(revoked)
	if len(draining) == 0 {
		return
	}
	k.mRevoked.Incr(int64(len(draining)))
	k.mu.Lock()
	closing := k.closing
	k.mu.Unlock()
	drainCtx, cancel := context.WithTimeout(ctx, k.drainTimeout)
	defer cancel()
	go func() {
		select {
		case <-closing:
			cancel()
		case <-drainCtx.Done():
		}
	}()
	k.waitUntil(drainCtx, func() bool {
		for _, ps := range draining {
			if ps.active > 0 {
				return false
			}
		}
		return true
	})
	inFlight := k.finishRelease(draining)
	if inFlight > 0 {
		k.log.Warnf("%d batches of revoked partitions were still in the pipeline after %s; their records will be processed again by the partitions' new owner", inFlight, kcoFieldDrainTimeout)
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		k.log.Errorf("Committing offsets of revoked partitions: %v", err)
	}
	k.log.Infof("Released %d partitions: %v", len(draining), revoked)
}

// onLost releases partitions taken away without a chance to commit (the
// session expired): their next owner resumes from the last commit.
func (k *kafkaConsumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	draining := k.beginRelease(lost)
	k.finishRelease(draining)
	if len(draining) > 0 {
		k.mRevoked.Incr(int64(len(draining)))
		k.log.Warnf("Lost %d partitions without committing (group session expired): %v", len(draining), lost)
	}
}

func (k *kafkaConsumer) beginRelease(partitions map[string][]int32) []*partState {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*partState
	for topic, ps := range partitions {
		for _, p := range ps {
			st := k.parts[topicPartition{topic, p}]
			if st == nil || st.revoking {
				continue
			}
			st.revoking = true
			for _, b := range st.queue {
				if !b.emitted {
					k.buffered -= len(b.records)
				}
			}
			st.queue = nil
			out = append(out, st)
		}
	}
	k.signalLocked()
	return out
}

// finishRelease forgets the partitions; it returns how many of their batches
// were still in flight.
func (k *kafkaConsumer) finishRelease(draining []*partState) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	inFlight := 0
	for _, ps := range draining {
		inFlight += ps.active
		ps.gone = true
		ps.out = nil
		if k.parts[ps.tp] == ps {
			delete(k.parts, ps.tp)
		}
	}
	k.signalLocked()
	return inFlight
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
