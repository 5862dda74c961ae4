package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const checkpointsTopic = "okta.checkpoints"

// pipelineRun is one run of the real binary on a Kafka config.
type pipelineRun struct {
	cmd    *exec.Cmd
	output *testkit.Buffer
	done   chan struct{}
	err    error
}

// allOutputs collects the output of every binary run of the fault suites, for
// the secrets redaction suite (redaction_test.go).
var allOutputs struct {
	mu   sync.Mutex
	runs []*testkit.Buffer
}

func recordOutput(b *testkit.Buffer) {
	allOutputs.mu.Lock()
	defer allOutputs.mu.Unlock()
	allOutputs.runs = append(allOutputs.runs, b)
}

func startPipeline(t *testing.T, config string, env ...string) *pipelineRun {
	t.Helper()
	return startBinary(t, environ(env...), "-c", configPath(config))
}

// startBinary runs the binary with args and the complete environment env;
// it is killed when the test ends.
func startBinary(t *testing.T, env []string, args ...string) *pipelineRun {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	r := &pipelineRun{cmd: cmd, output: &testkit.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.output, r.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	recordOutput(r.output)
	go func() { r.err = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
	})
	return r
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *pipelineRun) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// terminate sends SIGTERM and returns how long the process took to exit, or
// fails the test if it did not exit within limit.
func (r *pipelineRun) terminate(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(limit):
		t.Errorf("oktadetect did not exit within %v of SIGTERM", limit)
		r.kill()
	}
	return time.Since(start)
}

// committedContents is what a read_committed consumer sees in the three topics.
type committedContents struct {
	events      map[string]int            // event uuid → records
	alerts      map[string]int            // rule id + "/" + event uuid → records
	alertRules  map[string]int            // rule id → records
	byAlertID   map[string]map[string]int // alert_id → "rule id/event uuid/count" → records
	orgRules    map[string]int            // okta_org + " " + rule id → records (configs that name the org)
	checkpoints int
}

// readCommitted reads everything committed so far from the start of the
// topics: every partition up to its last stable offset, listed first
// (testkit.CommittedRecords). It waits for those offsets, not for a quiet
// spell, so a slow machine makes it slower, never short.
func readCommitted(t *testing.T, brokers []string) *committedContents {
	t.Helper()
	return readCommittedKeyed(t, brokers, keyedByUUID)
}

// eventKeyCheck says whether an event record's key is the one its config
// gives the event of that uuid.
type eventKeyCheck func(key []byte, uuid string) bool

func keyedByUUID(key []byte, uuid string) bool { return string(key) == uuid }

// readCommittedKeyed is readCommitted for a config that keys events as
// keyOK says.
func readCommittedKeyed(t *testing.T, brokers []string, keyOK eventKeyCheck) *committedContents {
	t.Helper()
	topics := []string{eventsTopic, alertsTopic, checkpointsTopic}
	got := &committedContents{events: map[string]int{}, alerts: map[string]int{}, alertRules: map[string]int{},
		byAlertID: map[string]map[string]int{}, orgRules: map[string]int{}}
	for _, topic := range topics {
		for _, r := range testkit.CommittedRecords(t, brokers, topic) {
			switch r.Topic {
			case eventsTopic:
				var ev struct {
					UUID string `json:"uuid"`
				}
				if err := json.Unmarshal(r.Value, &ev); err != nil || !keyOK(r.Key, ev.UUID) {
					t.Errorf("bad event record key %q: %.200s", r.Key, r.Value)
				}
				got.events[ev.UUID]++
			case alertsTopic:
				var a struct {
					ID      string          `json:"id"`
					AlertID string          `json:"alert_id"`
					Count   json.RawMessage `json:"count"`
					OktaOrg string          `json:"okta_org"`
					Event   struct {
						UUID       string          `json:"uuid"`
						Detections json.RawMessage `json:"detections"`
					} `json:"event"`
				}
				if err := json.Unmarshal(r.Value, &a); err != nil || a.Event.UUID == "" || string(r.Key) != a.AlertID {
					t.Errorf("bad alert record key %q: %.300s", r.Key, r.Value)
				}
				if a.Event.Detections != nil {
					t.Errorf("an alert's event still holds its detections: %.300s", r.Value)
				}
				got.alerts[a.ID+"/"+a.Event.UUID]++
				got.alertRules[a.ID]++
				if a.OktaOrg != "" {
					got.orgRules[a.OktaOrg+" "+a.ID]++
				}
				if got.byAlertID[a.AlertID] == nil {
					got.byAlertID[a.AlertID] = map[string]int{}
				}
				got.byAlertID[a.AlertID][a.ID+"/"+a.Event.UUID+"/"+string(a.Count)]++
			case checkpointsTopic:
				got.checkpoints++
			}
		}
	}
	return got
}

