package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	// Benthos core components (tracer, buffers, …) for the in-process workers.
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	// kafka_consumer for the in-process workers.
	_ "github.com/oktadetect/oktadetect/internal/impl/kafka"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// The scale-out tests: workers in one consumer group share okta.system_log's
// partitions. Events carry their uuid, their actor (the record key) and the
// actor's sequence number as headers, so processing can be counted and its
// order checked without decoding bodies.
const (
	scalePartitions = 12
	scaleEvents     = 100000
	scaleActors     = 3000
)

// scaleEvent is one produced event.
type scaleEvent struct {
	uuid, actor string
	seq         int
}

// scaleEventsFor makes n events of scaleActors actors, each actor's events
// numbered 1, 2, … in production order.
func scaleEventsFor(n int, seed uint64) []scaleEvent {
	r := rand.New(rand.NewPCG(seed, seed))
	seqs := make([]int, scaleActors)
	evs := make([]scaleEvent, n)
	for i := range evs {
		a := r.IntN(scaleActors)
		seqs[a]++
		evs[i] = scaleEvent{uuid: fmt.Sprintf("%016x-%08d", seed, i), actor: fmt.Sprintf("user%04d@example.com", a), seq: seqs[a]}
	}
	return evs
}

// scaleProduce writes events keyed by actor with the default (murmur2, as
// kafka_producer) partitioner, as stage 1 does.
func scaleProduce(t testing.TB, brokers []string, evs []scaleEvent) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const chunk = 5000
	for start := 0; start < len(evs); start += chunk {
		var rs []*kgo.Record
		for _, e := range evs[start:min(start+chunk, len(evs))] {
			rs = append(rs, &kgo.Record{
				Topic: eventsTopic,
				Key:   []byte(e.actor),
				Value: fmt.Appendf(nil, `{"uuid":%q,"eventType":"user.session.start","actor":{"alternateId":%q}}`, e.uuid, e.actor),
				Headers: []kgo.RecordHeader{
					{Key: "okta_uuid", Value: []byte(e.uuid)},
					{Key: "okta_org", Value: []byte("acme.okta.com")},
					{Key: "seq", Value: []byte(strconv.Itoa(e.seq))},
				},
			})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Errorf("producing events: %v", err)
			return
		}
	}
}

// processed is one record handled by a worker.
type processed struct {
	worker    string
	partition int32
	offset    int64
	actor     string
	uuid      string
	seq       int
}

// scaleLog collects what every worker processed, in processing order.
type scaleLog struct {
	mu       sync.Mutex
	records  []processed
	byUUID   map[string]int
	byWorker map[string]int
	changed  chan struct{}
}

func newScaleLog() *scaleLog {
	return &scaleLog{byUUID: map[string]int{}, byWorker: map[string]int{}, changed: make(chan struct{})}
}

func (l *scaleLog) add(p processed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, p)
	l.byUUID[p.uuid]++
	l.byWorker[p.worker]++
	close(l.changed)
	l.changed = make(chan struct{})
}

// waitFor waits until cond holds (checked under the lock) or fails the test.
func (l *scaleLog) waitFor(t *testing.T, timeout time.Duration, what string, cond func(*scaleLog) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		ok, ch := cond(l), l.changed
		distinct, total := len(l.byUUID), len(l.records)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s: %d distinct events, %d records processed", timeout, what, distinct, total)
		}
	}
}

func (l *scaleLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byUUID)
}

// check verifies that every event was processed, returns the number of
// duplicates, and checks order: in each partition, each worker's stretch of
// ownership runs through consecutive offsets, and a stretch starts no later
// than right after the previous one ended (nothing skipped). Within a
// stretch, each actor's events are in production order.
func (l *scaleLog) check(t *testing.T, evs []scaleEvent) (dups int, handoffs int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for _, e := range evs {
		switch n := l.byUUID[e.uuid]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events never processed", missing, len(evs))
	}
	if len(l.byUUID) != len(evs) {
		t.Errorf("%d distinct events processed, want %d", len(l.byUUID), len(evs))
	}
	byPartition := map[int32][]processed{}
	for _, p := range l.records {
		byPartition[p.partition] = append(byPartition[p.partition], p)
	}
	for part, ps := range byPartition {
		lastSeq := map[string]int{}
		for i, p := range ps {
			if i == 0 {
				if p.offset != 0 {
					t.Errorf("partition %d: first processed offset %d, want 0", part, p.offset)
				}
				lastSeq[p.actor] = p.seq
				continue
			}
			prev := ps[i-1]
			if p.worker != prev.worker {
				handoffs++
				if p.offset > prev.offset+1 {
					t.Errorf("partition %d: %s started at offset %d after %s stopped at %d: records skipped", part, p.worker, p.offset, prev.worker, prev.offset)
				}
				clear(lastSeq)
			} else if p.offset != prev.offset+1 {
				t.Errorf("partition %d: %s processed offset %d after %d", part, p.worker, p.offset, prev.offset)
				return dups, handoffs
			}
			if s, ok := lastSeq[p.actor]; ok && p.seq <= s {
				t.Errorf("partition %d: %s processed %s's event %d after its event %d", part, p.worker, p.actor, p.seq, s)
				return dups, handoffs
			}
			lastSeq[p.actor] = p.seq
		}
	}
	return dups, handoffs
}

