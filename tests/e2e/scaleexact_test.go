package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
	"github.com/oktadetect/oktadetect/plugin"
)

// Exact at scale: the shipped stage-2 worker (config/stage2-detect-worker.yaml)
// repartitions okta.system_log by each rule's state key before detecting,
// so three workers give exactly the alerts of one process holding all the
// state, for every rule of the pack, also those keyed by a source IP or a
// session rather than the actor the events topic is keyed by.

const repartitionTopic = "oktadetect.repartition"

// exactEvents is the corpus: the simulator's traffic and attacks, with a
// password spray and a brute force by IP spread over many actors in every
// block, in two orgs (a stretch of events each).
const exactEvents = 12000

func exactOrg(i int) string { return fmt.Sprintf("org%d.okta.com", i/2500%2) }

// alertRecord identifies one alert as a consumer sees it: the rule, its
// alert_id, the event it is about and the count.
type alertRecord struct {
	rule, alertID, uuid string
	count               int
}

func (a alertRecord) String() string {
	return fmt.Sprintf("%s %s on %s count %d", a.rule, a.alertID, a.uuid, a.count)
}

// oneProcessAlerts evaluates the events in order in one engine holding all
// the state, as the single-process pipeline does.
func oneProcessAlerts(t *testing.T, evs [][]byte) map[alertRecord]int {
	t.Helper()
	rs, err := detect.LoadFS(plugin.Detection.Pack, plugin.Detection.PackRoot, plugin.Detection.CompileOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := detect.NewEngine(rs, detect.EngineOptions{})
	out := map[alertRecord]int{}
	for i, raw := range evs {
		res, err := e.ProcessWithMeta(raw, []detect.MetaField{{Name: "org", Value: exactOrg(i)}})
		if err != nil {
			t.Fatal(err)
		}
		uuid, _, _ := tagsOf(res.Out)
		for _, d := range res.Detections {
			out[alertRecord{d.ID, d.AlertID, uuid, d.Count}]++
		}
	}
	return out
}

// produceWithOrg writes events as stage 1 does: keyed by actor, with the
// okta_org and okta_uuid headers.
func produceWithOrg(t *testing.T, brokers []string, evs [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, 0, len(evs))
	for i, e := range evs {
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
		recs = append(recs, &kgo.Record{Topic: eventsTopic, Key: []byte(key), Value: e, Headers: []kgo.RecordHeader{
			{Key: "okta_org", Value: []byte(exactOrg(i))}, {Key: "okta_uuid", Value: []byte(ev.UUID)},
		}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing events: %v", err)
	}
}

// decodeAlert reads an okta.alerts record.
func decodeAlert(t *testing.T, r *kgo.Record) alertRecord {
	var a struct {
		ID      string `json:"id"`
		AlertID string `json:"alert_id"`
		Count   int    `json:"count"`
		Event   struct {
			UUID string `json:"uuid"`
		} `json:"event"`
	}
	if err := json.Unmarshal(r.Value, &a); err != nil {
		t.Errorf("alert record %q: %v", r.Value, err)
	}
	if string(r.Key) != a.AlertID {
		t.Errorf("alert keyed %q, want its alert_id %q", r.Key, a.AlertID)
	}
	return alertRecord{a.ID, a.AlertID, a.Event.UUID, a.Count}
}

func TestScaleOutExactAlerts(t *testing.T) {
	evs := corpus.SpreadEvents(exactEvents)
	want := oneProcessAlerts(t, evs)
	total, byRule := 0, map[string]int{}
	for a, n := range want {
		total += n
		byRule[a.rule] += n
	}
	for _, id := range []string{"Standard.BruteForceByIP", "Okta.Elastic.PasswordSpraySingleSource", "Okta.BruteForceLogins"} {
		if byRule[id] == 0 {
			t.Fatalf("one process gives no alert of %s on the corpus (%v): it should hold those attacks", id, byRule)
		}
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(scalePartitions, eventsTopic),
		kfake.SeedTopics(scalePartitions, repartitionTopic), kfake.SeedTopics(3, alertsTopic),
		kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokersList := cluster.ListenAddrs()
	brokers := strings.Join(brokersList, ",")
	for _, w := range []string{"w1", "w2", "w3"} {
		startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, "KAFKA_CLIENT_ID="+w,
			"KAFKA_CONSUMER_GROUP=exact", "LOG_LEVEL=INFO")
	}
	waitGroupAssigned(t, brokersList, "exact", 3)
	start := time.Now()
	produceWithOrg(t, brokersList, evs)

	got := map[alertRecord]int{}
	n := 0
	consumeTopic(t, brokersList, alertsTopic, 90*time.Second, func(r *kgo.Record) {
		got[decodeAlert(t, r)]++
		n++
	}, func() bool { return n >= total })
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second) // an alert too many would be on its way
	got, n = map[alertRecord]int{}, 0
	consumeTopic(t, brokersList, alertsTopic, 0, func(r *kgo.Record) { got[decodeAlert(t, r)]++; n++ }, nil)

	// Which event of a burst carries a threshold's alert, and the count it
	// shows, depend on the order events arrive in; one process reading the
	// 12 partitions interleaves them too. What must not depend on it: the
	// alerts themselves (rule, alert_id) and how many records each has.
	perAlert := func(m map[alertRecord]int) map[string]int {
		out := map[string]int{}
		for a, c := range m {
			out[a.rule+" "+a.alertID] += c
		}
		return out
	}
	wantIDs, gotIDs := perAlert(want), perAlert(got)
	var differ []string
	for id, c := range wantIDs {
		if gotIDs[id] != c {
			differ = append(differ, fmt.Sprintf("%s: %d records, want %d", id, gotIDs[id], c))
		}
	}
	for id, c := range gotIDs {
		if _, ok := wantIDs[id]; !ok {
			differ = append(differ, fmt.Sprintf("%s: %d records, not one of one process's alerts", id, c))
		}
	}
	sort.Strings(differ)
	if len(differ) > 0 || n != total {
		t.Errorf("3 workers: %d alert records, one process %d; %d alerts differ, e.g. %s", n, total, len(differ), first(differ))
	}
	same := 0
	for a, c := range got {
		if want[a] == c {
			same += c
		}
	}
	var ids []string
	for id, c := range byRule {
		ids = append(ids, fmt.Sprintf("%s=%d", id, c))
	}
	sort.Strings(ids)
	t.Logf("%d events, 3 workers: %d alert records of %d alerts in %v, the same alert ids with as many records as one process's, over %d rules: %s; %d records on the same event with the same count (the others: a threshold's events arrived in another order)",
		len(evs), n, len(gotIDs), elapsed.Round(time.Millisecond), len(byRule), strings.Join(ids, " "), same)
}

func first(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return s[0]
}
