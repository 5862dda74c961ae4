package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const txnYAML = `
topic: t
key: ${! meta("k") }
transactional_id: test-txn
checkpoint_topic: cp
metadata:
  include_prefixes: [ "okta_" ]
`

// pageBatch is a batch like okta_system_log's: the last message carries the
// cursor and its key.
func pageBatch(cursor string, bodies ...string) service.MessageBatch {
	b := msgBatch(bodies...)
	for i, m := range b {
		m.MetaSetMut("k", bodies[i])
		m.MetaSetMut("okta_uuid", bodies[i])
	}
	last := b[len(b)-1]
	last.MetaSetMut("okta_cursor", cursor)
	last.MetaSetMut("okta_cursor_key", "okta-cursor-org")
	return b
}

func newCheckpointCache(t *testing.T, c *kfake.Cluster) *kafkaCheckpointCache {
	t.Helper()
	conf, err := kafkaCheckpointSpec().ParseYAML("seed_brokers: ["+strings.Join(c.ListenAddrs(), ",")+"]\ntopic: cp\ntimeout: 10s\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := newKafkaCheckpointCache(conf)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

func getCheckpoint(t *testing.T, cc *kafkaCheckpointCache) string {
	t.Helper()
	v, err := cc.Get(context.Background(), "okta-cursor-org")
	if errors.Is(err, service.ErrKeyNotFound) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// readAll waits until n records of topic are committed, then reads every
// committed record up to the last stable offsets: exactly n, never more.
func readAll(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	consume(t, c, topic, n, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	all := testkit.CommittedRecords(t, c.ListenAddrs(), topic)
	if len(all) != n {
		t.Fatalf("%s: %d records committed, want %d", topic, len(all), n)
	}
	return all
}

func TestTransactionCommitsRecordsWithCheckpoint(t *testing.T) {
	c := newCluster(t)
	k := newProducer(t, c, txnYAML)
	cc := newCheckpointCache(t, c)
	if got := getCheckpoint(t, cc); got != "<none>" {
		t.Fatalf("checkpoint before any write: %q", got)
	}
	if err := write(t, k, pageBatch(`{"next":"p2"}`, "a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	if err := write(t, k, pageBatch(`{"next":"p3"}`, "d")); err != nil {
		t.Fatal(err)
	}
	if got := getCheckpoint(t, cc); got != `{"next":"p3"}` {
		t.Fatalf("checkpoint %q, want the last page's", got)
	}
	recs := readAll(t, c, "t", 4)
	for _, r := range recs {
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, "okta_cursor") {
				t.Errorf("the cursor is forwarded as header %s", h.Key)
			}
		}
	}
	cps := readAll(t, c, "cp", 2)
	if string(cps[0].Key) != "okta-cursor-org" {
		t.Errorf("checkpoint key %q", cps[0].Key)
	}
	if set := cc.Set(context.Background(), "okta-cursor-org", []byte("x"), nil); set != nil {
		t.Errorf("Set: %v", set)
	}
	if got := getCheckpoint(t, cc); got != `{"next":"p3"}` {
		t.Errorf("Set changed the checkpoint to %q; it must be a no-op", got)
	}
}

// The cache returns what read_committed consumers see: not an aborted
// checkpoint, not one of a transaction still open.
func TestCheckpointCacheReadsCommittedOnly(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "cp"))
	cc := newCheckpointCache(t, c)
	txn := func(id, value string, end func(*kgo.Client)) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Topic: "cp", Key: []byte("okta-cursor-org"), Value: []byte(value)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// A fresh client's first commit can otherwise turn into an abort.
		if err := kafkax.AwaitProducedPartitions(context.Background(), cl, r); err != nil {
			t.Fatal(err)
		}
		end(cl)
	}
	txn("a", "committed", func(cl *kgo.Client) {
		if err := cl.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	})
	txn("a", "aborted", func(cl *kgo.Client) {
		if err := cl.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	})
	var open *kgo.Client
	txn("b", "open", func(cl *kgo.Client) { open = cl })
	defer open.Close()
	if got := getCheckpoint(t, cc); got != "committed" {
		t.Fatalf("checkpoint %q, want the committed one", got)
	}
}

