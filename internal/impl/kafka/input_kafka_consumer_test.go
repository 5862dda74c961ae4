package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

func parseConsumer(yaml string) (*kafkaConsumer, error) {
	conf, err := kafkaConsumerSpec().ParseYAML(yaml, nil)
	if err != nil {
		return nil, err
	}
	return newKafkaConsumer(conf, service.MockResources())
}

// newConsumer builds and connects the input on topic "t" of the cluster.
func newConsumer(t testing.TB, c *kfake.Cluster, group, extra string) *kafkaConsumer {
	t.Helper()
	k, err := parseConsumer(fmt.Sprintf("seed_brokers: [%s]\ntopics: [t]\nconsumer_group: %s\ncommit_period: 100ms\n%s",
		strings.Join(c.ListenAddrs(), ","), group, extra))
	if err != nil {
		t.Fatalf("building input: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Connect(ctx); err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = k.Close(context.Background()) })
	return k
}

// produceTo writes records synchronously.
func produceTo(t testing.TB, c *kfake.Cluster, rs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

func recordsOn(partition int32, values ...string) []*kgo.Record {
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Topic: "t", Partition: partition, Key: []byte("k-" + v), Value: []byte(v)}
	}
	return rs
}

func read(t testing.TB, k *kafkaConsumer) (service.MessageBatch, service.AckFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	b, ack, err := k.ReadBatch(ctx)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return b, ack
}

// readNone checks that nothing is delivered for a while.
func readNone(t testing.TB, k *kafkaConsumer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if b, _, err := k.ReadBatch(ctx); err == nil {
		t.Fatalf("read %s, want nothing", bodies(b))
	}
}

func bodies(b service.MessageBatch) string {
	var s []string
	for _, m := range b {
		v, _ := m.AsBytes()
		s = append(s, string(v))
	}
	return strings.Join(s, ",")
}

func committed(t testing.TB, c *kfake.Cluster, group string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetching offsets: %v", err)
		}
		offs.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	})
	return out
}

// waitCommitted polls until partition p of group is committed at want.
func waitCommitted(t testing.TB, c *kfake.Cluster, group string, p int32, want int64) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("partition %d of %s committed at %d", p, group, want), func() (bool, string) {
		got, ok := committed(t, c, group)[p]
		return ok && got == want, fmt.Sprintf("committed at %d (present %v)", got, ok)
	})
}

func TestConsumerConfigValidation(t *testing.T) {
	base := "seed_brokers: [localhost:9092]\n"
	for name, tc := range map[string]struct {
		yaml, err string
	}{
		"no topics":         {base + "topics: []\nconsumer_group: g\n", "at least one topic"},
		"blank topics":      {base + "topics: [' , ']\nconsumer_group: g\n", "at least one topic"},
		"empty group":       {base + "topics: [t]\nconsumer_group: ' '\n", "consumer_group is empty"},
		"no brokers":        {"seed_brokers: ['']\ntopics: [t]\nconsumer_group: g\n", "at least one broker"},
		"in flight 0":       {base + "topics: [t]\nconsumer_group: g\nmax_in_flight_per_partition: 0\n", "at least 1"},
		"commit period 0":   {base + "topics: [t]\nconsumer_group: g\ncommit_period: 0s\n", "commit_period must be positive"},
		"drain too long":    {base + "topics: [t]\nconsumer_group: g\nrebalance_drain_timeout: 60s\n", "shorter than rebalance_timeout"},
		"bad start offset":  {base + "topics: [t]\nconsumer_group: g\nstart_offset: middle\n", "middle"},
		"sasl without user": {base + "topics: [t]\nconsumer_group: g\nsasl: [{mechanism: PLAIN}]\n", "username is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseConsumer(tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
	k, err := parseConsumer("seed_brokers: ['a:1,b:2']\ntopics: ['x, y']\nconsumer_group: g\nstart_offset: latest\nread_committed: false\nsasl: [{mechanism: none}]\n")
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if k.maxInFlight != 1 || k.drainTimeout != 10*time.Second {
		t.Errorf("defaults: max in flight %d, drain %v", k.maxInFlight, k.drainTimeout)
	}
}

// The constructor does no I/O: an unreachable broker only fails Connect.
func TestConsumerConnectFailsWithoutBrokers(t *testing.T) {
	k, err := parseConsumer("seed_brokers: ['127.0.0.1:1']\ntopics: [t]\nconsumer_group: g\n")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := k.Connect(ctx); err == nil {
		_ = k.Close(context.Background())
		t.Fatal("connected to nothing")
	}
	if _, _, err := k.ReadBatch(ctx); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("ReadBatch before a connection: %v", err)
	}
}

func TestConsumerMetadata(t *testing.T) {
	c := newCluster(t)
	ts := time.Unix(1700000000, 0)
	produceTo(t, c, &kgo.Record{
		Topic: "t", Partition: 2, Key: []byte("alice@example.com"), Value: []byte(`{"uuid":"u1"}`), Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: "okta_org", Value: []byte("acme.okta.com")}, {Key: "okta_uuid", Value: []byte("u1")}, {Key: "kafka_topic", Value: []byte("spoofed")}},
	})
	k := newConsumer(t, c, "g-meta", "")
	b, ack := read(t, k)
	if len(b) != 1 {
		t.Fatalf("batch of %d", len(b))
	}
	m := b[0]
	want := map[string]string{
		"kafka_key": "alice@example.com", "kafka_topic": "t", "kafka_partition": "2", "kafka_offset": "0",
		"kafka_timestamp_unix": "1700000000", "okta_org": "acme.okta.com", "okta_uuid": "u1",
	}
	for key, v := range want {
		if got, ok := m.MetaGet(key); !ok || got != v {
			t.Errorf("meta %s = %q (%v), want %q", key, got, ok, v)
		}
	}
	if p, ok := m.MetaGetMut("kafka_partition"); !ok || p != int64(2) {
		t.Errorf("@kafka_partition = %#v, want the number 2", p)
	}
	if v, _ := m.AsBytes(); string(v) != `{"uuid":"u1"}` {
		t.Errorf("body %s", v)
	}
	_ = ack(context.Background(), nil)
	waitCommitted(t, c, "g-meta", 2, 1)
}

