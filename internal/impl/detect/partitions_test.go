package detect

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/changelog"
	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// newTestChangelog starts kfake with a 4-partition source topic "events"
// and returns a changelog over it.
func newTestChangelog(t *testing.T) *changelog.Store {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	conf, err := service.NewConfigSpec().Fields(changelog.Fields()...).ParseYAML(fmt.Sprintf(`
seed_brokers: [ %q ]
topic: state
transaction_timeout: 5s
timeout: 20s
`, c.ListenAddrs()[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := changelog.NewStore(conf)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// worker is one detection worker's partitioned state.
func newTestWorker(t *testing.T, cl *changelog.Store, rs *detect.RuleSet) *partitionedDetector {
	p := newPartitionedDetector(cl, rs, detect.EngineOptions{}, nil, service.MockResources(),
		func(int) time.Duration { return 10 * time.Millisecond })
	t.Cleanup(func() { p.close() })
	return p
}

// compileRules compiles rule sources given inline.
func compileRules(t *testing.T, srcs ...string) *detect.RuleSet {
	t.Helper()
	dir := t.TempDir()
	for i, src := range srcs {
		writeRuleFile(t, dir, fmt.Sprintf("rule%d.cel", i), src)
	}
	rs, err := detect.LoadPaths([]string{dir}, detect.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func process(t *testing.T, e *detect.Engine, raw []byte) detect.Result {
	t.Helper()
	res, err := e.Process(raw)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var (
	fail          = detecttest.Fail
	login         = detecttest.Login
	thresholdRule = detecttest.ThresholdRule
	previousRule  = detecttest.PreviousRule
	dedupRule     = detecttest.DedupRule
)

// sourceBatch makes messages of events.<partition> at offsets from, from+1, ….
func sourceBatch(partition int32, from int64, events [][]byte) service.MessageBatch {
	b := make(service.MessageBatch, len(events))
	for i, e := range events {
		m := service.NewMessage(e)
		m.MetaSetMut("kafka_topic", "events")
		m.MetaSetMut("kafka_partition", int64(partition))
		m.MetaSetMut("kafka_offset", from+int64(i))
		b[i] = m
	}
	return b
}

// emitted is what a worker wrote out for one record.
type emitted struct{ ids, body string }

func collect(t *testing.T, out service.MessageBatch) map[int64]emitted {
	t.Helper()
	got := map[int64]emitted{}
	for _, m := range out {
		off, err := metaInt(m, "kafka_offset")
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := m.MetaGet(meta.DetectionIDs)
		body, _ := m.AsBytes()
		got[off] = emitted{ids, string(body)}
	}
	return got
}

func mustProcess(t *testing.T, p *partitionedDetector, b service.MessageBatch) map[int64]emitted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.processBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, out)
}

// A brute force split over two workers: the second restores the first's
// count and alerts on the third failure, under the same alert id it would
// have had in one process.
func TestPartitionedStateMovesBetweenWorkers(t *testing.T) {
	cl := newTestChangelog(t)
	rs := compileRules(t, thresholdRule, previousRule)
	w1 := newTestWorker(t, cl, rs)
	got := mustProcess(t, w1, sourceBatch(2, 0, [][]byte{fail(0, "ann"), fail(time.Minute, "ann"), login(0, "bob", "Paris")}))
	for off, e := range got {
		if e.ids != "" {
			t.Fatalf("offset %d tagged %q before the threshold", off, e.ids)
		}
	}
	w2 := newTestWorker(t, cl, rs)
	got = mustProcess(t, w2, sourceBatch(2, 3, [][]byte{fail(2*time.Minute, "ann"), login(time.Hour, "bob", "Tokyo")}))
	ref := detect.NewEngine(rs, detect.EngineOptions{})
	for _, e := range [][]byte{fail(0, "ann"), fail(time.Minute, "ann"), login(0, "bob", "Paris")} {
		process(t, ref, e)
	}
	wantT := process(t, ref, fail(2*time.Minute, "ann"))
	wantP := process(t, ref, login(time.Hour, "bob", "Tokyo"))
	if got[3].ids != "T" || got[3].body != string(wantT.Out) {
		t.Errorf("third failure on the second worker: %+v, want %s", got[3], wantT.Out)
	}
	if got[4].ids != "P" || got[4].body != string(wantP.Out) {
		t.Errorf("login after the move: %+v, want %s", got[4], wantP.Out)
	}
	// Another partition's state is separate.
	got = mustProcess(t, w2, sourceBatch(1, 0, [][]byte{fail(3*time.Minute, "ann")}))
	if got[0].ids != "" {
		t.Errorf("partition 1 saw partition 2's failures: %+v", got[0])
	}
}

// Records re-delivered after a move: those before the last committed batch
// are dropped, those of it are written out again byte for byte, later ones
// are evaluated.
func TestPartitionedStateRedelivery(t *testing.T) {
	cl := newTestChangelog(t)
	rs := compileRules(t, thresholdRule)
	w1 := newTestWorker(t, cl, rs)
	evs := make([][]byte, 12)
	for i := range evs {
		evs[i] = fail(time.Duration(i)*time.Second, "ann")
	}
	mustProcess(t, w1, sourceBatch(0, 0, evs[:4]))
	first := mustProcess(t, w1, sourceBatch(0, 4, evs[4:8]))
	// w1 dies before its output acknowledged offsets 4-7; the consumer group
	// committed offset 2.
	w2 := newTestWorker(t, cl, rs)
	got := mustProcess(t, w2, sourceBatch(0, 2, evs[2:12]))
	for off := int64(2); off < 4; off++ {
		if _, ok := got[off]; ok {
			t.Errorf("offset %d of an acknowledged batch written out again", off)
		}
	}
	for off := int64(4); off < 8; off++ {
		if got[off] != first[off] {
			t.Errorf("offset %d written out again as %+v, first as %+v", off, got[off], first[off])
		}
	}
	for off := int64(8); off < 12; off++ {
		if got[off].ids != "T" || !strings.Contains(got[off].body, fmt.Sprintf(`"count":%d`, off+1)) {
			t.Errorf("offset %d: %+v, want the threshold counting %d failures", off, got[off], off+1)
		}
	}
	// The same worker gets the batch again (nacked downstream): same output,
	// nothing counted twice.
	again := mustProcess(t, w2, sourceBatch(0, 8, evs[8:12]))
	for off := int64(8); off < 12; off++ {
		if again[off] != got[off] {
			t.Errorf("nacked offset %d written out as %+v, first as %+v", off, again[off], got[off])
		}
	}
}

// A worker that kept running after its partition moved (a zombie) is fenced:
// its next commit fails, it restores the state the new owner committed and
// does not count anything twice.
func TestPartitionedStateFencesZombie(t *testing.T) {
	cl := newTestChangelog(t)
	rs := compileRules(t, thresholdRule)
	zombie := newTestWorker(t, cl, rs)
	mustProcess(t, zombie, sourceBatch(3, 0, [][]byte{fail(0, "ann")}))
	owner := newTestWorker(t, cl, rs)
	got := mustProcess(t, owner, sourceBatch(3, 1, [][]byte{fail(time.Second, "ann")}))
	if got[1].ids != "" {
		t.Fatalf("second failure tagged: %+v", got[1])
	}
	// The zombie still holds offset 1 in flight and processes it again.
	got = mustProcess(t, zombie, sourceBatch(3, 1, [][]byte{fail(time.Second, "ann")}))
	if got[1].ids != "" {
		t.Fatalf("zombie counted offset 1 twice: %+v", got[1])
	}
	got = mustProcess(t, zombie, sourceBatch(3, 2, [][]byte{fail(2*time.Second, "ann")}))
	if got[2].ids != "T" || !strings.Contains(got[2].body, `"count":3`) {
		t.Fatalf("third failure: %+v", got[2])
	}
	// The owner, fenced in turn, restores and goes on from there.
	got = mustProcess(t, owner, sourceBatch(3, 3, [][]byte{fail(3*time.Second, "ann")}))
	if got[3].ids != "T" || !strings.Contains(got[3].body, `"count":4`) {
		t.Fatalf("fourth failure: %+v", got[3])
	}
}

// Random batch boundaries, crashes at random points with the consumer
// group's commit lagging, zombies and nacks: every record written out is
// exactly what one engine running over the partition once gives it.
func TestPartitionedStateMatchesOneRun(t *testing.T) {
	cl := newTestChangelog(t)
	rs := compileRules(t, thresholdRule, previousRule, dedupRule)
	r := rand.New(rand.NewPCG(7, 7))
	users := []string{"ann", "bob", "cy"}
	cities := []string{"Paris", "Tokyo", "Lima"}
	var evs [][]byte
	for i := range 400 {
		at := time.Duration(i) * 20 * time.Second
		u := users[r.IntN(len(users))]
		if r.IntN(3) == 0 {
			evs = append(evs, login(at, u, cities[r.IntN(len(cities))]))
		} else {
			evs = append(evs, fail(at, u))
		}
	}
	ref := detect.NewEngine(rs, detect.EngineOptions{})
	want := map[int64]emitted{}
	for i, e := range evs {
		res := process(t, ref, e)
		want[int64(i)] = emitted{detectionIDs(res.Detections), string(res.Out)}
	}

	worker := newTestWorker(t, cl, rs)
	var zombie *partitionedDetector
	var zombieBatch service.MessageBatch
	seen := map[int64]int{}
	committed, next := int64(0), int64(0)
	crashes, zombies, nacks := 0, 0, 0
	check := func(got map[int64]emitted) {
		for off, e := range got {
			seen[off]++
			if e != want[off] {
				t.Fatalf("offset %d written out as %+v, one run gives %+v", off, e, want[off])
			}
		}
	}
	for next < int64(len(evs)) {
		n := min(int64(1+r.IntN(25)), int64(len(evs))-next)
		batch := func() service.MessageBatch { return sourceBatch(0, next, evs[next:next+n]) }
		check(mustProcess(t, worker, batch()))
		switch x := r.IntN(10); {
		case x == 0: // crash before the output acknowledged the batch
			crashes++
			zombie, zombieBatch = worker, batch()
			worker = newTestWorker(t, cl, rs)
			next = committed
			continue
		case x == 1: // nacked downstream: delivered again to the same worker
			nacks++
			check(mustProcess(t, worker, batch()))
		case x == 2 && zombie != nil: // the crashed one comes back to life once
			zombies++
			check(mustProcess(t, zombie, zombieBatch))
			// and one the owner has just evaluated: its stale state makes
			// it evaluate, the commit is fenced, it restores and replays.
			check(mustProcess(t, zombie, batch()))
			zombie = nil
		}
		next += n
		if r.IntN(3) == 0 {
			committed = next
		}
	}
	for off := range want {
		if seen[off] == 0 {
			t.Errorf("offset %d never written out", off)
		}
	}
	t.Logf("%d records, %d crashes, %d nacks, %d zombie batches; every output identical to one run", len(evs), crashes, nacks, zombies)
	if crashes == 0 || zombies == 0 {
		t.Fatal("the random schedule had no crash or no zombie; change the seed")
	}
}

// A changelog block is checked at construction, with no I/O.
func TestChangelogConfigErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"changelog: {topic: mine}": "seed_brokers must list at least one broker",
		"state_file: /tmp/x.json\nchangelog: {seed_brokers: [localhost:9092]}":    "exclusive",
		"changelog: {seed_brokers: [localhost:9092], topic: ' '}":                 "topic must not be empty",
		"changelog: {seed_brokers: [localhost:9092], transaction_timeout: 10ms}":  "transaction_timeout must be at least 1s",
		"changelog: {seed_brokers: [localhost:9092], sasl: [{mechanism: PLAIN}]}": "sasl",
	} {
		conf, err := ConfigSpec().ParseYAML(yaml, nil)
		if err == nil {
			_, err = newProcessorFromConfig(conf, service.MockResources(), testProduct)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", yaml, err, want)
		}
	}
	conf, err := ConfigSpec().ParseYAML("changelog: {seed_brokers: [127.0.0.1:1]}", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessorFromConfig(conf, service.MockResources(), testProduct)
	if _, ok := p.state.(*partitionedDetector); err != nil || !ok {
		t.Fatalf("valid changelog (no broker there; construction does no I/O): %v", err)
	}
	p.Close(context.Background())
}

// A reloaded rule set reaches every partition's engine; an unchanged rule
// keeps its state there, and a partition released while idle is restored
// from the changelog with it.
func TestPartitionedStateReloadAndEviction(t *testing.T) {
	cl := newTestChangelog(t)
	w := newTestWorker(t, cl, compileRules(t, thresholdRule))
	mustProcess(t, w, sourceBatch(0, 0, [][]byte{fail(0, "ann"), fail(time.Second, "ann")}))
	w.swap(compileRules(t, thresholdRule, dedupRule))
	got := mustProcess(t, w, sourceBatch(0, 2, [][]byte{fail(2*time.Second, "ann"), login(3*time.Second, "ann", "Paris")}))
	if got[2].ids != "T" || got[3].ids != "D" {
		t.Fatalf("after the reload: %+v", got)
	}
	w.engines.EvictIdle(0)
	if n := w.engines.Held(); n != 0 {
		t.Fatalf("%d partitions still held after eviction", n)
	}
	got = mustProcess(t, w, sourceBatch(0, 4, [][]byte{fail(4*time.Second, "ann")}))
	if got[4].ids != "T" || !strings.Contains(got[4].body, `"count":4`) {
		t.Fatalf("after eviction and restore: %+v", got[4])
	}
}

// A changelog whose brokers refuse connections: cel_detect's log names the
// cause (a refused connection), not only that something is not connected.
func TestChangelogUnreachableNamesTheCause(t *testing.T) {
	b := service.NewStreamBuilder()
	logs := &testkit.Buffer{}
	b.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
	if err := b.AddInputYAML(`
generate:
  count: 1
  interval: ""
  mapping: |
    meta kafka_topic = "events"
    meta kafka_partition = 0
    meta kafka_offset = 0
    root = {"uuid": "u1", "published": "2026-01-01T00:00:00Z", "eventType": "user.session.start"}
`); err != nil {
		t.Fatal(err)
	}
	if err := b.AddProcessorYAML(`
cel_detect:
  changelog:
    seed_brokers: [ "127.0.0.1:1" ]
    topic: state
    timeout: 2s
`); err != nil {
		t.Fatal(err)
	}
	if err := b.AddBatchConsumerFunc(func(context.Context, service.MessageBatch) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	defer func() { _ = s.StopWithin(10 * time.Second) }()
	testkit.Until(t, "the changelog's connection failure and its cause in the log", func() (bool, string) {
		out := logs.String()
		return strings.Contains(out, "the state changelog") && strings.Contains(out, "refused"), out
	})
}
