package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const (
	eventsTopic = "okta.system_log"
	alertsTopic = "okta.alerts"
)

// seedAttacks persists ordinary traffic and the five seed attacks, and
// returns every uuid persisted.
func seedAttacks(sim *oktasim.Sim, g *oktasim.Generator, ordinary int) []string {
	now := time.Now()
	evs := g.Backlog(ordinary, now.Add(-50*time.Minute), 500*time.Millisecond)
	evs = append(evs, g.BruteForce("victim@example.com", "203.0.113.9", now.Add(-20*time.Minute), 6)...)
	evs = append(evs,
		g.AdminRoleAssigned("admin@example.com", "newadmin@example.com", now.Add(-19*time.Minute)),
		g.APITokenCreated("newadmin@example.com", now.Add(-18*time.Minute)),
		g.APITokenRevoked("newadmin@example.com", now.Add(-17*time.Minute)),
	)
	evs = append(evs, g.ImpossibleTravel("traveller@example.com", now.Add(-45*time.Minute))...)
	sim.Persist(evs...)
	uuids := make([]string, len(evs))
	for i, e := range evs {
		uuids[i] = e.UUID
	}
	return uuids
}

var seedRuleIDs = []string{
	"Okta.AdminRoleAssigned", "Okta.APIKeyCreated", "Okta.APIKeyRevoked",
	"Okta.BruteForceLogins", "Okta.GeographicallyImprobableAccess",
}

// kafkaRun is the real binary running config/okta-to-kafka.yaml.
type kafkaRun struct {
	cmd    *exec.Cmd
	output *testkit.Buffer
}

func startKafkaPipeline(t *testing.T, orgURL, brokers, stateDir string) *kafkaRun {
	t.Helper()
	cmd := exec.Command(binary, "-c", configPath("okta-to-kafka.yaml"))
	cmd.Env = environ(
		"OKTA_ORG_URL="+orgURL,
		"OKTA_API_TOKEN="+token,
		"OKTA_POLL_INTERVAL=300ms",
		"OKTA_INITIAL_LOOKBACK=2h",
		"KAFKA_BROKERS="+brokers,
		"OKTADETECT_STATE_DIR="+stateDir,
		"OKTADETECT_HTTP_ADDRESS=127.0.0.1:0",
	)
	r := &kafkaRun{cmd: cmd, output: &testkit.Buffer{}}
	cmd.Stdout, cmd.Stderr = r.output, r.output
	recordOutput(r.output)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if strings.Contains(r.output.String(), token) {
			t.Errorf("the API token appears in the binary's output")
		}
		if t.Failed() {
			t.Logf("oktadetect output:\n%s", r.output.String())
		}
	})
	return r
}

// topicContents is what a consumer read from both topics.
type topicContents struct {
	events map[string]int    // uuid → times seen
	keyOK  bool              // every event's key was its uuid
	alerts map[string]string // alert record key → rule id
}

// consumeUntil reads both topics from the start until done reports true.
func consumeUntil(t *testing.T, brokers string, timeout time.Duration, done func(*topicContents) bool) *topicContents {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.ConsumeTopics(eventsTopic, alertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := &topicContents{events: map[string]int{}, keyOK: true, alerts: map[string]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !done(got) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d distinct events, %d alerts", len(got.events), len(got.alerts))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case eventsTopic:
				var ev struct {
					UUID string `json:"uuid"`
				}
				if err := json.Unmarshal(r.Value, &ev); err != nil {
					t.Errorf("record in %s is not an event: %v", eventsTopic, err)
				}
				got.events[ev.UUID]++
				got.keyOK = got.keyOK && string(r.Key) == ev.UUID
			case alertsTopic:
				var a struct {
					ID      string          `json:"id"`
					AlertID string          `json:"alert_id"`
					Event   json.RawMessage `json:"event"`
				}
				if err := json.Unmarshal(r.Value, &a); err != nil || len(a.Event) == 0 {
					t.Errorf("record in %s is not a detection with its event: %s", alertsTopic, r.Value)
				}
				if string(r.Key) != a.AlertID {
					t.Errorf("alert key %q, want its alert_id %q", r.Key, a.AlertID)
				}
				got.alerts[string(r.Key)+"/"+a.ID] = a.ID
			}
		})
	}
	return got
}

