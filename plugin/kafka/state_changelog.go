package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A state changelog keeps the detection state of each partition of a source
// topic in a compacted Kafka topic, Kafka Streams' model: the state of source
// partition p lives in changelog partition p, so whichever worker owns p
// restores it from there.
//
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

// Field names of a changelog block.
const (
	clFieldTopic      = "topic"
	clFieldTxnPrefix  = "transactional_id_prefix"
	clFieldTxnTimeout = "transaction_timeout"
	clFieldTimeout    = "timeout"
)

// ChangelogFields are the fields of a state changelog configuration block.
func ChangelogFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(kpFieldSeedBrokers).
			Description("Kafka brokers to connect to (`host:port`); entries may hold several comma-separated addresses.").
			Example([]string{"localhost:9092"}),
		service.NewStringField(clFieldTopic).
			Description("The compacted changelog topic. Created when missing, with as many partitions as the source topic; an existing one must have at least as many.").
			Default("oktadetect.state"),
		service.NewStringField(clFieldTxnPrefix).
			Description("Prefix of the transactional ids, one per source partition (`<prefix>-<topic>-<partition>`). Workers of one group must share it; separate deployments writing the same changelog must not.").
			Default("oktadetect-state"),
		service.NewStringField(kpFieldClientID).
			Description("The client id sent to Kafka.").
			Default("oktadetect").
			Advanced(),
		service.NewDurationField(clFieldTxnTimeout).
			Description("How long Kafka waits for a transaction of a crashed worker before aborting it.").
			Default("30s").
			Advanced(),
		service.NewDurationField(clFieldTimeout).
			Description("How long restoring one partition's state, or committing one batch's changes, may take before it is tried again.").
			Default("60s").
			Advanced(),
		service.NewTLSToggledField(kpFieldTLS).
			Description("TLS for broker connections."),
		saslField(),
	}
}

// ErrChangelogFenced means another worker has taken the partition's state
// over since this writer opened it.
var ErrChangelogFenced = errors.New("another worker took this partition's state over")

// ChangelogRecord is one state entry; a nil Value deletes the key.
type ChangelogRecord struct {
	Key, Value []byte
}

// Changelog opens the state of source partitions. Construction does no I/O.
type Changelog struct {
	opts       []kgo.Opt
	topic      string
	prefix     string
	txnTimeout time.Duration
	timeout    time.Duration

	mu         sync.Mutex
	partitions int32 // of the changelog topic, once known
	log        *service.Logger
	conn       *connWatch
	hints      connHints
}

// SetLogger makes the changelog log what an operator must see: a connection
// failure's cause (once per change) and a changelog topic it had to make
// compacted. Without it these only reach the errors Open returns.
func (c *Changelog) SetLogger(l *service.Logger) {
	c.log = l
	c.conn = newConnWatch(l, "the state changelog")
}

// NewChangelog validates a changelog block.
func NewChangelog(conf *service.ParsedConfig) (*Changelog, error) {
	c := &Changelog{conn: newConnWatch(nil, "the state changelog")}
	var err error
	if c.opts, err = connectionOpts(conf); err != nil {
		return nil, err
	}
	c.hints = connHintsOf(conf)
	if c.topic, err = conf.FieldString(clFieldTopic); err != nil {
		return nil, err
	}
	if c.topic = strings.TrimSpace(c.topic); c.topic == "" {
		return nil, fmt.Errorf("%s must not be empty", clFieldTopic)
	}
	if c.prefix, err = conf.FieldString(clFieldTxnPrefix); err != nil {
		return nil, err
	}
	if c.prefix = strings.TrimSpace(c.prefix); c.prefix == "" {
		return nil, fmt.Errorf("%s must not be empty", clFieldTxnPrefix)
	}
	if c.txnTimeout, err = conf.FieldDuration(clFieldTxnTimeout); err != nil {
		return nil, err
	}
	if c.txnTimeout < time.Second {
		return nil, fmt.Errorf("%s must be at least 1s, got %v", clFieldTxnTimeout, c.txnTimeout)
	}
	if c.timeout, err = positiveDuration(conf, clFieldTimeout); err != nil {
		return nil, err
	}
	return c, nil
}

// Topic is the changelog topic's name.
func (c *Changelog) Topic() string { return c.topic }

