package kafka

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// createTopic creates topic with one partition and the given configs.
func createTopic(t *testing.T, c *kfake.Cluster, topic string, configs map[string]string) {
	t.Helper()
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		cfg := map[string]*string{}
		for k, v := range configs {
			cfg[k] = kmsg.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, 1, -1, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("creating %s: %v", topic, err)
		}
	})
}

func topicConfig(t *testing.T, c *kfake.Cluster, topic, key string) string {
	t.Helper()
	var v string
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, cf := range rc.Configs {
			if cf.Key == key && cf.Value != nil {
				v = *cf.Value
			}
		}
	})
	return v
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// incompressible is n random bytes (as hex-free raw bytes), so compression
// cannot shrink a record under a limit.
func incompressible(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return string(b)
}

func TestMissingTopicsAreAutoCreated(t *testing.T) {
	c := testkit.KafkaCluster(t, kfake.AllowAutoTopicCreation())
	k := newProducer(t, c, "topic: fresh\n")
	if err := write(t, k, msgBatch("a", "b")); err != nil {
		t.Fatal(err)
	}
	if n := len(consume(t, c, "fresh", 2)); n != 2 {
		t.Fatalf("%d records in the auto-created topic", n)
	}
}

func TestCreateTopicsCreatesWithThePartitionsAsked(t *testing.T) {
	c := testkit.KafkaCluster(t) // no auto-creation
	k := newProducer(t, c, "topic: ${! meta(\"t\") }\ncreate_topics: {enabled: true, partitions: 5, config: {retention.ms: \"3600000\"}}\n")
	b := msgBatch("a", "b")
	b[0].MetaSetMut("t", "one")
	b[1].MetaSetMut("t", "two")
	if err := write(t, k, b); err != nil {
		t.Fatal(err)
	}
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		td, err := adm.ListTopics(ctx, "one", "two")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"one", "two"} {
			if n := len(td[name].Partitions); n != 5 {
				t.Errorf("topic %s has %d partitions, want 5", name, n)
			}
		}
	})
	if v := topicConfig(t, c, "one", "retention.ms"); v != "3600000" {
		t.Errorf("retention.ms of a created topic = %q", v)
	}
}

// A topic that does not exist and will not be created is an error that names
// it and the fix, at Connect for a static topic and at write for a dynamic one.
func TestMissingTopicIsAClearError(t *testing.T) {
	c := testkit.KafkaCluster(t)
	k, err := parseProducer("seed_brokers: [" + c.ListenAddrs()[0] + "]\ntopic: nowhere\n")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	err = k.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), `topic "nowhere" does not exist`) || !strings.Contains(err.Error(), "create_topics") {
		t.Fatalf("Connect: %v, want an error naming the topic and create_topics", err)
	}
	if !errors.Is(err, service.ErrNotConnected) {
		t.Errorf("Connect: %v, want it to keep the output not ready (ErrNotConnected)", err)
	}

	dyn := newProducer(t, c, "topic: ${! content() }\nallow_auto_topic_creation: false\n")
	err = write(t, dyn, msgBatch("elsewhere"))
	if err == nil || !strings.Contains(err.Error(), `topic "elsewhere" does not exist`) || !strings.Contains(err.Error(), "allow_auto_topic_creation") {
		t.Fatalf("write: %v, want an error naming the topic and the fix", err)
	}
}

// A record over max_message_bytes goes to the dead-letter topic with its
// reason; the rest of the batch is written and the batch is acknowledged.
func TestOversizeRecordGoesToDeadLetterTopic(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "okta.deadletter"))
	k := newProducer(t, c, "topic: t\nkey: ${! meta(\"k\") }\nmax_message_bytes: 4000\nmetadata: {include_prefixes: [okta_]}\n")
	b := msgBatch("before", strings.Repeat("x", 5000), "after")
	for i, m := range b {
		m.MetaSetMut("k", []string{"k0", "k1", "k2"}[i])
		m.MetaSetMut("okta_uuid", []string{"u0", "u1", "u2"}[i])
	}
	if err := write(t, k, b); err != nil {
		t.Fatalf("write: %v, want the batch acknowledged", err)
	}
	got := map[string]bool{}
	for _, r := range consume(t, c, "t", 2) {
		got[string(r.Value)] = true
	}
	if !got["before"] || !got["after"] {
		t.Errorf("records in t: %v", got)
	}
	d := consume(t, c, "okta.deadletter", 1)[0]
	if string(d.Key) != "k1" || header(d, "okta_uuid") != "u1" || header(d, "dead_letter_topic") != "t" ||
		header(d, "dead_letter_value_bytes") != "5000" || !strings.Contains(header(d, "dead_letter_reason"), "max_message_bytes") ||
		len(d.Value) != deadLetterValueBytes {
		t.Errorf("dead letter: key %q, headers %v, %d value bytes", d.Key, d.Headers, len(d.Value))
	}
}

