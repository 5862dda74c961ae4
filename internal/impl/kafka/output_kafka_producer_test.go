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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// javaMurmur2 is written from the algorithm in Kafka's Utils.murmur2, kept
// independent of franz-go so the test checks franz-go rather than itself.
func javaMurmur2(data []byte) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// Vectors from Kafka's UtilsTest.testMurmur2 (Java's signed ints).
var murmur2Vectors = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc": 479470107,
}

func javaPartition(key string, n int) int32 {
	return (javaMurmur2([]byte(key)) & 0x7fffffff) % int32(n)
}

func TestMurmur2MatchesKafkaVectors(t *testing.T) {
	for key, want := range murmur2Vectors {
		if got := javaMurmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, Kafka says %d", key, got, want)
		}
	}
}

func TestRecordsLandWithKeyPartitionAndHeaders(t *testing.T) {
	c := newCluster(t)
	k := newProducer(t, c, `
topic: ${! meta("topic") }
key: ${! meta("key") }
metadata:
  include_prefixes: [ okta_ ]
`)
	var b service.MessageBatch
	keys := make([]string, 0, len(murmur2Vectors))
	for key := range murmur2Vectors {
		keys = append(keys, key)
		m := service.NewMessage([]byte("value-" + key))
		m.MetaSetMut("topic", "t")
		m.MetaSetMut("key", key)
		m.MetaSetMut("okta_uuid", "u-"+key)
		m.MetaSetMut("secret_stuff", "must not leave")
		b = append(b, m)
	}
	if err := write(t, k, b); err != nil {
		t.Fatalf("write: %v", err)
	}
	recs := consume(t, c, "t", len(keys))
	seenPartitions := map[int32]bool{}
	for _, r := range recs {
		key := string(r.Key)
		if _, ok := murmur2Vectors[key]; !ok {
			t.Fatalf("unexpected key %q", key)
		}
		if want := javaPartition(key, 4); r.Partition != want {
			t.Errorf("key %q on partition %d, Java's default partitioner picks %d", key, r.Partition, want)
		}
		seenPartitions[r.Partition] = true
		if string(r.Value) != "value-"+key {
			t.Errorf("key %q has value %q", key, r.Value)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "okta_uuid" || string(r.Headers[0].Value) != "u-"+key {
			t.Errorf("key %q has headers %+v, want only okta_uuid", key, r.Headers)
		}
	}
	if len(seenPartitions) < 2 {
		t.Errorf("all keys on one partition (%v): the test would not tell partitioners apart", seenPartitions)
	}
}

// observe counts requests of one key without changing their handling.
func observe(c *kfake.Cluster, key kmsg.Key, fn func(kmsg.Request)) {
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		fn(req)
		return nil, nil, false
	})
}

func TestIdempotentAcksAllByDefault(t *testing.T) {
	c := newCluster(t)
	var initPID atomic.Int32
	var acks atomic.Int32
	acks.Store(99)
	observe(c, kmsg.InitProducerID, func(kmsg.Request) { initPID.Add(1) })
	observe(c, kmsg.Produce, func(r kmsg.Request) { acks.Store(int32(r.(*kmsg.ProduceRequest).Acks)) })
	k := newProducer(t, c, "topic: t\n")
	if err := write(t, k, msgBatch("a")); err != nil {
		t.Fatal(err)
	}
	if initPID.Load() == 0 {
		t.Error("no InitProducerID request: the producer is not idempotent")
	}
	if acks.Load() != -1 {
		t.Errorf("produce acks = %d, want -1 (all)", acks.Load())
	}
}

