package okta_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/oktadetect/oktadetect/internal/impl/okta"
	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const testToken = "00aTestTokenNeverInLogs-9f8e7d6c5b4a"

// simOrg is a simulated org on a real HTTP server.
type simOrg struct {
	sim *oktasim.Sim
	srv *httptest.Server
	gen *oktasim.Generator
}

func newSimOrg(t *testing.T, opts oktasim.Options) *simOrg {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	sim := oktasim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &simOrg{sim: sim, srv: srv, gen: oktasim.NewGenerator(42)}
}

// backlog persists n ordinary events published over the last n×10ms and
// returns their uuids in persistence order.
func (o *simOrg) backlog(n int) []string {
	evs := o.gen.Backlog(n, time.Now().Add(-time.Duration(n)*10*time.Millisecond-time.Minute), 10*time.Millisecond)
	o.sim.Persist(evs...)
	uuids := make([]string, len(evs))
	for i, e := range evs {
		uuids[i] = e.UUID
	}
	return uuids
}

// collector gathers what the pipeline delivers.
type collector struct {
	mu     sync.Mutex
	uuids  []string
	meta   []map[string]string
	counts map[string]int
}

func (c *collector) consume(_ context.Context, b service.MessageBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	for _, m := range b {
		raw, err := m.AsBytes()
		if err != nil {
			return err
		}
		var ev struct {
			UUID string `json:"uuid"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("delivered message is not an event: %w", err)
		}
		md := map[string]string{}
		_ = m.MetaWalkMut(func(k string, v any) error { md[k] = fmt.Sprint(v); return nil })
		c.uuids = append(c.uuids, ev.UUID)
		c.meta = append(c.meta, md)
		c.counts[ev.UUID]++
	}
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.uuids)
}

// waitForAll waits until every one of uuids has been delivered (a count of
// messages is not enough: pages read again after a resume count too).
func (c *collector) waitForAll(t *testing.T, uuids []string) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("%d events to be delivered", len(uuids)), func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, u := range uuids {
			if c.counts[u] == 0 {
				return false, fmt.Sprintf("%d messages, %s not among them", len(c.uuids), u)
			}
		}
		return true, ""
	})
}

func (c *collector) waitFor(t *testing.T, n int) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("%d events to be delivered", n), func() (bool, string) {
		return c.len() >= n, fmt.Sprintf("%d events", c.len())
	})
}

// pipeline runs okta_system_log with the given extra YAML fields into c.
type pipeline struct {
	logs   *testkit.Buffer
	stream *service.Stream
	cancel context.CancelFunc
	done   chan error
}

func startPipeline(t *testing.T, inputYAML, resourcesYAML string, c *collector) *pipeline {
	t.Helper()
	b := service.NewStreamBuilder()
	logs := &testkit.Buffer{}
	b.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := b.AddInputYAML(inputYAML); err != nil {
		t.Fatalf("input config: %v", err)
	}
	if resourcesYAML != "" {
		if err := b.AddResourcesYAML(resourcesYAML); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddBatchConsumerFunc(c.consume); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{logs: logs, stream: stream, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- stream.Run(ctx) }()
	t.Cleanup(func() {
		p.stop()
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("the API token appears in the logs")
		}
	})
	return p
}

func (p *pipeline) stop() {
	stopErr := p.stream.StopWithin(5 * time.Second)
	p.cancel()
	if stopErr == nil {
		return // stopped gracefully: Run may not return by itself
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

func inputConf(org *simOrg, extra string) string {
	return fmt.Sprintf(`
okta_system_log:
  org_url: %s
  api_token: %s
  poll_interval: 200ms
  initial_lookback: 24h
  backoff:
    initial_interval: 50ms
    max_interval: 500ms
%s`, org.srv.URL, testToken, extra)
}

func assertExactlyOnce(t *testing.T, c *collector, want []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range want {
		if c.counts[u] != 1 {
			t.Fatalf("event %s delivered %d times, want once", u, c.counts[u])
		}
	}
	if len(c.uuids) != len(want) {
		t.Fatalf("delivered %d events, want %d", len(c.uuids), len(want))
	}
}

// A backlog of 20 full pages and a short one costs 21 requests: the short
// page ends the tick (no request for the empty page after it), and the next
// tick is an hour away.
func TestBacklogArrivesExactlyOnceInPersistenceOrder(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	fullPages := testkit.Scaled(20, 4)
	want := org.backlog(fullPages*1000 + 500)
	c := &collector{}
	conf := strings.Replace(inputConf(org, "  limit: 1000\n  rate_limit_share: 1"), "poll_interval: 200ms", "poll_interval: 1h", 1)
	startPipeline(t, conf, "", c)
	c.waitForAll(t, want)
	assertExactlyOnce(t, c, want)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range want {
		if c.uuids[i] != want[i] {
			t.Fatalf("event %d is %s, want %s: not in persistence order", i, c.uuids[i], want[i])
		}
	}
	md := c.meta[0]
	if md["okta_uuid"] != want[0] || md["okta_org"] != strings.TrimPrefix(org.srv.URL, "http://") || md["okta_event_type"] == "" || md["okta_published"] == "" {
		t.Fatalf("metadata %v", md)
	}
	if reqs := len(org.sim.Requests()); reqs != fullPages+1 {
		t.Fatalf("%d requests for %d full pages and a short one, want %d", reqs, fullPages, fullPages+1)
	}
}

func TestLateEventIsDelivered(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	want := org.backlog(50)
	c := &collector{}
	startPipeline(t, inputConf(org, ""), "", c)
	c.waitFor(t, len(want))

	// Persisted now, published ten minutes before the events already read.
	late := org.gen.Ordinary(time.Now().Add(-10 * time.Minute))
	org.sim.Persist(late)
	c.waitFor(t, len(want)+1)
	assertExactlyOnce(t, c, append(want, late.UUID))
}

// An idle org costs one request per tick: every request is the same
// polling link, and none follows another within the same tick.
func TestIdleOrgCostsOneRequestPerTick(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{})
	c := &collector{}
	startPipeline(t, strings.Replace(inputConf(org, ""), "poll_interval: 200ms", "poll_interval: 500ms", 1), "", c)
	testkit.Until(t, "6 idle ticks", func() (bool, string) {
		n := len(org.sim.Requests())
		return n >= 6, fmt.Sprintf("%d requests", n)
	})
	reqs := org.sim.Requests()
	for i := 1; i < len(reqs); i++ {
		if reqs[i].URL != reqs[0].URL {
			t.Fatalf("request %d of an idle org is %s, want the polling link %s again", i, reqs[i].URL, reqs[0].URL)
		}
		// poll_interval is 500ms: a second request in one tick would
		// follow within milliseconds (half a tick leaves room for a
		// loaded machine).
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < 250*time.Millisecond {
			t.Fatalf("request %d came %v after the one before: more than one request per 500ms tick", i, gap)
		}
	}
}

// A token from an environment variable with a trailing newline (a Kubernetes
// secret made with echo) works: Benthos turns the newline into the two
// characters \n while interpolating, and the input trims both.
func TestTokenWithTrailingNewlineFromEnv(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	want := org.backlog(10)
	t.Setenv("OKTADETECT_TEST_TOKEN", testToken+"\n")
	t.Setenv("OKTADETECT_TEST_ORG", org.srv.URL+"\n")
	conf := strings.Replace(inputConf(org, ""), "api_token: "+testToken, "api_token: ${OKTADETECT_TEST_TOKEN}", 1)
	conf = strings.Replace(conf, "org_url: "+org.srv.URL, "org_url: ${OKTADETECT_TEST_ORG}", 1)
	c := &collector{}
	startPipeline(t, conf, "", c)
	c.waitForAll(t, want)
	assertExactlyOnce(t, c, want)
}

func TestFaultsLoseNothingAndRespectRateShare(t *testing.T) {
	const window = 2 * time.Second
	org := newSimOrg(t, oktasim.Options{RateLimit: 10, RateWindow: window})
	want := org.backlog(3000)
	org.sim.Inject(
		oktasim.Fault{Kind: oktasim.FaultStatus, Status: 500},
		oktasim.Fault{Kind: oktasim.FaultReset},
	)
	c := &collector{}
	startPipeline(t, inputConf(org, "  limit: 300\n  rate_limit_share: 0.5"), "", c)
	c.waitFor(t, 900)
	org.sim.Inject(
		oktasim.Fault{Kind: oktasim.FaultRateLimit, RetryAfter: 1500 * time.Millisecond},
		oktasim.Fault{Kind: oktasim.FaultStatus, Status: 503},
		oktasim.Fault{Kind: oktasim.FaultTruncated},
		oktasim.Fault{Kind: oktasim.FaultHTML},
		oktasim.Fault{Kind: oktasim.FaultStatus, Status: 502},
		oktasim.Fault{Kind: oktasim.FaultSlow, Delay: 300 * time.Millisecond},
	)
	c.waitFor(t, len(want))
	time.Sleep(300 * time.Millisecond)
	assertExactlyOnce(t, c, want)

	// Never more than share × limit = 5 requests in one of Okta's windows.
	perWindow := map[time.Time]int{}
	var after429 time.Time
	reqs := org.sim.Requests()
	for i, r := range reqs {
		perWindow[r.At.Truncate(window)]++
		if r.Status == 429 && i+1 < len(reqs) {
			after429 = reqs[i+1].At
			if gap := after429.Sub(r.At); gap < time.Second {
				t.Errorf("retried %v after a 429 whose reset was 1.5s away", gap)
			}
		}
	}
	for w, n := range perWindow {
		if n > 5 {
			t.Errorf("%d requests in the window starting %v, share allows 5", n, w.Format(time.RFC3339Nano))
			for _, r := range reqs {
				t.Logf("%s %d %s", r.At.Format("15:04:05.000"), r.Status, r.URL)
			}
		}
	}
	if after429.IsZero() {
		t.Error("the injected 429 was never served")
	}
}

func TestBadTokenGivesOneClearError(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{Token: "the-real-token"})
	org.backlog(10)
	c := &collector{}
	p := startPipeline(t, inputConf(org, ""), "", c)
	deadline := time.Now().Add(testkit.Patience)
	for !strings.Contains(p.logs.String(), "rejected the credentials") {
		if time.Now().After(deadline) {
			t.Fatalf("no clear error about the token in the logs:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := len(org.sim.Requests()); n != 1 {
		t.Fatalf("%d requests within a second of a 401: must back off, not hammer", n)
	}
	if !strings.Contains(p.logs.String(), "E0000011") || !strings.Contains(p.logs.String(), "api_token") {
		t.Fatalf("the error should name Okta's code and the field to fix:\n%s", p.logs.String())
	}
	if c.len() != 0 {
		t.Fatal("events delivered with a rejected token")
	}
}

func TestForbiddenNamesThePermission(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{Forbidden: true})
	p := startPipeline(t, inputConf(org, ""), "", &collector{})
	waitLog(t, p, "okta.logs.read")
}

func TestForeignNextLinkIsRefused(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	want := org.backlog(30)
	org.sim.Inject(oktasim.Fault{Kind: oktasim.FaultForeignNext})
	c := &collector{}
	p := startPipeline(t, inputConf(org, "  limit: 10"), "", c)
	waitLog(t, p, "refusing next link to https://attacker.example")
	// The refused page is retried on the org's own link: nothing lost.
	c.waitFor(t, len(want))
	assertExactlyOnce(t, c, want)
	for _, r := range org.sim.Requests() {
		if strings.Contains(r.URL, "attacker.example") {
			t.Fatalf("a request went to the foreign origin: %s", r.URL)
		}
	}
}

func waitLog(t *testing.T, p *pipeline, want string) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("the log to say %q", want), func() (bool, string) {
		logs := p.logs.String()
		return strings.Contains(logs, want), "\n" + logs
	})
}

func TestBadConfigIsAClearError(t *testing.T) {
	cases := map[string]string{
		"org_url: http://acme.okta.com\n  api_token: x":                            "only https",
		"org_url: https://acme.okta.com/api/v1/logs\n  api_token: x":               "without a path",
		"org_url: ':::'\n  api_token: x":                                           "not a URL",
		"org_url: https://acme.okta.com\n  api_token: ''":                          "api_token is empty",
		"org_url: https://acme.okta.com\n  api_token: x\n  limit: 5000":            "limit must be between 1 and 1000",
		"org_url: https://acme.okta.com\n  api_token: x\n  rate_limit_share: 0":    "rate_limit_share",
		"org_url: https://acme.okta.com\n  api_token: x\n  checkpoint_cache: nope": "not a cache resource",
		"org_url: https://acme.okta.com\n  api_token: 'SSWS 00abc'":                `api_token starts with "SSWS ": set only the token itself, without the SSWS prefix`,
		"org_url: https://acme.okta.com\n  api_token: 'Bearer 00abc'":              `without the Bearer prefix`,
		"org_url: https://acme.okta.com\n  api_token: '00a bc'":                    "api_token contains whitespace",
		"org_url: https://acme-admin.okta.com\n  api_token: x":                     "Admin Console, which does not serve the API with an API token: use https://acme.okta.com",
	}
	for conf, want := range cases {
		b := service.NewStreamBuilder()
		if err := b.AddInputYAML("okta_system_log:\n  " + conf); err != nil {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q", conf, err, want)
			}
			continue
		}
		_ = b.AddBatchConsumerFunc(func(context.Context, service.MessageBatch) error { return nil })
		s, err := b.Build()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
			err = s.Run(ctx)
			cancel()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error saying %q", conf, err, want)
		}
	}
}

func TestResumesFromCheckpointWithoutLossOrDuplicates(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	first := org.backlog(500)
	dir := t.TempDir()
	resources := fmt.Sprintf("cache_resources:\n  - label: cursor\n    file:\n      directory: %s\n", dir)
	conf := inputConf(org, "  limit: 100\n  checkpoint_cache: cursor")

	c1 := &collector{}
	p1 := startPipeline(t, conf, resources, c1)
	c1.waitForAll(t, first)
	waitCursorPast(t, dir, first[len(first)-1])
	p1.stop()
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("want the cursor's two slots in %s, got %v", dir, entries)
	}

	second := org.backlog(250)
	c2 := &collector{}
	p2 := startPipeline(t, conf, resources, c2)
	c2.waitForAll(t, second)
	waitCursorPast(t, dir, second[len(second)-1])
	p2.stop() // nothing more can arrive
	assertExactlyOnce(t, c2, second)
}

// A file cache whose directory does not exist: the input refuses to read
// (events flowing while no cursor can be saved would all be read again after
// a restart), says which cache, key and fix, and starts once the directory
// exists.
func TestUnsavableCheckpointIsLoud(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	want := org.backlog(20)
	missing := filepath.Join(t.TempDir(), "does", "not", "exist")
	resources := fmt.Sprintf("cache_resources:\n  - label: cursor\n    file:\n      directory: %s\n", missing)
	c := &collector{}
	p := startPipeline(t, inputConf(org, "  checkpoint_cache: cursor"), resources, c)
	testkit.Until(t, "the unsavable cursor to be reported twice", func() (bool, string) {
		return strings.Count(p.logs.String(), "cannot save the Okta cursor") >= 2, p.logs.String()
	})
	logs := p.logs.String()
	for _, want := range []string{"level=WARN", `No stored cursor under \"okta-cursor-`, "from initial_lookback (24h0m0s) ago",
		"level=ERROR", `checkpoint_cache \"cursor\" key \"okta-cursor-`, "no such file or directory", "the input reads nothing until the cursor can be saved", "create its directory"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the error must say %q:\n%s", want, logs)
		}
	}
	if n := len(org.sim.Requests()); n != 0 || c.len() != 0 {
		t.Fatalf("%d requests sent and %d events delivered with a cursor that cannot be saved, want none", n, c.len())
	}
	if err := os.MkdirAll(missing, 0o700); err != nil {
		t.Fatal(err)
	}
	c.waitForAll(t, want)
	assertExactlyOnce(t, c, want)
}