// Acknowledging a later batch first commits nothing of its partition; the
// commit moves only once the earlier batch is acknowledged too.
func TestConsumerCommitsOnlyAcknowledgedPrefix(t *testing.T) {
	c := newCluster(t)
	k := newConsumer(t, c, "g-prefix", "max_in_flight_per_partition: 2\n")
	produceTo(t, c, recordsOn(0, "a", "b")...)
	first, ackFirst := read(t, k)
	produceTo(t, c, recordsOn(0, "c", "d", "e")...)
	second, ackSecond := read(t, k)
	if bodies(first) != "a,b" || bodies(second) != "c,d,e" {
		t.Fatalf("batches %q and %q", bodies(first), bodies(second))
	}
	_ = ackSecond(context.Background(), nil)
	time.Sleep(500 * time.Millisecond) // several commit periods
	if off, ok := committed(t, c, "g-prefix")[0]; ok && off > 0 {
		t.Fatalf("committed %d while offsets 0-1 are unacknowledged", off)
	}
	_ = ackFirst(context.Background(), nil)
	waitCommitted(t, c, "g-prefix", 0, 5)
}

// With one batch in flight per partition, the next batch of a partition waits
// for the previous one's ack, while other partitions go on.
func TestConsumerOneBatchInFlightPerPartition(t *testing.T) {
	c := newCluster(t)
	k := newConsumer(t, c, "g-order", "")
	produceTo(t, c, recordsOn(0, "a")...)
	b1, ack1 := read(t, k)
	produceTo(t, c, recordsOn(0, "b")...)
	readNone(t, k, 500*time.Millisecond)
	produceTo(t, c, recordsOn(1, "x")...)
	if b, ack := read(t, k); bodies(b) != "x" {
		t.Fatalf("got %q, want the other partition's x", bodies(b))
	} else {
		_ = ack(context.Background(), nil)
	}
	_ = ack1(context.Background(), nil)
	if b, _ := read(t, k); bodies(b) != "b" || bodies(b1) != "a" {
		t.Fatalf("got %q after %q", bodies(b), bodies(b1))
	}
}