func TestLeaderAcksWithoutIdempotence(t *testing.T) {
	c := newCluster(t)
	var initPID, acks atomic.Int32
	observe(c, kmsg.InitProducerID, func(kmsg.Request) { initPID.Add(1) })
	observe(c, kmsg.Produce, func(r kmsg.Request) { acks.Store(int32(r.(*kmsg.ProduceRequest).Acks)) })
	k := newProducer(t, c, "topic: t\nacks: leader\nidempotent_write: false\n")
	if err := write(t, k, msgBatch("a")); err != nil {
		t.Fatal(err)
	}
	if initPID.Load() != 0 || acks.Load() != 1 {
		t.Errorf("InitProducerID requests %d, acks %d; want 0 and 1", initPID.Load(), acks.Load())
	}
}

func TestConfigValidation(t *testing.T) {
	for name, yaml := range map[string]string{
		"idempotent needs acks all": "seed_brokers: [x:9092]\ntopic: t\nacks: leader\n",
		"no brokers":                "seed_brokers: [' , ']\ntopic: t\n",
		"partition without manual":  "seed_brokers: [x:9092]\ntopic: t\npartition: '1'\n",
		"manual without partition":  "seed_brokers: [x:9092]\ntopic: t\npartitioner: manual\n",
		"bad compression":           "seed_brokers: [x:9092]\ntopic: t\ncompression: brotli\n",
		"zero max_message_bytes":    "seed_brokers: [x:9092]\ntopic: t\nmax_message_bytes: 0\n",
		"sasl without user":         "seed_brokers: [x:9092]\ntopic: t\nsasl: [{mechanism: PLAIN, username: '', password: p}]\n",
		"bad topic interpolation":   "seed_brokers: [x:9092]\ntopic: ${! nope( }\n",
		"tls with unreadable CA":    "seed_brokers: [x:9092]\ntopic: t\ntls: {enabled: true, root_cas_file: /nonexistent/ca.pem}\n",
	} {
		if _, err := parseProducer(yaml); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Comma-separated entries are split, and the constructor does no I/O:
	// unreachable brokers are fine until Connect.
	k, err := parseProducer("seed_brokers: ['a:1, b:2', c:3]\ntopic: t\n")
	if err != nil {
		t.Fatal(err)
	}
	if k.getClient() != nil {
		t.Error("client created by the constructor")
	}
	if err := k.WriteBatch(context.Background(), msgBatch("x")); !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("write before connect: %v, want ErrNotConnected", err)
	}
}

func TestCompressionRoundTrips(t *testing.T) {
	body := strings.Repeat(`{"eventType":"user.session.start","outcome":"SUCCESS"}`, 40)
	for codec, attr := range map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4} {
		t.Run(codec, func(t *testing.T) {
			c := newCluster(t)
			var seen atomic.Int32
			seen.Store(-1)
			observe(c, kmsg.Produce, func(r kmsg.Request) {
				for _, tp := range r.(*kmsg.ProduceRequest).Topics {
					for _, p := range tp.Partitions {
						var rb kmsg.RecordBatch
						if rb.ReadFrom(p.Records) == nil {
							seen.Store(int32(rb.Attributes & 0x07))
						}
					}
				}
			})
			k := newProducer(t, c, "topic: t\nkey: k\ncompression: "+codec+"\n")
			if err := write(t, k, msgBatch(body, body, body)); err != nil {
				t.Fatal(err)
			}
			if int16(seen.Load()) != attr {
				t.Errorf("batch sent with codec %d, want %d", seen.Load(), attr)
			}
			for _, r := range consume(t, c, "t", 3) {
				if string(r.Value) != body {
					t.Fatalf("value changed in the round trip")
				}
			}
		})
	}
}