// The broker refuses a record its topic's max.message.bytes does not
// allow. Its neighbours of the same produce request are refused with it;
// they are written alone, the big one goes to the dead-letter topic.
func TestBrokerRefusedRecordGoesToDeadLetterTopic(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "okta.deadletter"))
	createTopic(t, c, "small", map[string]string{"max.message.bytes": "3000"})
	k := newProducer(t, c, "topic: small\nkey: ${! meta(\"k\") }\n")
	b := msgBatch("m0", incompressible(4000), "m2", "m3")
	for i, m := range b {
		m.MetaSetMut("k", "key"+string(rune('0'+i)))
	}
	if err := write(t, k, b); err != nil {
		t.Fatalf("write: %v, want the batch acknowledged", err)
	}
	got := map[string]bool{}
	for _, r := range consume(t, c, "small", 3) {
		got[string(r.Value)] = true
	}
	if !got["m0"] || !got["m2"] || !got["m3"] {
		t.Errorf("records in small: %v", got)
	}
	d := consume(t, c, "okta.deadletter", 1)[0]
	if string(d.Key) != "key1" || header(d, "dead_letter_partition") != "0" ||
		!strings.Contains(header(d, "dead_letter_reason"), "MESSAGE_TOO_LARGE") {
		t.Errorf("dead letter: key %q, headers %v", d.Key, d.Headers)
	}
}

// In exactly-once mode a refused record's dead letter is committed in the
// page's transaction with the other records and the cursor.
func TestTransactionDeadLettersRefusedRecords(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "okta.deadletter"))
	createTopic(t, c, "small", map[string]string{"max.message.bytes": "3000"})
	k := newProducer(t, c, strings.Replace(txnYAML, "topic: t", "topic: small\nmax_message_bytes: 6000", 1))
	b := pageBatch("cursor-1", "e0", incompressible(4000), "e2", incompressible(7000), "e4")
	for i, m := range b {
		m.MetaSetMut("k", "key"+string(rune('0'+i)))
		m.MetaSetMut("okta_uuid", "uuid"+string(rune('0'+i)))
	}
	if err := write(t, k, b); err != nil {
		t.Fatalf("write: %v, want the page committed", err)
	}
	got := map[string]bool{}
	for _, r := range readAll(t, c, "small", 3) {
		got[string(r.Value)] = true
	}
	if !got["e0"] || !got["e2"] || !got["e4"] {
		t.Errorf("committed records in small: %v", got)
	}
	reasons := map[string]bool{}
	for _, d := range readAll(t, c, "okta.deadletter", 2) {
		reason := header(d, "dead_letter_reason")
		switch {
		case strings.Contains(reason, "MESSAGE_TOO_LARGE"):
			reasons["broker"] = true
		case strings.Contains(reason, "max_message_bytes"):
			reasons["max_message_bytes"] = true
		}
	}
	if !reasons["broker"] || !reasons["max_message_bytes"] {
		t.Errorf("dead letters' reasons: %v, want one refused by the broker and one over max_message_bytes", reasons)
	}
	if cp := getCheckpoint(t, newCheckpointCache(t, c)); cp != "cursor-1" {
		t.Errorf("checkpoint %q, want the page's cursor committed", cp)
	}
}

// Each connection failure's cause reaches Connect's error (which the
// component logs once per change): refused, TLS against plaintext, a
// rejected SASL password, and SASL missing.
func TestConnectNamesTheCause(t *testing.T) {
	plainCluster := newCluster(t)
	saslCluster := newCluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "u", "right"))
	for name, tc := range map[string]struct{ yaml, want string }{
		"refused":        {"seed_brokers: [127.0.0.1:1]\n", "nothing listens there"},
		"tls-vs-plain":   {"seed_brokers: [" + plainCluster.ListenAddrs()[0] + "]\ntls: {enabled: true}\n", "TLS handshake"},
		"wrong-password": {"seed_brokers: [" + saslCluster.ListenAddrs()[0] + "]\nsasl: [{mechanism: SCRAM-SHA-512, username: u, password: wrong}]\n", "SASL authentication"},
		"sasl-missing":   {"seed_brokers: [" + saslCluster.ListenAddrs()[0] + "]\n", "requires SASL"},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := parseProducer(tc.yaml + "topic: t\n")
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close(context.Background())
			err = k.Connect(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, service.ErrNotConnected) {
				t.Fatalf("Connect: %v, want ErrNotConnected naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("the password appears in %v", err)
			}
		})
	}
}

// An existing checkpoint topic that deletes by retention is made compacted.
func TestCheckpointTopicIsMadeCompacted(t *testing.T) {
	c := newCluster(t)
	createTopic(t, c, "cp", map[string]string{"cleanup.policy": "delete"})
	newProducer(t, c, txnYAML)
	if v := topicConfig(t, c, "cp", "cleanup.policy"); v != "compact" {
		t.Fatalf("cleanup.policy of the checkpoint topic is %q, want compact", v)
	}
}

