package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// KafkaCluster starts an in-process Kafka of one broker speaking the real
// protocol (kfake), configured by opts, and closes it when the test ends.
func KafkaCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// KafkaAdmin runs fn with an admin client of the cluster and a context that
// bounds its requests.
func KafkaAdmin(t testing.TB, c *kfake.Cluster, fn func(ctx context.Context, adm *kadm.Client)) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fn(ctx, kadm.NewClient(cl))
}

// CommittedRecords returns every record of topic that read_committed
// consumers can see now. It reads up to each partition's last stable offset,
// listed first, so the answer is exact at that instant rather than "what
// arrived within a time window": a window too short under load reads too
// few, and one long enough to be safe hides nothing more.
func CommittedRecords(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	var out []*kgo.Record
	err := kafkax.ReadCommitted(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, topic, nil, func(r *kgo.Record) {
		out = append(out, r)
	})
	if err != nil {
		t.Fatalf("reading the committed records of %s: %v", topic, err)
	}
	return out
}