// A nacked batch comes back (only its failed messages when the error names
// them) before anything later of its partition, and is not committed past.
func TestConsumerRedeliversNacks(t *testing.T) {
	c := newCluster(t)
	k := newConsumer(t, c, "g-nack", "")
	produceTo(t, c, recordsOn(0, "a", "b", "c")...)
	b, ack := read(t, k)
	produceTo(t, c, recordsOn(0, "d")...)
	_ = ack(context.Background(), errors.New("output down"))
	time.Sleep(300 * time.Millisecond)
	if off := committed(t, c, "g-nack")[0]; off > 0 {
		t.Fatalf("committed %d after a nack", off)
	}
	b2, ack2 := read(t, k)
	if bodies(b2) != "a,b,c" {
		t.Fatalf("redelivered %q, want a,b,c", bodies(b2))
	}
	// Fail only b, by message.
	bErr := service.NewBatchError(b2, errors.New("one failed")).Failed(1, errors.New("b refused"))
	_ = ack2(context.Background(), bErr)
	b3, ack3 := read(t, k)
	if bodies(b3) != "b" {
		t.Fatalf("redelivered %q, want only b", bodies(b3))
	}
	if o, _ := b3[0].MetaGet("kafka_offset"); o != "1" {
		t.Errorf("redelivered b has offset %s", o)
	}
	_ = ack3(context.Background(), nil)
	b4, ack4 := read(t, k)
	if bodies(b4) != "d" {
		t.Fatalf("then %q, want d", bodies(b4))
	}
	_ = ack4(context.Background(), nil)
	waitCommitted(t, c, "g-nack", 0, 4)
	_ = b
}

// A restarted member resumes from the last commit: what was acknowledged is
// not read again, what was not is.
func TestConsumerResumesFromCommit(t *testing.T) {
	c := newCluster(t)
	produceTo(t, c, recordsOn(0, "a", "b")...)
	k := newConsumer(t, c, "g-resume", "")
	b, ack := read(t, k)
	_ = ack(context.Background(), nil)
	produceTo(t, c, recordsOn(0, "c")...)
	b2, _ := read(t, k) // never acknowledged
	if bodies(b) != "a,b" || bodies(b2) != "c" {
		t.Fatalf("read %q then %q", bodies(b), bodies(b2))
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, c, "g-resume", 0, 2)

	k2 := newConsumer(t, c, "g-resume", "")
	if b3, _ := read(t, k2); bodies(b3) != "c" {
		t.Fatalf("after restart read %q, want c", bodies(b3))
	}
}

// start_offset latest skips what is already in a partition the group never
// committed.
func TestConsumerStartLatest(t *testing.T) {
	c := newCluster(t)
	produceTo(t, c, recordsOn(0, "old")...)
	k := newConsumer(t, c, "g-latest", "start_offset: latest\n")
	// Wait until the member owns the partitions, then write.
	testkit.Until(t, "the member to own the 4 partitions", func() (bool, string) {
		k.mu.Lock()
		n := len(k.parts)
		k.mu.Unlock()
		return n == 4, fmt.Sprintf("%d partitions", n)
	})
	// The member lists its start offsets after the assignment, at a moment
	// the test cannot see: it writes until a record is read. Whatever is
	// read first must be a new one, never "old".
	testkit.Until(t, "a record written after the member started to be read", func() (bool, string) {
		produceTo(t, c, recordsOn(0, "new")...)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		b, _, err := k.ReadBatch(ctx)
		if err != nil {
			return false, err.Error()
		}
		if got := bodies(b); !strings.HasPrefix(got, "new") {
			t.Fatalf("read %q, want only records written after the start", got)
		}
		return true, ""
	})
}

// On a rebalance the revoked partition's in-flight batch is waited for and
// committed before the partition moves, so the new owner starts after it.
func TestConsumerDrainsRevokedPartitions(t *testing.T) {
	c := newCluster(t)
	for p := int32(0); p < 4; p++ {
		produceTo(t, c, recordsOn(p, fmt.Sprintf("p%d", p))...)
	}
	a := newConsumer(t, c, "g-drain", "")
	held := map[int32]service.AckFunc{}
	for len(held) < 4 {
		b, ack := read(t, a)
		p, _ := b[0].MetaGetMut("kafka_partition")
		held[int32(p.(int64))] = ack
	}
	// A second member joins; acks arrive while a drains.
	var releasing atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Second)
		releasing.Store(true)
		for _, ack := range held {
			_ = ack(context.Background(), nil)
		}
	}()
	bm := newConsumer(t, c, "g-drain", "")
	for p := int32(0); p < 4; p++ {
		produceTo(t, c, recordsOn(p, fmt.Sprintf("q%d", p))...)
	}
	// Both members read at once until every q record arrived (however long
	// the rebalance takes on a loaded machine, within testkit.Patience),
	// then a second longer, to see anything delivered twice.
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	values := make(chan string)
	var readers sync.WaitGroup
	for _, k := range []*kafkaConsumer{a, bm} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				b, ack, err := k.ReadBatch(ctx)
				if err != nil {
					return
				}
				for _, m := range b {
					v, _ := m.AsBytes()
					select {
					case values <- string(v):
					case <-ctx.Done():
						return
					}
				}
				_ = ack(context.Background(), nil)
			}
		}()
	}
	got := map[string]bool{}
	var grace <-chan time.Time
	for collecting := true; collecting; {
		select {
		case v := <-values:
			if got[v] {
				t.Errorf("%s delivered twice", v)
			}
			got[v] = true
			if strings.HasPrefix(v, "p") {
				t.Errorf("%s delivered again after the rebalance", v)
			}
			if grace == nil && got["q0"] && got["q1"] && got["q2"] && got["q3"] {
				grace = time.After(time.Second)
			}
		case <-grace:
			collecting = false
		case <-ctx.Done():
			collecting = false
		}
	}
	cancel()
	readers.Wait()
	wg.Wait()
	for p := 0; p < 4; p++ {
		if !got[fmt.Sprintf("q%d", p)] {
			t.Errorf("q%d never delivered (got %v)", p, got)
		}
	}
	if !releasing.Load() {
		t.Error("the acks were never sent")
	}
	bm.mu.Lock()
	owned := len(bm.parts)
	bm.mu.Unlock()
	if owned == 0 {
		t.Error("the second member owns no partition: no rebalance happened")
	}
}

