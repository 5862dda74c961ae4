package kafkax_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// holdPublication stalls the client's metadata update between handing the
// record valued "held" to its partition and publishing the topic's
// partitions: until acked is closed, then for a while longer.
type holdPublication struct{ acked <-chan struct{} }

func (h holdPublication) OnProduceRecordPartitioned(r *kgo.Record, _ int32) {
	if string(r.Value) == "held" {
		<-h.acked
		time.Sleep(200 * time.Millisecond)
	}
}

// A transaction whose records were acknowledged before the client published
// their topic's partitions (a client's first write to a topic, on a busy
// machine) commits: AwaitProducedPartitions holds the commit until the client
// lists them. Without it, EndTransaction returns nil having aborted.
func TestCommitAfterFirstWriteToATopic(t *testing.T) {
	c := testkit.KafkaCluster(t, kfake.NumBrokers(2), kfake.SeedTopics(2, "t"))
	// The two partitions on two brokers, so the stalled one does not hold up
	// the other's request.
	for p := range int32(2) {
		if err := c.MoveTopicPartition("t", p, p); err != nil {
			t.Fatal(err)
		}
	}
	// Both records wait for the topic's partitions, so one metadata update
	// hands both over.
	buffered := make(chan struct{})
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, rt := range req.(*kmsg.MetadataRequest).Topics {
			if rt.Topic != nil && *rt.Topic == "t" {
				c.SleepControl(func() { <-buffered })
			}
		}
		return nil, nil, false
	})
	acked := make(chan struct{})
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.TransactionalID("first-write"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.WithHooks(holdPublication{acked}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "t", Partition: 0, Value: []byte("kept")}
	produced := make(chan error, 1)
	cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		close(acked)
		produced <- err
	})
	cl.Produce(ctx, &kgo.Record{Topic: "t", Partition: 1, Value: []byte("held")}, nil)
	close(buffered)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if err := kafkax.AwaitProducedPartitions(ctx, cl, rec); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	recs := testkit.CommittedRecords(t, c.ListenAddrs(), "t")
	var kept int
	for _, r := range recs {
		if string(r.Value) == "kept" {
			kept++
		}
	}
	if kept != 1 {
		t.Fatalf("committed %d records valued kept, want 1 (all committed: %d)", kept, len(recs))
	}
}

// A partition the client never lists is an error naming it once ctx ends,
// not a wait forever.
func TestAwaitProducedPartitionsEndsWithContext(t *testing.T) {
	c := testkit.KafkaCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = kafkax.AwaitProducedPartitions(ctx, cl, &kgo.Record{Topic: "never", Partition: 3})
	if err == nil || !strings.Contains(err.Error(), "never/3") {
		t.Fatalf("got %v, want an error naming never/3", err)
	}
}