// crashEvents is the size of the crash suite's backlog: 50,000 as the issue
// asks; OKTADETECT_CRASH_EVENTS overrides it.
func crashEvents(t *testing.T) int {
	if s := os.Getenv("OKTADETECT_CRASH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 50_000
}

// The crash suite, exactly-once mode: a 50,000-event backlog with attacks,
// the real binary SIGKILLed at 10 random instants (during fetches, produces,
// commits, cursor reads, state snapshots — wherever it happens to be) and
// restarted on the same Kafka and state directory each time, then SIGTERMed
// mid-backlog, then run to the end. A read_committed consumer sees every
// event exactly once and every alert exactly once, brute-force and
// impossible-travel detections that span the crashes fire, and SIGTERM exits
// within the shutdown timeout.
func TestCrashSuiteExactlyOnce(t *testing.T) {
	runCrashSuite(t, "okta-to-kafka.yaml", true)
}

// The same crashes in at-least-once mode (fan_out to two plain producers, the
// cursor in a file): nothing is missing; duplicates are counted and printed.
func TestCrashSuiteAtLeastOnce(t *testing.T) {
	runCrashSuite(t, "okta-to-kafka-at-least-once.yaml", false)
}

func runCrashSuite(t *testing.T, config string, exactlyOnce bool) {
	if testing.Short() {
		t.Skip("crash suite: about a minute")
	}
	total := crashEvents(t)
	const kills = 10
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OKTADETECT_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("crash suite: %d events, %d kills, seed %d (OKTADETECT_CRASH_SEED to replay)", total, kills, seed)

	// An empty broker, as a new user has: the first run creates the topics,
	// and may be killed while it does.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	sim := oktasim.New(oktasim.Options{Token: token, RateLimit: 10, RateWindow: time.Second})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	backlog := crashBacklog(oktasim.NewGenerator(rnd.Int64()), total)
	sim.Persist(backlog...)
	uuids := uuidsOf(backlog)
	total = len(uuids)
	state := t.TempDir()
	env := crashEnv(srv.URL, brokers, state)

	progress := func() int { return len(readCommitted(t, brokers).events) }
	killRepeatedly(t, rnd, kills, func() *pipelineRun { return startPipeline(t, config, env...) }, progress, total)

	// Graceful shutdown mid-backlog.
	run := startPipeline(t, config, env...)
	time.Sleep(2 * time.Second)
	took := run.terminate(t, 15*time.Second)
	if run.err != nil {
		t.Errorf("exit after SIGTERM: %v (want status 0)\n%s", run.err, tail(run.output.String(), 3000))
	}
	if exactlyOnce {
		if n := stateRecords(t, brokers); n == 0 {
			t.Errorf("no detection state in %s after SIGTERM", stateTopic)
		}
	} else if _, err := os.Stat(filepath.Join(state, "cel-detect-state.json")); err != nil {
		t.Errorf("no detection state after SIGTERM: %v", err)
	}
	t.Logf("SIGTERM mid-backlog: exited in %v; %d of %d events committed", took.Round(time.Millisecond), progress(), total)

	// The last run drains the backlog.
	run = startPipeline(t, config, env...)
	got := drain(t, run, func() *committedContents { return readCommitted(t, brokers) }, total)

	missing, dups := 0, 0
	for _, u := range uuids {
		switch n := got.events[u]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	alertDups := 0
	for k, n := range got.alerts {
		if n > 1 {
			alertDups += n - 1
			if exactlyOnce && alertDups < 5 {
				t.Errorf("alert %s committed %d times", k, n)
			}
		}
	}
	rules := make([]string, 0, len(got.alertRules))
	for id, n := range got.alertRules {
		rules = append(rules, fmt.Sprintf("%s=%d", id, n))
	}
	sort.Strings(rules)
	t.Logf("read_committed: %d events (%d distinct of %d), %d missing, %d duplicate events; %d alerts, %d duplicate alerts; %d checkpoint records; alerts by rule: %v",
		sum(got.events), len(got.events), total, missing, dups, sum(got.alerts), alertDups, got.checkpoints, rules)
	switch {
	case missing > 0 || len(got.events) != total:
		t.Errorf("want every event: %d missing, %d distinct of %d", missing, len(got.events), total)
	case exactlyOnce && dups > 0:
		t.Errorf("want every event exactly once: %d duplicates", dups)
	case !exactlyOnce:
		fmt.Printf("crash suite, at-least-once mode: %d kills, %d events, %d duplicate events (%.2f%%), %d duplicate alerts\n",
			kills, total, dups, 100*float64(dups)/float64(total), alertDups)
	}
	for _, id := range []string{"Okta.BruteForceLogins", "Okta.GeographicallyImprobableAccess"} {
		if got.alertRules[id] == 0 {
			t.Errorf("no %s alert after the crashes", id)
		}
	}
	// Detections across the crashes: attacks span every kill point (one is
	// under way at any instant of the backlog), and the alerts are those of
	// an uninterrupted run on the same events — the same alert_ids with the
	// same events and counts; exactly as many of each in exactly-once mode.
	want := uninterruptedAlerts(t, config, func(brokers []string, state string) []string {
		return crashEnv(srv.URL, brokers, state)
	}, total, keyedByUUID)
	compareAlerts(t, want, got.byAlertID, exactlyOnce)
	if t.Failed() {
		t.Logf("last run output:\n%s", tail(run.output.String(), 5000))
	}
}

// killRepeatedly starts a run and SIGKILLs it at a random instant, kills
// times: anywhere from start-up (cursor read, producer init) to deep in the
// backlog. progress counts the events committed so far.
func killRepeatedly(t *testing.T, rnd *rand.Rand, kills int, start func() *pipelineRun, progress func() int, total int) {
	t.Helper()
	var killedAt []string
	for i := range kills {
		run := start()
		d := time.Duration(300+rnd.IntN(2700)) * time.Millisecond
		select {
		case <-run.done:
			t.Fatalf("run %d exited by itself: %v\n%s", i, run.err, run.output.String())
		case <-time.After(d):
		}
		run.kill()
		killedAt = append(killedAt, d.Round(time.Millisecond).String())
		if i%3 == 2 {
			t.Logf("after kill %d: %d of %d events committed", i+1, progress(), total)
		}
	}
	t.Logf("SIGKILLed %d times, at %v after each start", kills, killedAt)
}

// drain waits (up to 4 minutes) until read sees total events, lets anything
// extra (a duplicate) land, SIGTERMs run, and returns what is committed.
func drain(t *testing.T, run *pipelineRun, read func() *committedContents, total int) *committedContents {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for len(read().events) < total && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	time.Sleep(1500 * time.Millisecond)
	took := run.terminate(t, 15*time.Second)
	if run.err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", run.err, tail(run.output.String(), 3000))
	}
	t.Logf("SIGTERM when idle: exited in %v", took.Round(time.Millisecond))
	return read()
}

// stateTopic is cel_detect's state topic in config/okta-to-kafka.yaml.
const stateTopic = "okta.detection_state"

func crashEnv(orgURL string, brokers []string, state string) []string {
	return []string{
		"OKTA_ORG_URL=" + orgURL,
		"OKTA_API_TOKEN=" + token,
		"OKTA_POLL_INTERVAL=300ms",
		"OKTA_INITIAL_LOOKBACK=6h",
		"OKTA_PAGE_LIMIT=200",
		"OKTA_RATE_LIMIT_SHARE=1",
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"OKTADETECT_STATE_DIR=" + state,
		"OKTADETECT_HTTP_ADDRESS=127.0.0.1:0",
		"OKTADETECT_SHUTDOWN_TIMEOUT=10s",
		// Above the backlog's span (5 hours): alerts are the same whatever
		// the arrival order only for events within max_lateness
		// (rules/README.md), and a run restarted mid-backlog re-reads the
		// pages in flight.
		"OKTADETECT_MAX_LATENESS=6h",
	}
}

// stateRecords counts the records of the state topic.
func stateRecords(t *testing.T, brokers []string) int64 {
	t.Helper()
	adm, ctx, done := adminQuery(t, brokers)
	defer done()
	ends, err := adm.ListEndOffsets(ctx, stateTopic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", stateTopic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// uninterruptedAlerts runs config once, without a crash, over the same orgs
// (alert ids are scoped by them) on a Kafka of its own and a fresh state
// directory (env gives the environment for both), and returns its alerts by
// alert_id.
func uninterruptedAlerts(t *testing.T, config string, env func(brokers []string, state string) []string, total int, keyOK eventKeyCheck) map[string]map[string]int {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	run := startPipeline(t, config, env(brokers, t.TempDir())...)
	testkit.Until(t, "the uninterrupted run to commit every event", func() (bool, string) {
		n := len(readCommittedKeyed(t, brokers, keyOK).events)
		return n >= total, fmt.Sprintf("%d of %d events", n, total)
	})
	time.Sleep(1500 * time.Millisecond) // let anything extra land
	run.terminate(t, 15*time.Second)
	return readCommittedKeyed(t, brokers, keyOK).byAlertID
}

// compareAlerts checks the crashed runs' alerts against the uninterrupted
// run's: the same alert_ids, each with the same (rule, event, count)
// records, as many times each; at least once, duplicates allowed. Both
// configs run one pipeline thread, so every run evaluates the log in the
// order Okta serves it and a crash only re-reads pages whose tags the state
// remembers: with several threads the page order, and with it the alert_ids
// of evidence straddling a dedup period, would change from run to run.
func compareAlerts(t *testing.T, want, got map[string]map[string]int, exactlyOnce bool) {
	t.Helper()
	perRule := map[string]int{}
	for _, w := range want {
		for rec, n := range w {
			perRule[rec[:strings.IndexByte(rec, '/')]] += n
		}
	}
	t.Logf("uninterrupted run: %d alert_ids; alerts by rule %v", len(want), perRule)
	var diffs []string
	note := func(f string, a ...any) {
		if len(diffs) < 10 {
			diffs = append(diffs, fmt.Sprintf(f, a...))
		}
	}
	for id, w := range want {
		g := got[id]
		if g == nil {
			note("alert_id %s missing (uninterrupted: %v)", id, w)
			continue
		}
		for rec, n := range w {
			if m := g[rec]; m == 0 || (exactlyOnce && m != n) {
				note("alert_id %s: %s committed %d times, uninterrupted %d", id, rec, m, n)
			}
		}
		for rec, m := range g {
			if w[rec] == 0 {
				note("alert_id %s: %s committed %d times, not in the uninterrupted run", id, rec, m)
			}
		}
	}
	for id, g := range got {
		if want[id] == nil {
			note("alert_id %s invented by the crashes: %v", id, g)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("the alerts after the crashes are not those of an uninterrupted run:\n%s", strings.Join(diffs, "\n"))
	}
}

// crashBacklog is n ordinary events over the last 5 hours with attacks
// sprinkled through: bursts of brute force and impossible travel, and slow
// ones that are always under way, so that every kill point falls inside some
// attack — a brute force of 5 failures spread over 13 minutes starts every
// 10 minutes, an impossible travel (30 minutes between its logins) every 15.
func crashBacklog(g *oktasim.Generator, n int) []oktasim.LogEvent {
	return crashBacklogUntil(g, n, time.Now())
}

// crashBacklogUntil is crashBacklog over the 5 hours before now.
func crashBacklogUntil(g *oktasim.Generator, n int, now time.Time) []oktasim.LogEvent {
	start := now.Add(-5 * time.Hour)
	step := 5 * time.Hour / time.Duration(n+1)
	evs := g.Backlog(n, start, step)
	for i := range 8 {
		at := start.Add(time.Duration(i+1) * 30 * time.Minute)
		evs = append(evs, g.BruteForce(fmt.Sprintf("victim%d@example.com", i), fmt.Sprintf("203.0.113.%d", 10+i), at, 8)...)
		evs = append(evs, g.ImpossibleTravel(fmt.Sprintf("traveller%d@example.com", i), at.Add(5*time.Minute))...)
	}
	end := now.Add(-20 * time.Minute)
	for i, at := 0, start.Add(time.Minute); at.Before(end); i, at = i+1, at.Add(10*time.Minute) {
		user, ip := fmt.Sprintf("slow%d@example.com", i), fmt.Sprintf("198.51.100.%d", 1+i%250)
		for j := range 5 {
			evs = append(evs, g.BruteForce(user, ip, at.Add(time.Duration(j)*195*time.Second), 1)...)
		}
	}
	for i, at := 0, start.Add(2*time.Minute); at.Before(end.Add(-15 * time.Minute)); i, at = i+1, at.Add(15*time.Minute) {
		evs = append(evs, g.ImpossibleTravel(fmt.Sprintf("roamer%d@example.com", i), at)...)
	}
	// In time order, the attacks among the ordinary events: persisted
	// after them, they would all be late (the simulator persists an event
	// published before the log's tail when it is appended), served in the
	// last pages, and no kill but one in those pages would split one.
	slices.SortStableFunc(evs, func(a, b oktasim.LogEvent) int { return a.Published.Compare(b.Published) })
	return evs
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