// A producer restarted with the same transactional_id aborts the transaction
// its predecessor left open, and the predecessor is fenced: it can no longer
// commit anything.
func TestRestartedProducerFencesPredecessor(t *testing.T) {
	c := newCluster(t)
	old := newProducer(t, c, txnYAML)
	cl := old.getClient()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The old producer "crashes" with its transaction open; a new one starts.
	fresh := newProducer(t, c, txnYAML)
	if err := write(t, fresh, pageBatch(`{"next":"p2"}`, "a")); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, c, "t", 1)
	if string(recs[0].Value) != "a" {
		t.Fatalf("committed %q, want only the new producer's record", recs[0].Value)
	}
	// The zombie wakes up and writes its next batch: Kafka tells it it was
	// fenced, and it stops rather than fence its successor in turn. Its write
	// waits (nothing may be acknowledged) until shutdown, then names why.
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- old.WriteBatch(ctx, pageBatch(`{"next":"zombie"}`, "z")) }()
	testkit.Until(t, "the zombie to learn it was fenced", func() (bool, string) {
		return old.txn.fenced.Load(), "not fenced yet"
	})
	cancel()
	err := <-result
	if err == nil {
		t.Fatal("the fenced output wrote a batch")
	}
	if !strings.Contains(err.Error(), "took over") {
		t.Errorf("the zombie's error does not say it was fenced: %v", err)
	}
	if got := getCheckpoint(t, newCheckpointCache(t, c)); got != `{"next":"p2"}` {
		t.Fatalf("checkpoint %q after the zombie's attempt", got)
	}
	// The successor was not fenced back.
	if err := write(t, fresh, pageBatch(`{"next":"p3"}`, "b")); err != nil {
		t.Fatal(err)
	}
	readAll(t, c, "t", 2)
}

// Kafka refuses the commit (the connection drops during EndTxn): the output
// aborts, checks whether the commit landed, and writes the batch again in a
// new transaction; read_committed consumers see it once.
func TestFailedCommitRetriedOnce(t *testing.T) {
	c := newCluster(t)
	var failures atomic.Int32
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if r := req.(*kmsg.EndTxnRequest); r.Commit && failures.Add(1) <= 2 {
			return nil, fmt.Errorf("connection dropped"), true
		}
		return nil, nil, false
	})
	k := newProducer(t, c, txnYAML)
	if err := write(t, k, pageBatch(`{"next":"p2"}`, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if failures.Load() < 2 {
		t.Fatalf("only %d commits were refused", failures.Load())
	}
	readAll(t, c, "t", 2)
	if got := getCheckpoint(t, newCheckpointCache(t, c)); got != `{"next":"p2"}` {
		t.Fatalf("checkpoint %q", got)
	}
}

// Kafka is unreachable for produce requests for a while: WriteBatch does not
// nack (which would reorder pages) but retries until Kafka is back.
func TestTransactionWaitsOutAnOutage(t *testing.T) {
	c := newCluster(t)
	var down atomic.Bool
	down.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if down.Load() {
			return nil, errors.New("broker unavailable"), true
		}
		return nil, nil, false
	})
	k := newProducer(t, c, txnYAML+"timeout: 500ms\n")
	time.AfterFunc(3*time.Second, func() { down.Store(false) })
	start := time.Now()
	if err := write(t, k, pageBatch(`{"next":"p2"}`, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 2*time.Second {
		t.Fatalf("wrote during the outage?")
	}
	readAll(t, c, "t", 2)
}

func TestTransactionalConfigErrors(t *testing.T) {
	for name, yaml := range map[string]string{
		"batching":       "seed_brokers: [x]\ntopic: t\ntransactional_id: a\nbatching:\n  count: 10\n",
		"not idempotent": "seed_brokers: [x]\ntopic: t\ntransactional_id: a\nidempotent_write: false\n",
		"no topic":       "seed_brokers: [x]\ntopic: t\ntransactional_id: a\ncheckpoint_topic: \"\"\n",
	} {
		if _, err := parseProducer(yaml); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	k, err := parseProducer("seed_brokers: [x]\ntopic: t\ntransactional_id: a\nmax_in_flight: 8\n")
	if err != nil {
		t.Fatal(err)
	}
	if k.maxInFlight != 1 {
		t.Errorf("max_in_flight %d in exactly-once mode, want 1", k.maxInFlight)
	}
}
