package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
	"github.com/oktadetect/oktadetect/internal/testkit"
	"github.com/oktadetect/oktadetect/plugin"
)

// State that follows partitions: detection workers (kafka_consumer →
// cel_detect with a changelog) share a 12-partition topic of realistic
// events keyed by actor, as stage 1 writes it. Whatever the number of
// workers, and when one joins mid-run, every event leaves with the tags one
// worker owning every partition gives it.

// tagLog collects, per event uuid, the tags every output of it carried.
type tagLog struct {
	mu       sync.Mutex
	tags     map[string]string // uuid → "rule=alert_id,…" (sorted)
	outputs  int
	byWorker map[string]int
	differs  []string // a uuid written out twice with different tags
	changed  chan struct{}
}

func newTagLog() *tagLog {
	return &tagLog{tags: map[string]string{}, byWorker: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (l *tagLog) add(worker, uuid, tags string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outputs++
	l.byWorker[worker]++
	if prev, ok := l.tags[uuid]; ok && prev != tags {
		l.differs = append(l.differs, fmt.Sprintf("%s: %q then %q", uuid, prev, tags))
	}
	l.tags[uuid] = tags
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *tagLog) waitCount(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		got := len(l.tags)
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-l.changed:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d events written out after %v", got, n, timeout)
		}
	}
}

