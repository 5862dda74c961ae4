package e2e

import (
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
)

// Exact at scale: the shipped stage-2 worker (config/stage2-detect-worker.yaml)
// repartitions okta.system_log by each rule's state key before detecting,
// so three workers give exactly the alerts of one process holding all the
// state, for every rule of the pack, also those keyed by a source IP or a
// session rather than the actor.
//
// Exactly means every alert record: rule, alert_id, the event it is on and
// its count. Which event of a burst carries a threshold's alert follows the
// order the events of its key arrive in (one process reading Okta sees them
// in time order). The events topic is keyed by org, as stage 1 writes it, so
// that the route step reads each org's events in order and every (rule,
// key) reaches its partition in time order.

const repartitionTopic = "oktadetect.repartition"

// exactEvents is the corpus: the simulator's traffic and attacks, with a
// password spray and a brute force by IP spread over many actors in every
// block, in two orgs (a stretch of events each).
const exactEvents = 12000

func exactOrg(i int) string {
	if i >= exactEvents {
		return quietOrg
	}
	return fmt.Sprintf("org%d.okta.com", i/2500%2)
}

// quietOrg's few events end the stream: an MFA factor removed and never
// re-enrolled, one removed and re-enrolled in time, and 13 hours later an
// event no rule concerns. In one process, the first absence fires after
// that last event. A worker holding the removal's partition receives
// nothing more of the org but cel_route's watermarks: without them it
// would never fire.
const quietOrg = "quiet.okta.com"

func quietOrgEvents(t *testing.T, router *detect.Engine) [][]byte {
	t.Helper()
	t0 := corpus.Start.Add(corpus.Span(exactEvents) + time.Hour)
	event := func(uuid string, at time.Duration, eventType, actor, target string) []byte {
		return userEvent(t, uuid, t0.Add(at), eventType, actor, target)
	}
	evs := [][]byte{
		event("quiet-1", 0, "user.mfa.factor.deactivate", "00uadmin", "00uq1"),
		event("quiet-2", time.Minute, "user.mfa.factor.deactivate", "00uadmin", "00uq2"),
		event("quiet-3", 2*time.Hour, "user.mfa.factor.activate", "00uq2", ""),
		event("quiet-4", 12*time.Hour+20*time.Minute, "user.session.end", "00uq3", ""),
	}
	routes, err := router.Routes(evs[3], []detect.MetaField{{Name: "org", Value: quietOrg}})
	if err != nil || len(routes) != 0 {
		t.Fatalf("the quiet org's last event has routes %v (%v): it must reach the removal's partition only as a watermark", routes, err)
	}
	return evs
}

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
	e := packEngine(t)
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
		for _, dfr := range res.Deferred { // an absence, on its opening event
			opening, _, _ := tagsOf(dfr.Out)
			for _, d := range dfr.Detections {
				out[alertRecord{d.ID, d.AlertID, opening, d.Count}]++
			}
		}
	}
	return out
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
	evs = append(evs, quietOrgEvents(t, packEngine(t))...)
	want := oneProcessAlerts(t, evs)
	total, byRule := 0, map[string]int{}
	for a, n := range want {
		total += n
		byRule[a.rule] += n
	}
	for _, id := range []string{"Standard.BruteForceByIP", "Okta.Elastic.PasswordSpraySingleSource", "Okta.BruteForceLogins", "Okta.Elastic.MFADeactivatedNotReactivated"} {
		if byRule[id] == 0 {
			t.Fatalf("one process gives no alert of %s on the corpus (%v): it should hold those attacks", id, byRule)
		}
	}

	for a := range want {
		if a.rule == "Okta.Elastic.MFADeactivatedNotReactivated" && a.uuid != "quiet-1" {
			t.Fatalf("one process's absence alerts %v: only the factor never re-enrolled (quiet-1) should alert", a)
		}
	}

	// A new user's broker: empty. The workers start before any topic
	// exists and create the two they read (create_topics) before joining
	// their group, and the alerts topic with their first alert.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
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
	produceCorpusOf(t, brokersList, evs, exactOrg, true)

	// Read until one process's count is reached (or 90 s pass); any
	// difference is then reported alert by alert.
	var got map[alertRecord]int
	var n int
	read := func() {
		got, n = map[alertRecord]int{}, 0
		readTopic(t, brokersList, alertsTopic, func(r *kgo.Record) { got[decodeAlert(t, r)]++; n++ })
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		if topicExists(t, brokersList, alertsTopic) {
			read()
		}
		if n >= total || time.Now().After(deadline) {
			break
		}
	}
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second) // an alert too many would be on its way
	read()

	var missing, extra []string
	for a, c := range want {
		if got[a] != c {
			missing = append(missing, fmt.Sprintf("%v (%d times, want %d)", a, got[a], c))
		}
	}
	for a, c := range got {
		if _, ok := want[a]; !ok {
			extra = append(extra, fmt.Sprintf("%v (%d times)", a, c))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("3 workers: %d alert records, one process %d; %d of one process's differ, e.g. %s; %d are not one process's, e.g. %s",
			n, total, len(missing), first(missing), len(extra), first(extra))
	}
	if t.Failed() {
		return
	}
	alerts := map[string]bool{}
	for a := range got {
		alerts[a.rule+" "+a.alertID] = true
	}
	var ids []string
	for id, c := range byRule {
		ids = append(ids, fmt.Sprintf("%s=%d", id, c))
	}
	sort.Strings(ids)
	t.Logf("%d events, 3 workers: %d alert records of %d alerts in %v, identical to one process's (rule, alert_id, event, count), over %d rules: %s",
		len(evs), n, len(alerts), elapsed.Round(time.Millisecond), len(byRule), strings.Join(ids, " "))
}

func first(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return s[0]
}
