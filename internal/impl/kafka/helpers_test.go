package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// newCluster starts an in-process Kafka speaking the real protocol, with
// topic "t" of four partitions.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	return testkit.KafkaCluster(t, append([]kfake.Opt{kfake.SeedTopics(4, "t")}, opts...)...)
}

// newProducer builds and connects the output from YAML; seed_brokers is
// filled in from the cluster.
func newProducer(t testing.TB, c *kfake.Cluster, yaml string) *kafkaProducer {
	t.Helper()
	k, err := parseProducer("seed_brokers: [" + strings.Join(c.ListenAddrs(), ",") + "]\n" + yaml)
	if err != nil {
		t.Fatalf("building output: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Connect(ctx); err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { _ = k.Close(context.Background()) })
	return k
}

func parseProducer(yaml string) (*kafkaProducer, error) {
	conf, err := kafkaProducerSpec().ParseYAML(yaml, nil)
	if err != nil {
		return nil, err
	}
	return newKafkaProducer(conf, service.MockResources())
}

// consume reads n records of topic from the start, failing after a timeout.
func consume(t testing.TB, c *kfake.Cluster, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %s before timing out", len(out), n, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// msgBatch makes a batch of messages with the given bodies.
func msgBatch(bodies ...string) service.MessageBatch {
	b := make(service.MessageBatch, len(bodies))
	for i, s := range bodies {
		b[i] = service.NewMessage([]byte(s))
	}
	return b
}

func write(t testing.TB, k *kafkaProducer, b service.MessageBatch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return k.WriteBatch(ctx, b)
}