// tagsOf renders an event's detections as "rule=alert_id" pairs.
func tagsOf(body []byte) (uuid, tags string, err error) {
	var ev struct {
		UUID       string `json:"uuid"`
		Detections []struct {
			ID      string `json:"id"`
			AlertID string `json:"alert_id"`
		} `json:"detections"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return "", "", err
	}
	pairs := make([]string, len(ev.Detections))
	for i, d := range ev.Detections {
		pairs[i] = d.ID + "=" + d.AlertID
	}
	sort.Strings(pairs)
	return ev.UUID, strings.Join(pairs, ","), nil
}

// startDetectWorker is one in-process stage-2 worker writing into a tagLog.
func startDetectWorker(t *testing.T, brokers, group, name string, log *tagLog) *scaleWorker {
	t.Helper()
	return startStreamWorker(t, fmt.Sprintf(`
kafka_consumer:
  seed_brokers: [ %q ]
  topics: [ %s ]
  consumer_group: %s
  client_id: %s
  commit_period: 500ms
  session_timeout: 6s
`, brokers, eventsTopic, group, name), fmt.Sprintf(`
cel_detect:
  changelog:
    seed_brokers: [ %q ]
    topic: %s-state
    transactional_id_prefix: %s
`, brokers, group, group), func(_ context.Context, batch service.MessageBatch) error {
		for _, m := range batch {
			if d, _ := m.MetaGet(meta.DetectionDeferred); d == "true" {
				continue // an absence's alert, not the event written again
			}
			body, _ := m.AsBytes()
			uuid, tags, err := tagsOf(body)
			if err != nil {
				return err
			}
			log.add(name, uuid, tags)
		}
		return nil
	})
}

// produceCorpus writes events keyed by actor (uuid without one), as stage 1.
func produceCorpus(t *testing.T, brokers []string, evs [][]byte) {
	t.Helper()
	produceCorpusOf(t, brokers, evs, nil, false)
}

// produceCorpusOf is produceCorpus with, when org is set, the headers
// stage 1 writes: okta_org (org of the event's index) and okta_uuid; with
// byOrg, events are keyed by that org instead of their actor.
func produceCorpusOf(t *testing.T, brokers []string, evs [][]byte, org func(i int) string, byOrg bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const chunk = 5000
	for start := 0; start < len(evs); start += chunk {
		var recs []*kgo.Record
		for i, e := range evs[start:min(start+chunk, len(evs))] {
			var ev struct {
				UUID  string `json:"uuid"`
				Actor struct {
					AlternateID string `json:"alternateId"`
				} `json:"actor"`
			}
			if err := json.Unmarshal(e, &ev); err != nil {
				t.Fatal(err)
			}
			key := ev.Actor.AlternateID
			if key == "" {
				key = ev.UUID
			}
			r := &kgo.Record{Topic: eventsTopic, Key: []byte(key), Value: e}
			if byOrg {
				r.Key = []byte(org(start + i))
			}
			if org != nil {
				r.Headers = []kgo.RecordHeader{{Key: "okta_org", Value: []byte(org(start + i))}, {Key: "okta_uuid", Value: []byte(ev.UUID)}}
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("producing events: %v", err)
		}
	}
}

// runDetectWorkers runs the corpus through workers of one group: start of
// them from the beginning, then one more per entry of later once the log
// holds that many events. It returns the tags per uuid.
//
// What a test of "a worker joins mid-run" needs is a state of the group, not
// a speed: the corpus is produced only once the starting workers all own
// partitions, and for each joiner only joinInFlight events beyond its mark
// are produced before it owns partitions too. So the join happens while
// batches are in flight, and the joiner always has events left to process,
// however fast or slow the machine is.
func runDetectWorkers(t *testing.T, evs [][]byte, group string, start int, later ...int) *tagLog {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(scalePartitions, eventsTopic), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	log := newTagLog()
	var workers []*scaleWorker
	var names []string
	join := func() {
		name := fmt.Sprintf("w%d", len(workers)+1)
		workers = append(workers, startDetectWorker(t, brokers[0], group, name, log))
		names = append(names, name)
	}
	for range start {
		join()
	}
	waitAllOwnPartitions(t, brokers, group, names)
	produced := 0
	for _, at := range later {
		upTo := min(at+joinInFlight, len(evs))
		produceCorpus(t, brokers, evs[produced:upTo])
		produced = upTo
		log.waitCount(t, at, 3*time.Minute)
		join()
		waitAllOwnPartitions(t, brokers, group, names)
	}
	produceCorpus(t, brokers, evs[produced:])
	log.waitCount(t, len(evs), 5*time.Minute)
	for _, w := range workers {
		w.stop(t)
	}
	if len(log.differs) > 0 {
		t.Errorf("%d events written out twice with different tags, e.g. %s", len(log.differs), log.differs[0])
	}
	return log
}

// joinInFlight is how many events past its mark a joining worker finds in
// the topic: the rebalance it causes happens while they are processed.
const joinInFlight = 10_000

// waitAllOwnPartitions waits until the group's assignment gives each of the
// named members at least one partition: the rebalance their joining caused
// has finished.
func waitAllOwnPartitions(t *testing.T, brokers []string, group string, names []string) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("every one of %v to own partitions of group %s", names, group), func() (bool, string) {
		owners, err := tryGroupOwners(t, brokers, group, eventsTopic)
		if err != nil {
			return false, err.Error()
		}
		owning := map[string]bool{}
		for _, w := range owners {
			owning[w] = true
		}
		for _, n := range names {
			if !owning[n] {
				return false, fmt.Sprintf("partition owners %v", owners)
			}
		}
		return true, ""
	})
}

// packEngine is an engine with the binary's rule pack and fresh state.
func packEngine(t *testing.T) *detect.Engine {
	t.Helper()
	rs, err := detect.LoadFS(plugin.Detection.Pack, plugin.Detection.PackRoot, plugin.Detection.CompileOptions())
	if err != nil {
		t.Fatal(err)
	}
	return detect.NewEngine(rs, detect.EngineOptions{})
}

// oneEngineTags evaluates the events in order in one engine with global
// state, as the single-process pipeline does.
func oneEngineTags(t *testing.T, evs [][]byte) map[string]string {
	t.Helper()
	e := packEngine(t)
	out := map[string]string{}
	for _, raw := range evs {
		res, err := e.Process(raw)
		if err != nil {
			t.Fatal(err)
		}
		uuid, tags, err := tagsOf(res.Out)
		if err != nil {
			t.Fatal(err)
		}
		out[uuid] = tags
	}
	return out
}

// diffTags counts, per rule, the events whose tag of that rule differs.
func diffTags(a, b map[string]string) map[string]int {
	byRule := map[string]int{}
	split := func(s string) map[string]string {
		m := map[string]string{}
		for _, p := range strings.Split(s, ",") {
			if id, alert, ok := strings.Cut(p, "="); ok {
				m[id] = alert
			}
		}
		return m
	}
	for uuid, ta := range a {
		if tb := b[uuid]; tb != ta {
			ma, mb := split(ta), split(tb)
			for id := range ma {
				if ma[id] != mb[id] {
					byRule[id]++
				}
			}
			for id := range mb {
				if _, ok := ma[id]; !ok {
					byRule[id]++
				}
			}
		}
	}
	return byRule
}

func countTags(m map[string]string) (tagged, tags int) {
	for _, t := range m {
		if t != "" {
			tagged++
			tags += strings.Count(t, ",") + 1
		}
	}
	return tagged, tags
}

// partitionBound are the pack rules whose state is not keyed by the actor
// (the partition key): a source IP's failures or a session spread over the
// partitions of several actors, so each worker sees its partitions' share.
var partitionBound = map[string]string{
	"Standard.BruteForceByIP":                     "threshold grouped by client IP",
	"Okta.Elastic.PasswordSpraySingleSource":      "remembered per client IP",
	"Okta.PotentiallyStolenSession":               "remembered per session and device",
	"Okta.Elastic.MultipleDeviceTokensPerSession": "remembered per session",
}

// Three workers from the start, and two workers joined by a third mid-run:
// both give every event exactly the tags (rule and alert id) one worker
// gives it; against one engine with global state only the rules keyed by
// something other than the actor differ.
func TestStateFollowsPartitions(t *testing.T) {
	evs := corpus.Events(scaleEvents)
	one := runDetectWorkers(t, evs, "one", 1)
	tagged, tags := countTags(one.tags)
	if tagged < 1000 {
		t.Fatalf("only %d of %d events tagged: the corpus should hold attacks", tagged, len(evs))
	}
	for _, run := range []struct {
		name, group string
		start       int
		later       []int
	}{
		{"three workers", "three", 3, nil},
		{"two workers, a third joins at 40,000 events", "joined", 2, []int{40_000}},
	} {
		got := runDetectWorkers(t, evs, run.group, run.start, run.later...)
		for i := range run.start + len(run.later) {
			if w := fmt.Sprintf("w%d", i+1); got.byWorker[w] == 0 {
				t.Errorf("%s: %s wrote nothing out (%v): its partitions never moved to it", run.name, w, got.byWorker)
			}
		}
		if d := diffTags(one.tags, got.tags); len(d) > 0 {
			t.Errorf("%s: tags differ from one worker's, per rule: %v", run.name, d)
		} else {
			t.Logf("%s: %d events, %d outputs (%d written twice) by %v, tags identical to one worker's: %d events tagged, %d tags",
				run.name, len(got.tags), got.outputs, got.outputs-len(got.tags), got.byWorker, tagged, tags)
		}
	}
	global := oneEngineTags(t, evs)
	d := diffTags(global, one.tags)
	for id := range d {
		if _, ok := partitionBound[id]; !ok {
			t.Errorf("rule %s tags differently per partition than with global state (%d events)", id, d[id])
		}
	}
	gTagged, gTags := countTags(global)
	t.Logf("one engine with global state: %d events tagged, %d tags; per-partition state differs only in %v", gTagged, gTags, d)
}

// authEvent is a user.session.start event as Okta writes it.
func authEvent(uuid, actor string, at time.Time, result, city string, lat, lon float64) []byte {
	b, _ := json.Marshal(map[string]any{
		"uuid": uuid, "published": at.UTC().Format(time.RFC3339Nano), "eventType": "user.session.start",
		"displayMessage": "User login to Okta", "severity": "INFO",
		"actor":   map[string]any{"id": "00u" + actor, "type": "User", "alternateId": actor, "displayName": actor},
		"outcome": map[string]any{"result": result, "reason": map[bool]any{true: nil, false: "INVALID_CREDENTIALS"}[result == "SUCCESS"]},
		"client": map[string]any{"ipAddress": "203.0.113.7", "geographicalContext": map[string]any{
			"city": city, "country": "X", "geolocation": map[string]any{"lat": lat, "lon": lon}}},
	})
	return b
}

// groupOwners maps each partition of topic to the client id of the group
// member owning it.
func groupOwners(t *testing.T, brokers []string, group, topic string) map[int32]string {
	t.Helper()
	owners, err := tryGroupOwners(t, brokers, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	return owners
}

func tryGroupOwners(t *testing.T, brokers []string, group, topic string) (map[int32]string, error) {
	adm, ctx, done := adminQuery(t, brokers)
	defer done()
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describing group %s: %w", group, err)
	}
	owners := map[int32]string{}
	for _, m := range groups[group].Members {
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				if tp.Topic != topic {
					continue
				}
				for _, p := range tp.Partitions {
					owners[p] = m.ClientID
				}
			}
		}
	}
	return owners, nil
}

// endOffsets are topic's end offsets, by partition.
func endOffsets(t *testing.T, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	adm, ctx, done := adminQuery(t, brokers)
	defer done()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing %s's end offsets: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// routeOwnedBy finds an actor whose event ev(actor) the shipped stage 2
// repartitions, for rule, to a partition of the repartition topic w owns.
func routeOwnedBy(t *testing.T, owners map[int32]string, w, prefix, rule string, ev func(actor string) []byte) (string, int32) {
	t.Helper()
	return routeOwnedByIn(t, owners, w, "", prefix, rule, ev)
}

// routeOwnedByIn is routeOwnedBy for events of org (given as the okta_org
// header, which scopes the state key).
func routeOwnedByIn(t *testing.T, owners map[int32]string, w, org, prefix, rule string, ev func(actor string) []byte) (string, int32) {
	t.Helper()
	e := packEngine(t)
	var meta []detect.MetaField
	if org != "" {
		meta = []detect.MetaField{{Name: "org", Value: org}}
	}
	part := kgo.StickyKeyPartitioner(nil).ForTopic(repartitionTopic)
	for i := range 1000 {
		actor := fmt.Sprintf("%s%03d@acme.io", prefix, i)
		routes, err := e.Routes(ev(actor), meta)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Rule != rule {
				continue
			}
			p := int32(part.Partition(&kgo.Record{Key: []byte(r.PartitionKey())}, scalePartitions))
			if owners[p] == w {
				return actor, p
			}
		}
	}
	t.Fatalf("no actor's %s state lands in a partition of %s (%v)", rule, w, owners)
	return "", 0
}

// produceRaw writes events keyed by their actor and returns their offsets.
func produceRaw(t *testing.T, brokers []string, actor string, evs ...[]byte) []int64 {
	t.Helper()
	return produceRawIn(t, brokers, "", actor, evs...)
}

// produceRawIn is produceRaw for events of org (the okta_org header stage 1
// writes), keyed by key.
func produceRawIn(t *testing.T, brokers []string, org, key string, evs ...[]byte) []int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, e := range evs {
		r := &kgo.Record{Topic: eventsTopic, Key: []byte(key), Value: e}
		if org != "" {
			r.Headers = []kgo.RecordHeader{{Key: "okta_org", Value: []byte(org)}}
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, len(res))
	for i, r := range res {
		offs[i] = r.Record.Offset
	}
	return offs
}

// Three workers running the shipped stage-2 config; the one owning the
// repartition partitions of a brute force's and an impossible travel's state
// is SIGKILLed after their first half was evaluated and committed. The rest
// arrives after the kill, on the workers the partitions move to, which
// restore the state from the changelog: the brute force alerts once,
// counting all five failures, and the travel alerts with the login before
// the kill as its origin.
//
// The victim also owns the absence expectations of two MFA removals in
// another org. After the kill, one is re-enrolled, and the org's log moves
// 12 hours on with an event no rule routes: the partitions' new owners learn
// the org's time only from cel_route's watermarks, and the expectation
// restored from the changelog alerts once, the answered one never.
func TestStateFollowsKilledWorker(t *testing.T) {
	// A new user's broker: empty. The workers create the topics they read
	// (create_topics, 12 partitions) before joining, the alerts topic with
	// their first alert.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokersList := cluster.ListenAddrs()
	brokers := strings.Join(brokersList, ",")
	procs := map[string]stageProc{}
	for _, w := range []string{"w1", "w2", "w3"} {
		procs[w] = startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, "KAFKA_CLIENT_ID="+w,
			"KAFKA_CONSUMER_GROUP=killed", "KAFKA_SESSION_TIMEOUT=3s", "LOG_LEVEL=INFO")
	}
	waitGroupAssigned(t, brokersList, "killed", 3)
	owners := groupOwners(t, brokersList, "killed", repartitionTopic)
	victim := owners[0]
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	brute, bp := routeOwnedBy(t, owners, victim, "brute", "Okta.BruteForceLogins", func(a string) []byte {
		return authEvent("probe", a, t0, "FAILURE", "Paris", 48.85, 2.35)
	})
	traveller, tp := routeOwnedBy(t, owners, victim, "travel", "Okta.GeographicallyImprobableAccess", func(a string) []byte {
		return authEvent("probe", a, t0, "SUCCESS", "Paris", 48.85, 2.35)
	})
	const mfaOrg, absenceRule = "absence.okta.com", "Okta.Elastic.MFADeactivatedNotReactivated"
	removal := func(uuid, target string) []byte {
		return userEvent(t, uuid, t0, "user.mfa.factor.deactivate", "00uadmin", target)
	}
	unanswered, up := routeOwnedByIn(t, owners, victim, mfaOrg, "unanswered", absenceRule, func(a string) []byte { return removal("probe", a) })
	reenrolled, rp := routeOwnedByIn(t, owners, victim, mfaOrg, "reenrolled", absenceRule, func(a string) []byte { return removal("probe", a) })
	produceCorpus(t, brokersList, corpus.Events(5000)) // background traffic

	var before []int64
	for i := range 3 {
		before = append(before, produceRaw(t, brokersList, brute, authEvent(fmt.Sprintf("bf-%d", i), brute, t0.Add(time.Duration(i)*time.Minute), "FAILURE", "Paris", 48.85, 2.35))...)
	}
	paris := produceRaw(t, brokersList, traveller, authEvent("tr-0", traveller, t0, "SUCCESS", "Paris", 48.85, 2.35))
	removals := produceRawIn(t, brokersList, mfaOrg, mfaOrg, removal("mfa-unanswered", unanswered), removal("mfa-reenrolled", reenrolled))
	// Wait until they are routed (their offsets are committed once their
	// routed records are in the repartition topic), then until the victim has
	// evaluated and committed everything routed to its two partitions.
	src := map[int32]int64{
		int32(kgo.StickyKeyPartitioner(nil).ForTopic(eventsTopic).Partition(&kgo.Record{Key: []byte(brute)}, scalePartitions)):     before[len(before)-1],
		int32(kgo.StickyKeyPartitioner(nil).ForTopic(eventsTopic).Partition(&kgo.Record{Key: []byte(traveller)}, scalePartitions)): paris[0],
	}
	mfaPart := int32(kgo.StickyKeyPartitioner(nil).ForTopic(eventsTopic).Partition(&kgo.Record{Key: []byte(mfaOrg)}, scalePartitions))
	src[mfaPart] = max(src[mfaPart], removals[len(removals)-1])
	deadline := time.Now().Add(60 * time.Second)
	for routed := false; ; {
		if !routed {
			offs := topicOffsets(t, brokersList, "killed", eventsTopic)
			routed = true
			for p, o := range src {
				routed = routed && offs[p] > o
			}
			if routed {
				src = endOffsets(t, brokersList, repartitionTopic)
			}
		} else {
			offs := topicOffsets(t, brokersList, "killed", repartitionTopic)
			if offs[bp] >= src[bp] && offs[tp] >= src[tp] && offs[up] >= src[up] && offs[rp] >= src[rp] {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first half was not routed and committed in 60s (routed %v, repartition partitions %d, %d, %d and %d)", routed, bp, tp, up, rp)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = procs[victim].cmd.Process.Kill()
	killed := time.Now()
	for i := 3; i < 5; i++ {
		produceRaw(t, brokersList, brute, authEvent(fmt.Sprintf("bf-%d", i), brute, t0.Add(time.Duration(i)*time.Minute), "FAILURE", "Paris", 48.85, 2.35))
	}
	produceRaw(t, brokersList, traveller, authEvent("tr-1", traveller, t0.Add(time.Hour), "SUCCESS", "Tokyo", 35.68, 139.69))

	type alert struct {
		ID      string         `json:"id"`
		AlertID string         `json:"alert_id"`
		Count   int            `json:"count"`
		Context map[string]any `json:"context"`
		Org     string         `json:"okta_org"`
		Event   struct {
			UUID  string `json:"uuid"`
			Actor struct {
				AlternateID string `json:"alternateId"`
			} `json:"actor"`
		} `json:"event"`
	}
	var bruteAlerts, travelAlerts, absenceAlerts []alert
	collect := func(r *kgo.Record) {
		var a alert
		if json.Unmarshal(r.Value, &a) != nil {
			return
		}
		switch {
		case a.ID == "Okta.BruteForceLogins" && a.Event.Actor.AlternateID == brute:
			bruteAlerts = append(bruteAlerts, a)
		case a.ID == "Okta.GeographicallyImprobableAccess" && a.Event.Actor.AlternateID == traveller:
			travelAlerts = append(travelAlerts, a)
		case a.ID == absenceRule && a.Org == mfaOrg:
			absenceAlerts = append(absenceAlerts, a)
		}
	}
	consumeTopic(t, brokersList, alertsTopic, 90*time.Second, collect, func() bool { return len(bruteAlerts) > 0 && len(travelAlerts) > 0 })
	moved := time.Since(killed)

	// Then one removal is re-enrolled, and the MFA org's log moves 12 hours
	// on. (Only now: the test's other events carry no org, and an engine frees
	// unscoped state by the newest time of any org, so a jump of hours before
	// the brute force's last failures were counted would make them late.)
	later := userEvent(t, "mfa-later", t0.Add(12*time.Hour+20*time.Minute), "user.session.end", "00uother", "")
	if routes, err := packEngine(t).Routes(later, []detect.MetaField{{Name: "org", Value: mfaOrg}}); err != nil || len(routes) != 0 {
		t.Fatalf("the org's last event has routes %v (%v): it must reach the removals' partitions only as watermarks", routes, err)
	}
	produceRawIn(t, brokersList, mfaOrg, mfaOrg, userEvent(t, "mfa-reenrolment", t0.Add(2*time.Hour), "user.mfa.factor.activate", reenrolled, ""), later)
	absenceAlerts = nil
	consumeTopic(t, brokersList, alertsTopic, 90*time.Second, collect, func() bool { return len(absenceAlerts) > 0 })
	time.Sleep(2 * time.Second) // any second alert would be on its way
	bruteAlerts, travelAlerts, absenceAlerts = nil, nil, nil
	readTopic(t, brokersList, alertsTopic, collect)

	ids := map[string]bool{}
	for _, a := range bruteAlerts {
		ids[a.AlertID] = true
	}
	if len(bruteAlerts) != 1 || bruteAlerts[0].Event.UUID != "bf-4" || bruteAlerts[0].Count != 5 {
		t.Errorf("brute force across the kill: %d alerts (%d alert ids) %+v, want one, on the fifth failure, counting 5", len(bruteAlerts), len(ids), bruteAlerts)
	}
	restored := 0
	for w, p := range procs {
		if w != victim && strings.Contains(p.String(), fmt.Sprintf("restored state of %s/%d from changelog", repartitionTopic, bp)) {
			restored++
		}
	}
	if restored != 1 {
		t.Errorf("%d survivors logged restoring partition %d from the changelog, want 1", restored, bp)
	}
	if len(travelAlerts) != 1 || travelAlerts[0].Event.UUID != "tr-1" || travelAlerts[0].Context["previous_city"] != "Paris" {
		t.Errorf("impossible travel across the kill: %+v, want one alert on the Tokyo login from Paris", travelAlerts)
	}
	if len(absenceAlerts) != 1 || absenceAlerts[0].Event.UUID != "mfa-unanswered" {
		t.Errorf("MFA removals across the kill: absence alerts %+v, want one, on the removal never re-enrolled (mfa-unanswered)", absenceAlerts)
	}
	t.Logf("%s (owning partitions %d, %d, %d and %d of %v) killed; brute force alerted once (count %d), travel alerted from %v, the unanswered MFA removal once; alerts %v after the kill",
		victim, bp, tp, up, rp, owners, bruteAlerts[0].Count, travelAlerts[0].Context["previous_city"], moved.Round(time.Millisecond))
}

// consumeTopic reads topic from the start into fn until done holds, failing
// after timeout. The topic may not exist yet (the pipeline creates it with
// its first record): the reader starts once it does.
func consumeTopic(t *testing.T, brokers []string, topic string, timeout time.Duration, fn func(*kgo.Record), done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !topicExists(t, brokers, topic) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not created after %v", topic, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for !done() {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(fn)
		if ctx.Err() != nil && !done() {
			t.Fatalf("%s: not there after %v", topic, timeout)
		}
	}
}

func topicExists(t *testing.T, brokers []string, topic string) bool {
	t.Helper()
	adm, ctx, done := adminQuery(t, brokers)
	defer done()
	topics, err := adm.ListTopics(ctx, topic)
	return err == nil && topics.Has(topic) && topics[topic].Err == nil
}

// readTopic passes fn every record of topic now there (exactly: up to each
// partition's end, listed first).
func readTopic(t *testing.T, brokers []string, topic string, fn func(*kgo.Record)) {
	t.Helper()
	for _, r := range testkit.CommittedRecords(t, brokers, topic) {
		fn(r)
	}
}