func TestBatchAckedOnlyAfterKafkaAcks(t *testing.T) {
	c := newCluster(t)
	k := newProducer(t, c, "topic: t\n")
	reached, release := make(chan struct{}), make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(reached)
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	done := make(chan error, 1)
	go func() { done <- write(t, k, msgBatch("a", "b", "c")) }()
	<-reached
	select {
	case err := <-done:
		t.Fatalf("WriteBatch returned (%v) while Kafka had not answered", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := len(consume(t, c, "t", 3)); n != 3 {
		t.Fatalf("got %d records", n)
	}
}

// With dead letters off, a refused record fails only its own message.
func TestPartialFailureNacksOnlyFailedRecords(t *testing.T) {
	c := newCluster(t)
	// Partition 1 refuses every produce with a non-retriable error.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Partitions: []int32{1}, Err: kerr.InvalidRecord, Count: -1})
	k := newProducer(t, c, `
topic: t
partitioner: manual
partition: ${! meta("p") }
max_message_bytes: 1000
dead_letter_topic: ""
`)
	parts := []string{"0", "1", "2", "1", "3", "0"}
	b := msgBatch("m0", "m1", "m2", "m3", "m4", strings.Repeat("x", 1001))
	for i, p := range parts {
		b[i].MetaSetMut("p", p)
	}
	err := write(t, k, b)
	var bErr *service.BatchError
	if !errors.As(err, &bErr) {
		t.Fatalf("write returned %v, want a BatchError", err)
	}
	failed := map[int]error{}
	bErr.WalkMessages(func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed[i] = err
		}
		return true
	})
	if len(failed) != 3 || failed[1] == nil || failed[3] == nil || failed[5] == nil {
		t.Fatalf("failed messages %v, want exactly 1, 3 (refused partition) and 5 (too large)", failed)
	}
	if !errors.Is(failed[1], kerr.InvalidRecord) {
		t.Errorf("message 1 failed with %v, want Kafka's INVALID_RECORD", failed[1])
	}
	if !strings.Contains(failed[5].Error(), "max_message_bytes") {
		t.Errorf("too-large message error %q does not name max_message_bytes", failed[5])
	}
	got := map[string]bool{}
	for _, r := range consume(t, c, "t", 3) {
		got[string(r.Value)] = true
	}
	if !got["m0"] || !got["m2"] || !got["m4"] {
		t.Errorf("acknowledged messages in Kafka: %v, want m0, m2, m4", got)
	}
}

func TestKafkaUnavailableIsNotConnectedAndNothingIsLost(t *testing.T) {
	c := newCluster(t)
	k := newProducer(t, c, "topic: t\nkey: ${! content() }\ntimeout: 1s\n")
	if err := write(t, k, msgBatch("before")); err != nil {
		t.Fatal(err)
	}
	// Every produce is refused with a retriable error: franz-go keeps
	// retrying until the batch's timeout.
	f := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	err := write(t, k, msgBatch("during-1", "during-2"))
	if !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("write during outage: %v, want ErrNotConnected", err)
	}
	f.Remove()
	// What Benthos does next: Connect, then write the same batch again.
	if err := k.Connect(context.Background()); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	if err := write(t, k, msgBatch("during-1", "during-2")); err != nil {
		t.Fatalf("retry after outage: %v", err)
	}
	assertValuesOnce(t, consume(t, c, "t", 3), "before", "during-1", "during-2")
}

