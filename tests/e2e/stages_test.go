package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// stageProc is the real binary running one of the shipped stage configs.
type stageProc struct {
	*testkit.Buffer // its output
	cmd             *exec.Cmd
}

func startStage(t *testing.T, config string, env ...string) stageProc {
	t.Helper()
	cmd := exec.Command(binary, "-c", configPath(config))
	cmd.Env = environ(append([]string{"OKTADETECT_HTTP_ADDRESS=127.0.0.1:0", "OKTADETECT_STATE_DIR=" + t.TempDir()}, env...)...)
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopping := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			t.Logf("%s stopped in %v", config, time.Since(stopping).Round(time.Millisecond))
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			time.Sleep(500 * time.Millisecond)
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 15s of SIGTERM:\n%s", config, tail(out.String(), 20000))
		}
		if strings.Contains(out.String(), token) {
			t.Errorf("the API token appears in %s's output", config)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", config, out.String())
		}
	})
	return stageProc{out, cmd}
}

// The shipped two-stage topology end to end: stage 1 polls the simulated org
// into a 12-partition okta.system_log keyed by org; two stage-2 workers in
// one group detect the seed attacks, each alert carrying the org.
func TestTwoStageConfigs(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, eventsTopic), kfake.SeedTopics(3, alertsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close) // after the processes stop (cleanups run last in, first out)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sim := oktasim.New(oktasim.Options{Token: token})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	org, _ := url.Parse(srv.URL)
	uuids := seedAttacks(sim, oktasim.NewGenerator(21), 2000)

	start := time.Now()
	// Both workers own their partitions before events arrive (moving state
	// is TestStateFollowsKilledWorker's).
	w1 := startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, "KAFKA_CONSUMER_GROUP=e2e-detect")
	w2 := startStage(t, "stage2-detect-worker.yaml", "KAFKA_BROKERS="+brokers, "KAFKA_CONSUMER_GROUP=e2e-detect")
	deadline := time.Now().Add(testkit.Patience)
	for !(strings.Contains(w1.String(), "Assigned") && strings.Contains(w2.String(), "Assigned") &&
		!strings.Contains(w1.String()+w2.String(), "Released 0")) {
		if time.Now().After(deadline) {
			t.Fatalf("the workers never both got partitions:\n%s\n%s", w1.String(), w2.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	startStage(t, "stage1-okta-to-kafka.yaml",
		"OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token, "OKTA_POLL_INTERVAL=300ms", "OKTA_INITIAL_LOOKBACK=2h", "KAFKA_BROKERS="+brokers)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(eventsTopic, alertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := map[string]int{}
	alerts := map[string]bool{}
	badKeys := 0
	for {
		have := true
		for _, id := range seedRuleIDs {
			have = have && alerts[id]
		}
		for _, u := range uuids {
			have = have && events[u] > 0
		}
		if have {
			break
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d of %d events, alerts %v", len(events), len(uuids), alerts)
		}
		fs.EachRecord(func(r *kgo.Record) {
			headers := map[string]string{}
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			if headers["okta_org"] != org.Host {
				t.Errorf("%s record without header okta_org=%s: %v", r.Topic, org.Host, headers)
			}
			switch r.Topic {
			case eventsTopic:
				var ev struct {
					UUID string `json:"uuid"`
				}
				if err := json.Unmarshal(r.Value, &ev); err != nil {
					t.Errorf("event: %v", err)
				}
				events[ev.UUID]++
				if string(r.Key) != org.Host {
					badKeys++
				}
			case alertsTopic:
				var a struct {
					ID      string          `json:"id"`
					AlertID string          `json:"alert_id"`
					Org     string          `json:"okta_org"`
					Event   json.RawMessage `json:"event"`
				}
				if err := json.Unmarshal(r.Value, &a); err != nil || len(a.Event) == 0 || string(r.Key) != a.AlertID {
					t.Errorf("alert %s: %s", r.Key, r.Value)
				}
				if a.Org != org.Host {
					t.Errorf("alert %s has okta_org %q, want %q", a.ID, a.Org, org.Host)
				}
				if strings.Contains(string(a.Event), `"oktadetect"`) {
					t.Errorf("alert %s: the reserved key leaked into the event", a.ID)
				}
				alerts[a.ID] = true
			}
		})
	}
	for _, id := range seedRuleIDs {
		if !alerts[id] {
			t.Errorf("no %s alert (got %v)", id, alerts)
		}
	}
	if badKeys > 0 {
		t.Errorf("%d events not keyed by their org (%s)", badKeys, org.Host)
	}
	t.Logf("%d events through stage 1, %d rules alerted through 2 stage-2 workers in %v", len(uuids), len(alerts), time.Since(start).Round(time.Millisecond))
}

// config/many-orgs-to-kafka.yaml polls two orgs in one process: every event
// reaches okta.system_log as its org sent it, under its org's header, and
// each org's seed attacks alert with that org in the alert; the org the
// rules see (event.oktadetect.org) never reaches Kafka.
func TestManyOrgsConfig(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, eventsTopic, alertsTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	env := []string{"KAFKA_BROKERS=" + brokers, "OKTA_POLL_INTERVAL=300ms", "OKTA_INITIAL_LOOKBACK=2h"}
	orgOf := map[string]string{} // uuid → org host
	hosts := []string{}
	for i, seed := range []int64{31, 32} {
		sim := oktasim.New(oktasim.Options{Token: token})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		hosts = append(hosts, u.Host)
		for _, id := range seedAttacks(sim, oktasim.NewGenerator(seed), 500) {
			orgOf[id] = u.Host
		}
		env = append(env, fmt.Sprintf("OKTA_ORG%d_URL=%s", i+1, srv.URL), fmt.Sprintf("OKTA_ORG%d_API_TOKEN=%s", i+1, token))
	}
	startStage(t, "many-orgs-to-kafka.yaml", env...)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(eventsTopic, alertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := map[string]bool{}
	alerts := map[string]bool{} // host + rule id
	complete := func() bool {
		for _, h := range hosts {
			for _, id := range seedRuleIDs {
				if !alerts[h+" "+id] {
					return false
				}
			}
		}
		return len(events) == len(orgOf)
	}
	for !complete() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d of %d events, alerts %v", len(events), len(orgOf), alerts)
		}
		fs.EachRecord(func(r *kgo.Record) {
			org := ""
			for _, h := range r.Headers {
				if h.Key == "okta_org" {
					org = string(h.Value)
				}
			}
			if strings.Contains(string(r.Value), `"oktadetect"`) {
				t.Errorf("%s record carries the rules' view of the org: %.300s", r.Topic, r.Value)
			}
			switch r.Topic {
			case eventsTopic:
				var ev struct {
					UUID       string          `json:"uuid"`
					Detections json.RawMessage `json:"detections"`
				}
				if err := json.Unmarshal(r.Value, &ev); err != nil || ev.Detections != nil {
					t.Errorf("event not as Okta sent it: %v %.300s", err, r.Value)
				}
				if orgOf[ev.UUID] != org {
					t.Errorf("event %s under okta_org %q, it came from %q", ev.UUID, org, orgOf[ev.UUID])
				}
				events[ev.UUID] = true
			case alertsTopic:
				var a struct {
					ID    string `json:"id"`
					Org   string `json:"okta_org"`
					Event struct {
						UUID string `json:"uuid"`
					} `json:"event"`
				}
				if err := json.Unmarshal(r.Value, &a); err != nil || a.Org != org || orgOf[a.Event.UUID] != org {
					t.Errorf("alert %s: org %q in the body, %q in the header, event from %q", a.ID, a.Org, org, orgOf[a.Event.UUID])
				}
				alerts[org+" "+a.ID] = true
			}
		})
	}
	t.Logf("2 orgs, %d events, %d (org, rule) alerts", len(events), len(alerts))
}