func hasAll(uuids []string) func(*topicContents) bool {
	return func(c *topicContents) bool {
		for _, u := range uuids {
			if c.events[u] == 0 {
				return false
			}
		}
		return true
	}
}

func alertIDs(c *topicContents) map[string]bool {
	ids := map[string]bool{}
	for _, id := range c.alerts {
		ids[id] = true
	}
	return ids
}

func TestOktaToKafkaEndToEnd(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, eventsTopic, alertsTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	uuids := seedAttacks(sim, oktasim.NewGenerator(11), 3000)

	startKafkaPipeline(t, srv.URL, brokers, t.TempDir())
	got := consumeUntil(t, brokers, 60*time.Second, func(c *topicContents) bool {
		return hasAll(uuids)(c) && len(alertIDs(c)) >= len(seedRuleIDs)
	})
	time.Sleep(time.Second)
	got = consumeUntil(t, brokers, 30*time.Second, func(c *topicContents) bool { return hasAll(uuids)(c) })

	for _, u := range uuids {
		if n := got.events[u]; n != 1 {
			t.Errorf("event %s is in %s %d times, want once", u, eventsTopic, n)
		}
	}
	if len(got.events) != len(uuids) {
		t.Errorf("%d distinct events in %s, want %d", len(got.events), eventsTopic, len(uuids))
	}
	if !got.keyOK {
		t.Error("some records in okta.system_log are not keyed by their uuid")
	}
	ids := alertIDs(got)
	for _, id := range seedRuleIDs {
		if !ids[id] {
			t.Errorf("no %s alert in %s (got %v)", id, alertsTopic, ids)
		}
	}

	// An independent client reads the same alerts.
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed: .ci/run installs it (Debian package kcat)")
		}
		t.Skip("kcat not installed (CI installs it)")
	}
	out, err := exec.Command("kcat", "-b", brokers, "-C", "-t", alertsTopic, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	for _, id := range seedRuleIDs {
		if !strings.Contains(string(out), `"id":"`+id+`"`) {
			t.Errorf("kcat did not read a %s alert:\n%s", id, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, value, _ := strings.Cut(line, "\t")
		if !strings.Contains(value, `"alert_id":"`+key+`"`) {
			t.Errorf("kcat: record key %q is not its alert_id: %s", key, value)
		}
	}
}

// Kafka refuses every write for a while as events keep coming; the pipeline
// is killed during the outage and started again once Kafka is back: every
// event arrives, because the Okta cursor never moved past an unacknowledged one.
func TestKafkaOutageLosesNothing(t *testing.T) {
	cluster, down, refused := switchableKafka(t)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	g := oktasim.NewGenerator(12)
	before := seedAttacks(sim, g, 500)
	state := t.TempDir()

	first := startKafkaPipeline(t, srv.URL, brokers, state)
	consumeUntil(t, brokers, 60*time.Second, hasAll(before))

	down.Store(true)
	during := g.Backlog(700, time.Now().Add(-time.Minute), 10*time.Millisecond)
	sim.Persist(during...)
	deadline := time.Now().Add(testkit.Patience)
	for refused.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline never tried to write during the outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	_ = first.cmd.Process.Kill()
	_ = first.cmd.Wait()

	down.Store(false)
	startKafkaPipeline(t, srv.URL, brokers, state)
	all := append(before, uuidsOf(during)...)
	got := consumeUntil(t, brokers, 60*time.Second, hasAll(all))
	dups := 0
	for _, u := range all {
		dups += got.events[u] - 1
	}
	t.Logf("%d produce requests refused during the outage; %d events, %d duplicates after the restart", refused.Load(), len(all), dups)
}

func uuidsOf(evs []oktasim.LogEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.UUID
	}
	return out
}

// switchableKafka starts a kfake cluster that refuses every produce request
// while down is set, counting the refusals in refused.
func switchableKafka(t *testing.T) (cluster *kfake.Cluster, down *atomic.Bool, refused *atomic.Int64) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, eventsTopic, alertsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	down, refused = &atomic.Bool{}, &atomic.Int64{}
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("broker unavailable"), true
	})
	return cluster, down, refused
}