// Open takes the state of one source partition over: it fences any earlier
// writer of it (aborting what that one left uncommitted) and returns the
// committed entries, latest per key with deletions applied, and a writer.
func (c *Changelog) Open(ctx context.Context, source string, partition int32) (*ChangelogWriter, map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.ensureTopic(ctx, source, partition); err != nil {
		return nil, nil, err
	}
	w, err := c.newWriter(source, partition)
	if err != nil {
		return nil, nil, err
	}
	if err := w.takeOver(ctx); err != nil {
		w.Close()
		return nil, nil, err
	}
	entries := map[string][]byte{}
	err = readCommitted(ctx, c.opts, c.topic, []int32{partition}, func(r *kgo.Record) {
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
func (c *Changelog) ensureTopic(ctx context.Context, source string, partition int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if partition < c.partitions {
		return nil
	}
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	if err := pingBrokers(ctx, cl, c.hints); err != nil {
		_ = c.conn.failed(err)
		return err
	}
	c.conn.ok()
	want, err := topicPartitions(ctx, cl, source)
	if err != nil {
		return err
	}
	warn := func(msg string) {
		if c.log != nil {
			c.log.Warn(msg)
		}
	}
	if err := ensureCompactedTopic(ctx, cl, c.topic, max(want, partition+1), warn); err != nil {
		return err
	}
	have, err := topicPartitions(ctx, cl, c.topic)
	if err != nil {
		return err
	}
	if partition >= have {
		return fmt.Errorf("changelog topic %q has %d partitions but %s has partition %d: give the changelog at least as many partitions as %s", c.topic, have, source, partition, source)
	}
	c.partitions = have
	return nil
}

// topicPartitions returns how many partitions topic has (0 if it does not exist).
func topicPartitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("reading metadata of topic %q: %w", topic, explainConnErr(err))
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return 0, nil
			}
			return 0, fmt.Errorf("metadata of topic %q: %w", topic, err)
		}
		return int32(len(rt.Partitions)), nil
	}
	return 0, nil
}

// ownerKey is the entry a new owner commits to take a partition over.
const ownerKey = "\x00owner"

// ChangelogWriter commits the state changes of one source partition.
type ChangelogWriter struct {
	cl        *kgo.Client
	topic     string
	partition int32
	keyPrefix string
}

func (c *Changelog) newWriter(source string, partition int32) (*ChangelogWriter, error) {
	id := c.prefix + "-" + source + "-" + strconv.Itoa(int(partition))
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), c.opts...),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(c.txnTimeout),
		kgo.DefaultProduceTopic(c.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return &ChangelogWriter{cl: cl, topic: c.topic, partition: partition, keyPrefix: source + "\x00"}, nil
}

// takeOver commits a first transaction: initialising the producer fences the
// previous owner and settles its open transaction, so the read that follows
// sees everything that owner will ever commit.
func (w *ChangelogWriter) takeOver(ctx context.Context) error {
	host, _ := os.Hostname()
	owner, _ := json.Marshal(map[string]any{"host": host, "pid": os.Getpid(), "at": time.Now().UTC()})
	if err := w.Commit(ctx, []ChangelogRecord{{Key: []byte(ownerKey), Value: owner}}); err != nil {
		return fmt.Errorf("taking over changelog partition %d: %w", w.partition, err)
	}
	return nil
}

// Commit writes the records as one transaction. On any error nothing of them
// is committed or its outcome is unknown: close the writer and Open again,
// which restores the state as committed. A fenced writer's error wraps
// ErrChangelogFenced.
func (w *ChangelogWriter) Commit(ctx context.Context, recs []ChangelogRecord) error {
	if err := w.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning changelog transaction: %w", err)
	}
	krecs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krecs[i] = &kgo.Record{Key: []byte(w.keyPrefix + string(r.Key)), Value: r.Value, Partition: w.partition}
	}
	err := w.cl.ProduceSync(ctx, krecs...).FirstErr()
	if err == nil {
		err = w.cl.EndTransaction(ctx, kgo.TryCommit)
		if err == nil {
			return nil
		}
	} else {
		_ = w.cl.AbortBufferedRecords(ctx)
		_ = w.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	if isFenced(err) {
		return fmt.Errorf("writing changelog partition %d: %w: %w", w.partition, ErrChangelogFenced, err)
	}
	return fmt.Errorf("writing changelog partition %d: %w", w.partition, err)
}

// Close releases the writer's client. An open transaction is aborted by
// Kafka after transaction_timeout, or at once when the partition is opened
// again.
func (w *ChangelogWriter) Close() { w.cl.Close() }
