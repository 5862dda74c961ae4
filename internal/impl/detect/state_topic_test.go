package detect

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const testStateTopic = "detect.state"

func stateTopicConf(c *kfake.Cluster) string {
	return fmt.Sprintf("state_topic:\n  seed_brokers: [ %q ]\n  topic: %s\n  key_prefix: pipeline-a\n  restore_timeout: 20s\n", c.ListenAddrs()[0], testStateTopic)
}

// eveFailure is the i-th failed login of eve, a minute apart.
func eveFailure(i int) []byte {
	return ev(time.Duration(i)*time.Minute, map[string]any{
		"uuid":      fmt.Sprintf("fail-%d", i),
		"eventType": "user.session.start",
		"actor":     map[string]any{"alternateId": "eve@acme.io"},
		"outcome":   map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
	})
}

// runBatch processes the events as one batch and splits the output into
// events and state records, checking the state records' metadata.
func runBatch(t *testing.T, p *processor, events ...[]byte) (evs, state service.MessageBatch) {
	t.Helper()
	in := make(service.MessageBatch, len(events))
	for i, e := range events {
		in[i] = service.NewMessage(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.ProcessBatch(ctx, in)
	if err != nil || len(out) != 1 {
		t.Fatalf("batches %v, err %v", out, err)
	}
	for _, m := range out[0] {
		if v, _ := m.MetaGet(meta.DetectionState); v != "true" {
			evs = append(evs, m)
			continue
		}
		topic, _ := m.MetaGet(meta.KafkaTopic)
		key, _ := m.MetaGet(meta.KafkaKey)
		keep, _ := m.MetaGet(meta.KafkaNoDeadLetter)
		if topic != testStateTopic || !strings.HasPrefix(key, "pipeline-a\x00") || keep != "true" {
			t.Fatalf("state record with topic %q, key %q, kafka_no_dead_letter %q", topic, key, keep)
		}
		state = append(state, m)
	}
	return evs, state
}

// writeState writes state records in one transaction, as kafka_producer
// does, and commits or aborts it.
func writeState(t *testing.T, c *kfake.Cluster, recs service.MessageBatch, commit bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("pipeline-a"), kgo.ProducerBatchMaxBytes(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var produced []*kgo.Record
	for _, m := range recs {
		topic, _ := m.MetaGet(meta.KafkaTopic)
		key, _ := m.MetaGet(meta.KafkaKey)
		value, _ := m.AsBytes()
		if v, _ := m.MetaGet(meta.KafkaTombstone); v == "true" {
			value = nil
		}
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		produced = append(produced, r)
	}
	// As the output does: a fresh client's first commit can otherwise turn
	// into an abort (kafkax.AwaitProducedPartitions).
	if err := kafkax.AwaitProducedPartitions(ctx, cl, produced...); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// Four failures committed with their batches' state, the process killed
// (no Close), a new one: it restores the state from the topic, and the
// fifth failure is the brute force, as in an uninterrupted run.
func TestStateTopicAcrossCrash(t *testing.T) {
	c := testkit.KafkaCluster(t)
	crashed := newTestProcessor(t, stateTopicConf(c))
	for i := range 4 {
		evs, state := runBatch(t, crashed, eveFailure(i))
		if len(evs) != 1 || len(state) == 0 {
			t.Fatalf("batch %d: %d events and %d state records", i, len(evs), len(state))
		}
		writeState(t, c, state, true)
	}
	crashed.stop() // and never closed: a crash

	p := newTestProcessor(t, stateTopicConf(c))
	evs, _ := runBatch(t, p, eveFailure(4))
	if ids, _ := evs[0].MetaGet(meta.DetectionIDs); ids != "Okta.BruteForceLogins" {
		t.Fatalf("fifth failure after a crash: detection_ids %q, want the brute force of the 4 committed failures and it", ids)
	}

	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		rcs, err := adm.DescribeTopicConfigs(ctx, testStateTopic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(testStateTopic, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, cfg := range rc.Configs {
			if cfg.Key == "cleanup.policy" && (cfg.Value == nil || *cfg.Value != "compact") {
				t.Errorf("state topic cleanup.policy %v, want compact", cfg.Value)
			}
		}
	})
}

// A batch whose transaction aborts leaves no state behind: the next
// process counts from what was committed before it.
func TestStateTopicAbortedBatchLeavesNoState(t *testing.T) {
	c := testkit.KafkaCluster(t)
	first := newTestProcessor(t, stateTopicConf(c))
	_, state := runBatch(t, first, eveFailure(0))
	writeState(t, c, state, true)
	_, state = runBatch(t, first, eveFailure(1), eveFailure(2), eveFailure(3))
	writeState(t, c, state, false) // the output's transaction aborted
	first.stop()

	p := newTestProcessor(t, stateTopicConf(c))
	evs, _ := runBatch(t, p, eveFailure(4))
	if ids, _ := evs[0].MetaGet(meta.DetectionIDs); ids != "" {
		t.Fatalf("after an aborted batch of 3 failures, a fifth: detection_ids %q, want none (2 counted)", ids)
	}
	// The aborted batch read again (the cursor did not move past it) makes
	// the count 5 at its last event, as in an uninterrupted run.
	evs, _ = runBatch(t, p, eveFailure(1), eveFailure(2), eveFailure(3))
	if ids, _ := evs[2].MetaGet(meta.DetectionIDs); ids != "Okta.BruteForceLogins" {
		t.Fatalf("aborted batch read again: detection_ids %q on its last failure, want the brute force", ids)
	}
}

// detections_to_alerts passes state records on untouched: no event, no
// alert, topic and key kept.
func TestStateRecordsPassDetectionsToAlerts(t *testing.T) {
	conf, err := detectionsToAlertsSpec().ParseYAML("{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAlertsProcessor(conf)
	if err != nil {
		t.Fatal(err)
	}
	m := service.NewMessage([]byte(`{"f":"x","detections":[{"id":"R","alert_id":"a"}]}`))
	m.MetaSetMut(meta.DetectionState, "true")
	m.MetaSetMut(meta.KafkaTopic, testStateTopic)
	m.MetaSetMut(meta.KafkaKey, "pipeline-a\x00t\x00R\x00k")
	out, err := a.Process(context.Background(), m)
	if err != nil || len(out) != 1 || out[0] != m {
		t.Fatalf("got %v, %v", out, err)
	}
	if topic, _ := m.MetaGet(meta.KafkaTopic); topic != testStateTopic {
		t.Fatalf("topic rewritten to %q", topic)
	}
}

// state_topic is exclusive with state_file and changelog, and its fields
// are checked at construction.
func TestStateTopicConfigErrors(t *testing.T) {
	broker := "state_topic:\n  seed_brokers: [ localhost:9092 ]\n"
	for yaml, want := range map[string]string{
		broker + "state_file: /tmp/x.json":                          "state_file and state_topic are exclusive",
		broker + "changelog:\n  seed_brokers: [ localhost:9092 ]\n": "state_topic and changelog are exclusive",
		broker + "  topic: ''\n":                                    "topic must not be empty",
		broker + "  partitions: 0\n":                                "partitions must be at least 1",
		"state_topic:\n  topic: other\n":                            "state_topic: seed_brokers must list at least one broker",
		broker + "  key_prefix: \"\"\n":                             "key_prefix must not be empty",
	} {
		conf, err := ConfigSpec().ParseYAML(yaml, nil)
		if err != nil {
			t.Fatalf("%s: %v", yaml, err)
		}
		if _, err := newProcessorFromConfig(conf, service.MockResources(), testProduct); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", yaml, err, want)
		}
	}
}

// Restoring applies the topic record by record to the engine, never holding
// a copy of the log. Threshold groups, sequences and first_seen keys are
// kept frozen as read (their bytes, checked); remembered values and dedup
// openings are rebuilt as maps and strings, and the topic's record keys
// (each carries the rule id) are longer than the state keys. About 3× the
// bytes read; this bound keeps it from growing.
func TestStateTopicRestoreAllocations(t *testing.T) {
	c := testkit.KafkaCluster(t)
	writer := newTestProcessor(t, stateTopicConf(c))
	users := testkit.Scaled(10_000, 5)
	for from := 0; from < users; from += 500 {
		batch := make([][]byte, 0, 500)
		for i := from; i < from+500; i++ {
			batch = append(batch, ev(time.Duration(i)*time.Millisecond, map[string]any{
				"uuid":      fmt.Sprintf("u-%d", i),
				"eventType": "user.session.start",
				"actor":     map[string]any{"alternateId": fmt.Sprintf("user%d@acme.io", i)},
				"client":    map[string]any{"ipAddress": fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)},
				"outcome":   map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
			}))
		}
		_, state := runBatch(t, writer, batch...)
		writeState(t, c, state, true)
	}
	writer.stop()

	// The records as the restore reads them; what applying them allocates
	// is measured apart from the in-process broker serving them.
	d := writer.state.(*topicStateDetector)
	var recs []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkax.ReadCommitted(ctx, d.conf.kafka.Opts(), testStateTopic, nil, func(r *kgo.Record) {
		recs = append(recs, r)
	}); err != nil {
		t.Fatal(err)
	}
	// The engine's empty state (every rule's shards) is made before the
	// restore, as a restarting processor makes it, whatever it restores.
	eng := detect.NewEngine(d.rules, d.opts)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rs, err := detect.NewStateRestore(eng)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		key, _ := bytes.CutPrefix(r.Key, []byte("pipeline-a\x00"))
		if err := rs.Apply(key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rs.Finish(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	n, size := rs.Read()
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("restored %d records, %d bytes; allocated %d bytes (%.2f×)", n, size, alloc, float64(alloc)/float64(size))
	if n < users {
		t.Errorf("restored %d records, want at least %d", n, users)
	}
	// The race detector's runtime allocates for itself; the bound is
	// checked, on the full size, in the pass without it.
	if !testkit.Race && float64(alloc) > 2*float64(size) {
		t.Errorf("restoring %d records of %d bytes allocated %d bytes, want at most 2× what was read", n, size, alloc)
	}
}
