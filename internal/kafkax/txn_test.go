package kafkax_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	commitFirstWrite(t, false)
}

// The same when the topic did not exist at the first write and was created
// meanwhile (as a pipeline's topics are on a fresh broker): the client then
// holds the failed load's error for the topic, which must not pass for the
// partitions being listed.
func TestCommitAfterFirstWriteToATopicCreatedMeanwhile(t *testing.T) {
	commitFirstWrite(t, true)
}

// commitFirstWrite writes one record to each of two partitions of topic t
// with a fresh transactional client, stalling the client's publication of
// t's partitions until the first record is acknowledged, and checks that
// the transaction commits. With create, t does not exist at the first
// write: the client's first load of it fails, and t is created before the
// next.
func commitFirstWrite(t *testing.T, create bool) {
	opts := []kfake.Opt{kfake.NumBrokers(2)}
	if !create {
		opts = append(opts, kfake.SeedTopics(2, "t"))
	}
	c := testkit.KafkaCluster(t, opts...)
	// The two partitions on two brokers, so the stalled one does not hold up
	// the other's request.
	placed := make(chan struct{})
	place := func() {
		testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, "t"); create && err != nil {
				t.Fatal(err)
			}
		})
		for p := range int32(2) {
			if err := c.MoveTopicPartition("t", p, p); err != nil {
				t.Fatal(err)
			}
		}
		close(placed)
	}
	if !create {
		place()
	}
	// Both records wait for the topic's first load, so one metadata update
	// hands both over; a later load waits until t is placed.
	buffered := make(chan struct{})
	var loads atomic.Int32
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, rt := range req.(*kmsg.MetadataRequest).Topics {
			if rt.Topic != nil && *rt.Topic == "t" {
				if loads.Add(1) == 1 {
					c.SleepControl(func() { <-buffered })
				} else {
					c.SleepControl(func() { <-placed })
				}
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
	if create {
		deadline := time.Now().Add(10 * time.Second)
		for { // the client has met the missing topic
			if _, _, err := cl.PartitionLeader("t", 0); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the client never loaded the missing topic")
			}
			time.Sleep(time.Millisecond)
		}
		place()
	}
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