// Through Benthos: a downstream failure of some messages is retried until it
// succeeds, and every record is delivered and committed.
func TestConsumerStreamRetriesFailures(t *testing.T) {
	c := newCluster(t)
	var rs []*kgo.Record
	for i := range 200 {
		rs = append(rs, recordsOn(int32(i%4), fmt.Sprint(i))...)
	}
	produceTo(t, c, rs...)

	b := service.NewStreamBuilder()
	if err := b.AddInputYAML(fmt.Sprintf(`
kafka_consumer:
  seed_brokers: [ %s ]
  topics: [ t ]
  consumer_group: g-stream
  commit_period: 100ms
`, strings.Join(c.ListenAddrs(), ","))); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLoggerYAML("level: error"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	failedOnce := map[string]bool{}
	done := make(chan struct{})
	var closeOnce sync.Once
	if err := b.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		mu.Lock()
		defer mu.Unlock()
		bErr := service.NewBatchError(batch, errors.New("some refused"))
		failed := false
		for i, m := range batch {
			v, _ := m.AsBytes()
			if n := string(v); strings.HasSuffix(n, "7") && !failedOnce[n] {
				failedOnce[n] = true
				bErr = bErr.Failed(i, errors.New("refused once"))
				failed = true
				continue
			}
			seen[string(v)]++
		}
		if len(seen) == 200 {
			closeOnce.Do(func() { close(done) })
		}
		if failed {
			return bErr
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of 200 delivered", len(seen))
	}
	if err := s.StopWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", v, n)
		}
	}
	if len(failedOnce) != 20 {
		t.Errorf("%d messages failed once, want 20", len(failedOnce))
	}
	offs := committed(t, c, "g-stream")
	for p := int32(0); p < 4; p++ {
		if offs[p] != 50 {
			t.Errorf("partition %d committed at %d, want 50", p, offs[p])
		}
	}
}

// create_topics creates the topics the consumer reads that are missing, at
// Connect and before it joins its group, with the partitions asked; an
// existing topic is left alone, and when all exist none is even asked to be
// created (a principal without CREATE can still read).
func TestConsumerCreatesMissingTopics(t *testing.T) {
	c := testkit.KafkaCluster(t, kfake.SeedTopics(2, "existing"))
	var creates atomic.Int32
	c.ControlKey(int16(kmsg.CreateTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		creates.Add(1)
		return nil, nil, false
	})
	connect := func() {
		k, err := parseConsumer(fmt.Sprintf("seed_brokers: [%s]\ntopics: [existing, fresh]\nconsumer_group: g\ncreate_topics: {enabled: true, partitions: 5}\n",
			strings.Join(c.ListenAddrs(), ",")))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
		defer cancel()
		if err := k.Connect(ctx); err != nil {
			t.Fatalf("connecting: %v", err)
		}
		_ = k.Close(context.Background())
	}
	connect()
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		td, err := adm.ListTopics(ctx, "existing", "fresh")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(td["fresh"].Partitions); n != 5 {
			t.Errorf("fresh has %d partitions, want 5", n)
		}
		if n := len(td["existing"].Partitions); n != 2 {
			t.Errorf("existing has %d partitions, want its own 2", n)
		}
	})
	if n := creates.Load(); n != 1 {
		t.Errorf("%d CreateTopics requests for one missing topic, want 1", n)
	}
	connect() // both exist now
	if n := creates.Load(); n != 1 {
		t.Errorf("CreateTopics asked again when every topic exists (%d requests)", n)
	}
}
