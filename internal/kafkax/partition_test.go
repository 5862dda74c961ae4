package kafkax_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// Records keyed by KeysForEachPartition land each in its own partition when
// a client using Kafka's default key hashing writes them to a real broker.
func TestKeysForEachPartitionLandInTheirPartitions(t *testing.T) {
	const n = 12
	c := testkit.KafkaCluster(t, kfake.SeedTopics(n, "t"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	keys := kafkax.KeysForEachPartition("@watermark\x00", n)
	if len(keys) != n {
		t.Fatalf("%d keys for %d partitions", len(keys), n)
	}
	for want, key := range keys {
		r := &kgo.Record{Key: key}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if int(r.Partition) != want {
			t.Errorf("key %q landed in partition %d, want %d", key, r.Partition, want)
		}
	}
}