func TestHTMLBodyIsAClearErrorAndRetried(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	want := org.backlog(10)
	org.sim.Inject(oktasim.Fault{Kind: oktasim.FaultHTML})
	c := &collector{}
	p := startPipeline(t, inputConf(org, ""), "", c)
	waitLog(t, p, `System Log response is not a JSON array (Content-Type \"text/html`)
	c.waitFor(t, len(want))
	assertExactlyOnce(t, c, want)
}

// A crash while the file cache rewrites the cursor leaves that file torn; the
// input resumes from the other slot, one page earlier: nothing is lost, and at
// most one page is read again.
func TestTornCheckpointResumesFromTheOtherSlot(t *testing.T) {
	org := newSimOrg(t, oktasim.Options{RateLimit: 1000})
	first := org.backlog(300)
	dir := t.TempDir()
	resources := fmt.Sprintf("cache_resources:\n  - label: cursor\n    file:\n      directory: %s\n", dir)
	conf := inputConf(org, "  limit: 100\n  checkpoint_cache: cursor")

	c1 := &collector{}
	p1 := startPipeline(t, conf, resources, c1)
	c1.waitForAll(t, first)
	waitCursorPast(t, dir, first[len(first)-1])
	p1.stop()

	// Tear the newest slot, as a SIGKILL between truncate and write does. The
	// other slot must hold the page just before it (acks of several pages
	// arriving together must not make it several pages older).
	slots := readSlots(t, dir)
	newest, older := slots[0], slots[1]
	if newest.seq < older.seq {
		newest, older = older, newest
	}
	if !slices.Contains(older.uuids, first[199]) {
		t.Fatalf("the older slot (seq %d) does not hold page 2's cursor: the slots are more than one page apart", older.seq)
	}
	if err := os.WriteFile(newest.path, []byte(`{"v":1,"ne`), 0o644); err != nil {
		t.Fatal(err)
	}
	second := org.backlog(100)
	c2 := &collector{}
	p2 := startPipeline(t, conf, resources, c2)
	c2.waitForAll(t, second)
	waitLog(t, p2, "Ignoring the unreadable cursor")
	waitCursorPast(t, dir, second[len(second)-1])
	p2.stop() // nothing more can arrive: the counts below are final
	c2.mu.Lock()
	for _, u := range second {
		if c2.counts[u] != 1 {
			t.Fatalf("event %s delivered %d times after resuming from the older slot", u, c2.counts[u])
		}
	}
	if extra := len(c2.uuids) - len(second); extra > 100 {
		t.Fatalf("%d events read again, want at most one page (100)", extra)
	}
	c2.mu.Unlock()

	// Both slots unreadable: a clear error, no silent restart from scratch.
	for _, s := range readSlots(t, dir) {
		_ = os.WriteFile(s.path, []byte("garbage"), 0o644)
	}
	p3 := startPipeline(t, conf, resources, &collector{})
	waitLog(t, p3, "no readable cursor")
}

// storedSlot is one checkpoint slot file as the file cache holds it.
type storedSlot struct {
	path  string
	seq   uint64
	uuids []string
}

func readSlots(t *testing.T, dir string) []storedSlot {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var slots []storedSlot
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		raw, _ := os.ReadFile(path)
		var cp struct {
			Seq   uint64   `json:"seq"`
			UUIDs []string `json:"uuids"`
		}
		_ = json.Unmarshal(raw, &cp) // a torn or empty slot reads as seq 0
		slots = append(slots, storedSlot{path: path, seq: cp.Seq, uuids: cp.UUIDs})
	}
	return slots
}

// waitCursorPast waits until a stored cursor's page holds uuid: the commit of
// the page that delivered it has landed.
func waitCursorPast(t *testing.T, dir, uuid string) {
	t.Helper()
	testkit.Until(t, "the cursor past "+uuid+" to be stored", func() (bool, string) {
		var seen []uint64
		for _, s := range readSlots(t, dir) {
			if slices.Contains(s.uuids, uuid) {
				return true, ""
			}
			seen = append(seen, s.seq)
		}
		return false, fmt.Sprintf("slots with seq %v, none holding it", seen)
	})
}