// TestClusterGoneAndBack stops the broker under the producer. A request
// written to the dying connection has an unknown outcome, so the write may
// block until Kafka is back rather than fail; either way, once a broker
// answers again the record is there exactly once.
func TestClusterGoneAndBack(t *testing.T) {
	// A data directory makes the second cluster a restart of the first:
	// same topic IDs and producer state, as a real broker keeps.
	dir := t.TempDir()
	c := newCluster(t, kfake.Ports(0), kfake.DataDir(dir))
	addr := c.ListenAddrs()[0]
	k := newProducer(t, c, "topic: t\ntimeout: 1s\n")
	if err := write(t, k, msgBatch("before")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	result := make(chan error, 1)
	go func() { result <- writeLikeBenthos(t, k, msgBatch("during")) }()
	select {
	case err := <-result:
		t.Fatalf("write finished with Kafka down: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := k.Connect(ctx); !errors.Is(err, service.ErrNotConnected) {
		t.Fatalf("connect with Kafka down: %v, want ErrNotConnected", err)
	}
	var port int
	fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port)
	c2 := newCluster(t, kfake.Ports(port), kfake.DataDir(dir))
	if err := <-result; err != nil {
		t.Fatalf("write after Kafka came back: %v", err)
	}
	assertValuesOnce(t, consume(t, c2, "t", 2), "before", "during")
}

// writeLikeBenthos retries on ErrNotConnected after reconnecting, as
// Benthos' output loop does.
func writeLikeBenthos(t testing.TB, k *kafkaProducer, b service.MessageBatch) error {
	deadline := time.Now().Add(testkit.Patience)
	for {
		err := write(t, k, b)
		if !errors.Is(err, service.ErrNotConnected) || time.Now().After(deadline) {
			return err
		}
		for k.Connect(context.Background()) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func assertValuesOnce(t *testing.T, recs []*kgo.Record, want ...string) {
	t.Helper()
	count := map[string]int{}
	for _, r := range recs {
		count[string(r.Value)]++
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("%q in Kafka %d times, want once (all: %v)", w, count[w], count)
		}
	}
	if len(recs) != len(want) {
		t.Errorf("%d records, want %d", len(recs), len(want))
	}
}

func TestSASL(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "user256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "user512", "pass512"),
	)
	for _, tc := range []struct{ mech, user, pass string }{
		{"PLAIN", "plainuser", "plainpass"},
		{"SCRAM-SHA-256", "user256", "pass256"},
		{"SCRAM-SHA-512", "user512", "pass512"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			yaml := fmt.Sprintf("topic: t\nsasl: [{mechanism: %s, username: %s, password: %s}]\n", tc.mech, tc.user, tc.pass)
			k := newProducer(t, c, yaml)
			if err := write(t, k, msgBatch("via "+tc.mech)); err != nil {
				t.Fatal(err)
			}
			bad, err := parseProducer("seed_brokers: [" + c.ListenAddrs()[0] + "]\ntimeout: 2s\n" +
				strings.Replace(yaml, "password: "+tc.pass, "password: wrong", 1))
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close(context.Background())
			if err := bad.Connect(context.Background()); err == nil {
				t.Error("connected with a wrong password")
			}
		})
	}
	superuser := kgo.SASL(plain.Auth{User: "plainuser", Pass: "plainpass"}.AsMechanism())
	if n := len(consume(t, c, "t", 3, superuser)); n != 3 {
		t.Fatalf("got %d records", n)
	}
}

// With the defaults, a record batch never exceeds what a broker with
// Kafka's default max.message.bytes (1,048,588) accepts: a refused batch
// would be sent again and its records already written written twice.
func TestDefaultBatchesFitBrokerDefaultLimit(t *testing.T) {
	conf, err := kafkaProducerSpec().ParseYAML("seed_brokers: [localhost:9092]\ntopic: t\ncompression: none\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newKafkaProducer(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	opts, err := k.clientOpts(conf)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32); got > 1048588 {
		t.Errorf("record batches up to %d bytes, more than Kafka's default max.message.bytes 1048588", got)
	}
}

// The checkpoint and its key travel as metadata, never as headers; the
// names of both come from the config.
func TestCheckpointMetadataIsNeverAHeader(t *testing.T) {
	c := newCluster(t)
	k := newProducer(t, c, "topic: t\nmetadata: {include_prefixes: [cp_]}\ncheckpoint_metadata: cp_cursor\ncheckpoint_key_metadata: cp_cursor_where\n")
	b := msgBatch("a")
	b[0].MetaSetMut("cp_cursor", "c1")
	b[0].MetaSetMut("cp_cursor_where", "org")
	b[0].MetaSetMut("cp_other", "forwarded")
	if err := write(t, k, b); err != nil {
		t.Fatal(err)
	}
	r := consume(t, c, "t", 1)[0]
	if len(r.Headers) != 1 || r.Headers[0].Key != "cp_other" {
		t.Errorf("headers %v, want only cp_other", r.Headers)
	}
}
