package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	_ "github.com/oktadetect/oktadetect/internal/impl/kafka"
	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// Detection workers in one process (issue 9): k stage-2 pipelines
// (kafka_consumer → cel_detect with the pack → drop) in one consumer group
// drain a 12-partition topic of realistic events keyed by actor, as stage 1
// writes it. Reported: events/s; compare the k=2, 3 figures with k=1 of the
// same run (…_speedup: throughput over one worker's with the same threads). "memory" is one worker whose state stays in memory (no
// changelog), the cost of the changelog. The clock starts once the group is
// stable (rebalancing at start-up is not measured) and the events are
// produced then. WORKERS_EVENTS sets the number of events (default 50,000).
//
//	go test -run XXX -bench DetectWorkers -benchtime 1x .

const workersPartitions = 12

func workersEventCount() int {
	n := 50_000
	if s := os.Getenv("WORKERS_EVENTS"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}

var workersCorpus [][]byte

// workersKeys are the corpus events' record keys: the actor, as stage 1 keys
// them (uuid without one).
var workersKeys [][]byte

func workersLoad(b *testing.B) {
	if workersCorpus != nil {
		return
	}
	workersCorpus = corpus.Events(workersEventCount())
	for _, e := range workersCorpus {
		var ev struct {
			UUID  string `json:"uuid"`
			Actor struct {
				AlternateID string `json:"alternateId"`
			} `json:"actor"`
		}
		if err := json.Unmarshal(e, &ev); err != nil {
			b.Fatal(err)
		}
		key := ev.Actor.AlternateID
		if key == "" {
			key = ev.UUID
		}
		workersKeys = append(workersKeys, []byte(key))
	}
}

// workersProduce writes the corpus into the events topic.
func workersProduce(b *testing.B, brokers string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Error(err)
		return
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(workersCorpus))
	for i, e := range workersCorpus {
		recs[i] = &kgo.Record{Topic: "events", Key: workersKeys[i], Value: e}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Error(err)
	}
}

// workersStable waits until the group has k members owning partitions.
func workersStable(b *testing.B, brokers, group string, k int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		groups, err := adm.DescribeGroups(ctx, group)
		cancel()
		if g, ok := groups[group]; err == nil && ok && g.State == "Stable" && len(g.Members) == k {
			owning := 0
			for _, m := range g.Members {
				if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
					owning++
				}
			}
			if owning == k {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("group %s never had %d members owning partitions", group, k)
}

// runWorkers starts k workers, waits until the group is stable, then
// produces the corpus and returns the time from then until every event has
// passed cel_detect.
func runWorkers(b *testing.B, brokers string, k, threads int, changelog bool) time.Duration {
	var done atomic.Int64
	want := int64(len(workersCorpus))
	finished := make(chan struct{})
	var streams []*service.Stream
	group := fmt.Sprintf("g%d-%v-%d", k, changelog, time.Now().UnixNano())
	state := ""
	if changelog {
		state = fmt.Sprintf("\n  changelog:\n    seed_brokers: [ %q ]\n    topic: %s-state\n    transactional_id_prefix: %s", brokers, group, group)
	}
	for i := range k {
		sb := service.NewStreamBuilder()
		sb.SetThreads(threads)
		if err := sb.AddInputYAML(fmt.Sprintf("kafka_consumer:\n  seed_brokers: [ %q ]\n  topics: [ events ]\n  consumer_group: %s\n  client_id: w%d\n", brokers, group, i)); err != nil {
			b.Fatal(err)
		}
		if err := sb.AddProcessorYAML("cel_detect:" + map[bool]string{true: state, false: " {}"}[changelog]); err != nil {
			b.Fatal(err)
		}
		if err := sb.SetLoggerYAML("level: warn"); err != nil {
			b.Fatal(err)
		}
		if err := sb.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
			if done.Add(int64(len(batch))) >= want {
				select {
				case <-finished:
				default:
					close(finished)
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		s, err := sb.Build()
		if err != nil {
			b.Fatal(err)
		}
		streams = append(streams, s)
	}
	for _, s := range streams {
		go func() { _ = s.Run(context.Background()) }()
	}
	workersStable(b, brokers, group, k)
	start := time.Now()
	go workersProduce(b, brokers)
	select {
	case <-finished:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d events after 10 minutes", done.Load(), want)
	}
	elapsed := time.Since(start)
	for _, s := range streams {
		_ = s.StopWithin(30 * time.Second)
	}
	return elapsed
}

func BenchmarkDetectWorkers(b *testing.B) {
	// threads -1: each worker uses every core (Benthos' default), so on a
	// small machine one worker already takes it all; threads 1: one core
	// per worker, which shows how workers add up until the cores run out.
	shapes := []struct {
		name       string
		k, threads int
		changelog  bool
	}{
		{"memory_1", 1, -1, false},
		{"changelog_1", 1, -1, true},
		{"changelog_2", 2, -1, true},
		{"changelog_3", 3, -1, true},
		{"t1_changelog_1", 1, 1, true},
		{"t1_changelog_2", 2, 1, true},
		{"t1_changelog_3", 3, 1, true},
	}
	workersLoad(b)
	totals := make([]time.Duration, len(shapes))
	for range b.N {
		for i, sh := range shapes { // interleaved: every shape sees the same background load
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(workersPartitions, "events"))
			if err != nil {
				b.Fatal(err)
			}
			totals[i] += runWorkers(b, c.ListenAddrs()[0], sh.k, sh.threads, sh.changelog)
			c.Close()
		}
	}
	n := float64(len(workersCorpus) * b.N)
	for i, sh := range shapes {
		b.ReportMetric(n/totals[i].Seconds(), sh.name+"_events/s")
		base := totals[1]
		if sh.threads == 1 {
			base = totals[4]
		}
		b.ReportMetric(base.Seconds()/totals[i].Seconds(), sh.name+"_speedup")
	}
}