// When the policy cannot be changed, Connect refuses with the command that
// fixes it.
func TestUncompactableCheckpointTopicIsRefused(t *testing.T) {
	c := newCluster(t)
	createTopic(t, c, "cp", map[string]string{"cleanup.policy": "delete"})
	c.ControlKey(int16(kmsg.IncrementalAlterConfigs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.IncrementalAlterConfigsRequest)
		resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		for _, res := range r.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, kerr.ClusterAuthorizationFailed.Code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
	k, err := parseProducer("seed_brokers: [" + c.ListenAddrs()[0] + "]\n" + txnYAML)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	err = k.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), `cleanup.policy "delete"`) || !strings.Contains(err.Error(), "cleanup.policy=compact") {
		t.Fatalf("Connect: %v, want a refusal naming the policy and the fix", err)
	}
}

// A password from password_file authenticates; one with " #" in it
// survives, as YAML never sees it.
func TestPasswordFileAuthenticates(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "u", "pa ss #word"))
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("pa ss #word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := newProducer(t, c, "topic: t\nsasl: [{mechanism: SCRAM-SHA-512, username: u, password_file: "+pwFile+"}]\n")
	if err := write(t, k, msgBatch("authenticated")); err != nil {
		t.Fatal(err)
	}
}

// A connection failure's cause is logged once per change of state, not on
// every retry, for the consumer and the checkpoint cache as for the output.
func TestConnectionCauseLoggedOncePerChange(t *testing.T) {
	var buf testkit.Buffer
	res := service.MockResources(service.MockResourcesOptUseLogger(service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(&buf, nil)))))
	conf, err := kafkaConsumerSpec().ParseYAML("seed_brokers: ['127.0.0.1:1']\ntopics: [t]\nconsumer_group: g\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newKafkaConsumer(conf, res)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := k.Connect(context.Background()); !errors.Is(err, service.ErrNotConnected) {
			t.Fatalf("Connect: %v, want ErrNotConnected", err)
		}
	}
	if n := strings.Count(buf.String(), "connection refused"); n != 1 {
		t.Errorf("the cause is logged %d times over 3 attempts, want once:\n%s", n, buf.String())
	}

	w := kafkax.NewConnWatch(res.Logger(), "x")
	_ = w.Failed(errors.New("cause A"))
	_ = w.Failed(errors.New("cause A"))
	_ = w.Failed(errors.New("cause B"))
	w.OK()
	w.OK()
	out := buf.String()
	if strings.Count(out, "cause A") != 1 || strings.Count(out, "cause B") != 1 || strings.Count(out, "x uses Kafka again") != 1 {
		t.Errorf("state changes logged wrongly:\n%s", out)
	}

	cconf, err := kafkaCheckpointSpec().ParseYAML("seed_brokers: ['127.0.0.1:1']\ntimeout: 2s\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := newKafkaCheckpointCache(cconf)
	if err != nil {
		t.Fatal(err)
	}
	cc.conn = kafkax.NewConnWatch(res.Logger(), "kafka_checkpoint cache")
	for range 2 {
		if _, err := cc.Get(context.Background(), "k"); err == nil || !strings.Contains(err.Error(), "nothing listens there") {
			t.Fatalf("Get: %v, want the explained cause", err)
		}
	}
	if n := strings.Count(buf.String(), "kafka_checkpoint cache cannot use Kafka"); n != 1 {
		t.Errorf("the cache logged its cause %d times, want once", n)
	}
}

// kafka_tombstone writes a null value (a deletion in a compacted topic),
// whatever the body; in a transaction too.
func TestTombstoneMetadataWritesNullValue(t *testing.T) {
	c := newCluster(t)
	k := newProducer(t, c, txnYAML)
	b := msgBatch("kept", "ignored body")
	b[1].MetaSetMut(meta.KafkaTombstone, "true")
	if err := write(t, k, b); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range readAll(t, c, "t", 2) {
		got[fmt.Sprintf("%q/%v", r.Value, r.Value == nil)] = true
	}
	if !got[`"kept"/false`] || !got[`""/true`] {
		t.Errorf("records: %v, want the kept value and a null one", got)
	}
}

// A message marked kafka_no_dead_letter (cel_detect's state) that Kafka
// refuses for good is never replaced by a dead letter: the write fails,
// naming why, in both modes.
func TestNoDeadLetterRecordFailsInstead(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "okta.deadletter"))
	for _, yaml := range []string{
		"topic: t\nmax_message_bytes: 4000\n",
		txnYAML + "max_message_bytes: 4000\n",
	} {
		k := newProducer(t, c, yaml)
		b := msgBatch("small", strings.Repeat("x", 5000))
		b[1].MetaSetMut(meta.KafkaNoDeadLetter, "true")
		// The record is refused before anything is sent; in a transaction
		// the batch is then retried until shutdown, which ctx stands for.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := k.WriteBatch(ctx, b)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "max_message_bytes") {
			t.Errorf("%s: write: %v, want a failure naming max_message_bytes", yaml, err)
		}
	}
	if n := countRecords(t, c, "okta.deadletter"); n != 0 {
		t.Errorf("%d dead letters written for a record that must not become one", n)
	}
}

// countRecords is how many records topic holds (its end offsets' sum).
func countRecords(t *testing.T, c *kfake.Cluster, topic string) int64 {
	t.Helper()
	var n int64
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	})
	return n
}