// scaleWorker is one in-process pipeline: kafka_consumer → a recorder.
type scaleWorker struct {
	stream *service.Stream
	done   chan error
}

func startScaleWorker(t *testing.T, brokers []string, group, name string, log *scaleLog) *scaleWorker {
	t.Helper()
	return startStreamWorker(t, fmt.Sprintf(`
kafka_consumer:
  seed_brokers: [ %q ]
  topics: [ %s ]
  consumer_group: %s
  client_id: %s
  commit_period: 500ms
`, strings.Join(brokers, ","), eventsTopic, group, name), "", func(_ context.Context, batch service.MessageBatch) error {
		for _, m := range batch {
			part, _ := m.MetaGetMut("kafka_partition")
			off, _ := m.MetaGetMut("kafka_offset")
			key, _ := m.MetaGet("kafka_key")
			uuid, _ := m.MetaGet("okta_uuid")
			seqS, _ := m.MetaGet("seq")
			seq, _ := strconv.Atoi(seqS)
			log.add(processed{worker: name, partition: int32(part.(int64)), offset: off.(int64), actor: key, uuid: uuid, seq: seq})
		}
		return nil
	})
}

// startStreamWorker runs an in-process pipeline: the input, an optional
// processor, and consume as its output; it is stopped at the test's end.
func startStreamWorker(t *testing.T, input, processor string, consume func(context.Context, service.MessageBatch) error) *scaleWorker {
	t.Helper()
	b := service.NewStreamBuilder()
	if err := b.AddInputYAML(input); err != nil {
		t.Fatal(err)
	}
	if processor != "" {
		if err := b.AddProcessorYAML(processor); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetLoggerYAML("level: warn"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddBatchConsumerFunc(consume); err != nil {
		t.Fatal(err)
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	w := &scaleWorker{stream: s, done: make(chan error, 1)}
	go func() { w.done <- s.Run(context.Background()) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop shuts the worker down gracefully: in-flight batches finish, offsets
// are committed and it leaves the group.
func (w *scaleWorker) stop(t *testing.T) {
	if w.stream == nil {
		return
	}
	if err := w.stream.StopWithin(30 * time.Second); err != nil {
		t.Errorf("stopping worker: %v", err)
	}
	<-w.done
	w.stream = nil
}

func newScaleCluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(scalePartitions, eventsTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func workerShares(l *scaleLog) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for w := range l.byWorker {
		names = append(names, w)
	}
	sort.Strings(names)
	var parts []string
	for _, w := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", w, l.byWorker[w]))
	}
	return strings.Join(parts, " ")
}

// Three workers in one group over 12 partitions: each of 100,000 events is
// processed exactly once, in offset order within its partition.
func TestScaleOutThreeWorkersExactlyOnce(t *testing.T) {
	brokers := newScaleCluster(t)
	evs := scaleEventsFor(scaleEvents, 1)

	log := newScaleLog()
	for i := 1; i <= 3; i++ {
		startScaleWorker(t, brokers, "scale-a", fmt.Sprintf("w%d", i), log)
	}
	// The backlog takes about a second: let all three own partitions first,
	// or the first two to join may finish it alone.
	waitGroupAssigned(t, brokers, "scale-a", 3)
	start := time.Now()
	scaleProduce(t, brokers, evs)
	log.waitFor(t, 60*time.Second, "every event", func(l *scaleLog) bool { return len(l.byUUID) == len(evs) })
	elapsed := time.Since(start)
	time.Sleep(time.Second) // anything processed twice would show up now
	dups, handoffs := log.check(t, evs)
	if dups != 0 {
		t.Errorf("%d events processed more than once, want exactly once", dups)
	}
	log.mu.Lock()
	for i := 1; i <= 3; i++ {
		if log.byWorker[fmt.Sprintf("w%d", i)] == 0 {
			t.Errorf("worker w%d processed nothing", i)
		}
	}
	log.mu.Unlock()
	t.Logf("%d events over %d partitions by 3 workers in %v (%.0f events/s): %s; %d partition handoffs, %d duplicates",
		len(evs), scalePartitions, elapsed.Round(time.Millisecond), float64(len(evs))/elapsed.Seconds(), workerShares(log), handoffs, dups)
}

// A third worker joins mid-run while events keep arriving: partitions move to
// it without losing or repeating any event.
func TestScaleOutAddingWorker(t *testing.T) {
	brokers := newScaleCluster(t)
	evs := scaleEventsFor(scaleEvents, 2)
	log := newScaleLog()
	start := time.Now()
	startScaleWorker(t, brokers, "scale-c", "w1", log)
	startScaleWorker(t, brokers, "scale-c", "w2", log)

	waitGroupAssigned(t, brokers, "scale-c", 2)

	produced := make(chan struct{})
	w3Owns := make(chan struct{})
	go func() {
		defer close(produced)
		// Events arrive over a few seconds, in slices; the last third only
		// once w3 owns partitions, so that it has work whatever the timing.
		for i := 0; i < len(evs); i += 5000 {
			if i >= 2*len(evs)/3 {
				<-w3Owns
			}
			scaleProduce(t, brokers, evs[i:min(i+5000, len(evs))])
			time.Sleep(150 * time.Millisecond)
		}
	}()
	log.waitFor(t, 60*time.Second, "a third of the events", func(l *scaleLog) bool { return len(l.byUUID) >= len(evs)/3 })
	at := log.distinct()
	startScaleWorker(t, brokers, "scale-c", "w3", log)
	waitGroupAssigned(t, brokers, "scale-c", 3)
	close(w3Owns)
	<-produced
	log.waitFor(t, 60*time.Second, "every event", func(l *scaleLog) bool { return len(l.byUUID) == len(evs) })
	elapsed := time.Since(start)
	time.Sleep(time.Second)
	dups, handoffs := log.check(t, evs)
	if dups != 0 {
		t.Errorf("%d events processed more than once across the graceful rebalance", dups)
	}
	log.mu.Lock()
	w3 := log.byWorker["w3"]
	log.mu.Unlock()
	if w3 == 0 {
		t.Error("the added worker processed nothing: no partition moved to it")
	}
	t.Logf("%d events, w3 added after %d: %s; %d partition handoffs, %d duplicates, %v",
		len(evs), at, workerShares(log), handoffs, dups, elapsed.Round(time.Millisecond))
}

// scaleKillConfig is a worker for the real binary: kafka_consumer → a record
// per event in topic "processed", in the same partition as its source, with
// the worker's name and the source offset as headers.
const scaleKillConfig = `
http:
  enabled: false
input:
  kafka_consumer:
    seed_brokers: [ "${KAFKA_BROKERS}" ]
    topics: [ okta.system_log ]
    consumer_group: scale-kill
    client_id: ${WORKER}
    commit_period: 500ms
    session_timeout: 3s
    rebalance_timeout: 10s
    rebalance_drain_timeout: 2s
pipeline:
  processors:
    - mapping: |
        meta worker = "${WORKER}"
        meta src_offset = @kafka_offset.string()
output:
  kafka_producer:
    seed_brokers: [ "${KAFKA_BROKERS}" ]
    topic: processed
    key: ${! @kafka_key }
    partitioner: manual
    partition: ${! @kafka_partition }
    metadata:
      include_patterns: [ "^worker$", "^src_offset$", "^okta_uuid$", "^seq$" ]
logger:
  level: info
`

type scaleProc struct {
	name   string
	cmd    *exec.Cmd
	output *testkit.Buffer
}

func startScaleProc(t *testing.T, config, brokers, name string) *scaleProc {
	t.Helper()
	cmd := exec.Command(binary, "-c", config)
	cmd.Env = environ("KAFKA_BROKERS="+brokers, "WORKER="+name)
	p := &scaleProc{name: name, cmd: cmd, output: &testkit.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output.String())
		}
	})
	return p
}

// consumeProcessed follows topic "processed" into log until stop is closed.
func consumeProcessed(t *testing.T, brokers []string, log *scaleLog, stop <-chan struct{}) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("processed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			p := processed{partition: r.Partition, actor: string(r.Key)}
			for _, h := range r.Headers {
				switch h.Key {
				case "worker":
					p.worker = string(h.Value)
				case "src_offset":
					p.offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
				case "okta_uuid":
					p.uuid = string(h.Value)
				case "seq":
					p.seq, _ = strconv.Atoi(string(h.Value))
				}
			}
			log.add(p)
		})
	}
}

