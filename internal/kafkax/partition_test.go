package kafkax_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
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

// A topic create_topics finds with another partition count is used as it
// is, with a note saying so for the operator's log; one with the count
// asked, or created, gives none.
func TestCreateTopicsNotesAnotherPartitionCount(t *testing.T) {
	c := testkit.KafkaCluster(t, kfake.SeedTopics(3, "three"), kfake.SeedTopics(12, "twelve"))
	conf, err := service.NewConfigSpec().Field(kafkax.ConsumerCreateTopicsField()).
		ParseYAML("create_topics: {enabled: true, partitions: 12}", nil)
	if err != nil {
		t.Fatal(err)
	}
	creator, err := kafkax.ParseTopicCreator(conf)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	notes, err := creator.Create(ctx, cl, []string{"three", "twelve", "fresh"})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "topic three exists with 3 partitions, not the 12") || !strings.Contains(notes[0], "watermark_partitions") {
		t.Fatalf("notes %q, want one about topic three", notes)
	}
	if notes, err := creator.Create(ctx, cl, []string{"twelve", "fresh"}); err != nil || len(notes) != 0 {
		t.Fatalf("notes %q (%v) for topics of the count asked", notes, err)
	}
}