// waitGroupAssigned waits until the group is stable with n members that each
// own partitions.
func waitGroupAssigned(t *testing.T, brokers []string, group string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(testkit.Patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		groups, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil {
			if g, ok := groups[group]; ok && g.State == "Stable" && len(g.Members) == n {
				owning := 0
				for _, m := range g.Members {
					if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
						owning++
					}
				}
				if owning == n {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s never had %d members owning partitions (last error %v)", group, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminQuery is an admin client and a 10 s context for one query; call done
// after it.
func adminQuery(t *testing.T, brokers []string) (adm *kadm.Client, ctx context.Context, done func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	return kadm.NewClient(cl), ctx, func() { cancel(); cl.Close() }
}

func groupOffsets(t *testing.T, brokers []string, group string) map[int32]int64 {
	t.Helper()
	return topicOffsets(t, brokers, group, "")
}

// topicOffsets are the group's committed offsets in topic ("": any), by
// partition.
func topicOffsets(t *testing.T, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	adm, ctx, done := adminQuery(t, brokers)
	defer done()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetching %s's offsets: %v", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if topic == "" || o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// Three oktadetect processes share the events; one is SIGKILLed mid-run. Its
// partitions move to the other two after the session timeout and every event
// is processed at least once. Duplicates are counted and must all lie between
// the dead worker's last commit and the last record it processed.
func TestScaleOutWorkerKilled(t *testing.T) {
	brokersList := newScaleCluster(t, kfake.GroupMinSessionTimeout(time.Second), kfake.SeedTopics(scalePartitions, "processed"))
	brokers := strings.Join(brokersList, ",")
	config := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(config, []byte(scaleKillConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	evs := scaleEventsFor(scaleEvents, 3)
	log := newScaleLog()
	stop := make(chan struct{})
	consumed := make(chan struct{})
	go func() { defer close(consumed); consumeProcessed(t, brokersList, log, stop) }()
	defer func() { close(stop); <-consumed }()

	start := time.Now()
	victim := startScaleProc(t, config, brokers, "w1")
	startScaleProc(t, config, brokers, "w2")
	startScaleProc(t, config, brokers, "w3")
	waitGroupAssigned(t, brokersList, "scale-kill", 3)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < len(evs); i += 5000 {
			scaleProduce(t, brokersList, evs[i:min(i+5000, len(evs))])
			time.Sleep(200 * time.Millisecond)
		}
	}()

	log.waitFor(t, 60*time.Second, "w1 to process events", func(l *scaleLog) bool { return l.byWorker["w1"] >= 5000 })
	_ = victim.cmd.Process.Kill()
	killedAt := time.Since(start)
	time.Sleep(300 * time.Millisecond) // its connections are gone; nobody else owns its partitions yet
	atKill := groupOffsets(t, brokersList, "scale-kill")

	<-produced
	log.waitFor(t, 60*time.Second, "every event", func(l *scaleLog) bool { return len(l.byUUID) == len(evs) })
	elapsed := time.Since(start)
	time.Sleep(time.Second)
	dups, handoffs := log.check(t, evs)

	// Where w1 stopped in each partition it owned.
	log.mu.Lock()
	defer log.mu.Unlock()
	lastByVictim := map[int32]int64{}
	for _, p := range log.records {
		if p.worker == "w1" && p.offset >= lastByVictim[p.partition] {
			lastByVictim[p.partition] = p.offset
		}
	}
	bound := 0
	for part, last := range lastByVictim {
		if c := atKill[part]; last >= c {
			bound += int(last - c + 1)
		}
	}
	// Every duplicate lies in a dead worker's partition, at or after its last
	// commit and no later than the last record it processed.
	seen := map[string]bool{}
	for _, p := range log.records {
		if !seen[p.uuid] {
			seen[p.uuid] = true
			continue
		}
		last, owned := lastByVictim[p.partition]
		if !owned || p.offset < atKill[p.partition] || p.offset > last {
			t.Errorf("partition %d offset %d processed again (by %s), outside the dead worker's uncommitted range [%d, %d] (owned %v)",
				p.partition, p.offset, p.worker, atKill[p.partition], last, owned)
			break
		}
	}
	if dups > bound {
		t.Errorf("%d duplicates, more than the %d records the dead worker processed after its last commit", dups, bound)
	}
	moved := 0
	for _, p := range log.records {
		if _, owned := lastByVictim[p.partition]; owned && p.worker != "w1" && p.offset > lastByVictim[p.partition] {
			moved++
		}
	}
	if moved == 0 {
		t.Error("nothing of the dead worker's partitions was processed by the others")
	}
	t.Logf("%d events, 3 worker processes, w1 killed at %v after %d records; its %d partitions moved (%d later records processed by w2/w3); %d duplicates (bound %d); %d handoffs; %s; all processed in %v",
		len(evs), killedAt.Round(time.Millisecond), log.byWorker["w1"], len(lastByVictim), moved, dups, bound, handoffs, workerShares2(log), elapsed.Round(time.Millisecond))
}

// workerShares2 is workerShares with the lock already held.
func workerShares2(l *scaleLog) string {
	var names []string
	for w := range l.byWorker {
		names = append(names, w)
	}
	sort.Strings(names)
	var parts []string
	for _, w := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", w, l.byWorker[w]))
	}
	return strings.Join(parts, " ")
}
