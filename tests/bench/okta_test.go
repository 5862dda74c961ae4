package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/oktadetect/oktadetect/internal/impl/okta"
	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// Benchmarks that read from the Okta simulator over HTTP, through the real
// okta_system_log input. Completion is observed where it matters: the input
// stores its cursor in checkpoint_cache only once the output acknowledged
// every earlier page, so a run is over when the stored cursor names the
// backlog's last event (the "bench_cursor" cache below watches for it).

const benchToken = "00bench-token-not-a-secret"

// ---------------------------------------------------------------------------
// Completion: a cache resource that records how far the stored cursor got.

type runProgress struct {
	want    int // persistence position of the last event
	once    sync.Once
	done    chan struct{}
	mu      sync.Mutex
	commits int
	seq     int
}

var (
	progressMu sync.Mutex
	progress   = map[string]*runProgress{}
	runCounter int
)

// newRun registers a run that ends when the cursor reaches position want.
func newRun(want int) (string, *runProgress) {
	progressMu.Lock()
	defer progressMu.Unlock()
	runCounter++
	id := fmt.Sprintf("run%d", runCounter)
	p := &runProgress{want: want, done: make(chan struct{})}
	progress[id] = p
	return id, p
}

// cursorSeq is the persistence position an Okta cursor points after: the
// after parameter is "<ms>_<position>" (the simulator's and the streaming
// server's format).
func cursorSeq(next string) int {
	u, err := url.Parse(next)
	if err != nil {
		return 0
	}
	after := u.Query().Get("after")
	_, pos, _ := strings.Cut(after, "_")
	n, _ := strconv.Atoi(pos)
	return n
}

type cursorCache struct{ p *runProgress }

func (c *cursorCache) Get(context.Context, string) ([]byte, error) {
	return nil, service.ErrKeyNotFound
}

func (c *cursorCache) Set(_ context.Context, _ string, value []byte, _ *time.Duration) error {
	var cp struct {
		Next string `json:"next"`
	}
	if err := json.Unmarshal(value, &cp); err != nil {
		return err
	}
	seq := cursorSeq(cp.Next)
	c.p.mu.Lock()
	c.p.commits++
	c.p.seq = max(c.p.seq, seq)
	c.p.mu.Unlock()
	if seq >= c.p.want {
		c.p.once.Do(func() { close(c.p.done) })
	}
	return nil
}

func (c *cursorCache) Add(ctx context.Context, k string, v []byte, ttl *time.Duration) error {
	return c.Set(ctx, k, v, ttl)
}
func (c *cursorCache) Delete(context.Context, string) error { return nil }
func (c *cursorCache) Close(context.Context) error          { return nil }

func init() {
	err := service.RegisterCache("bench_cursor",
		service.NewConfigSpec().Field(service.NewStringField("run")),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.Cache, error) {
			id, err := conf.FieldString("run")
			if err != nil {
				return nil, err
			}
			progressMu.Lock()
			p := progress[id]
			progressMu.Unlock()
			if p == nil {
				return nil, fmt.Errorf("unknown run %q", id)
			}
			return &cursorCache{p: p}, nil
		})
	if err != nil {
		panic(err)
	}
}

// ---------------------------------------------------------------------------
// Simulated orgs.

// benchOrg is an org holding n corpus events (realistic mix with the
// attack scenarios), published in the past so one polling request from
// initial_lookback (orgLookback) reaches them all. It is either a simulator
// in this process (sim set: the rate-limited benchmark, which reads the
// simulator's request log) or the page server in a child process.
type benchOrg struct {
	sim   *oktasim.Sim // nil when served by a child process
	url   string
	n     int
	close func()
}

const orgLookback = 2400 * time.Hour

func newBenchOrg(tb testing.TB, n int, opts oktasim.Options) *benchOrg {
	tb.Helper()
	opts.Token = benchToken
	sim := oktasim.New(opts)
	s := corpus.NewStream(time.Now().Add(-corpus.Span(n) - time.Hour))
	const chunk = 10_000
	raws := make([]json.RawMessage, 0, chunk)
	for i := range n {
		raws = append(raws, s.Next())
		if len(raws) == chunk || i == n-1 {
			if err := sim.PersistRaw(raws...); err != nil {
				tb.Fatal(err)
			}
			raws = raws[:0]
		}
	}
	runtime.GC() // the setup's garbage is not the benchmark's
	srv := httptest.NewServer(sim)
	return &benchOrg{sim: sim, url: srv.URL, n: n, close: srv.Close}
}

// The unthrottled org, shared by every benchmark that is not about the rate
// limit (its limit is far above anything reached). It is served by the page
// server in a child process with every page pregenerated, so the measured
// process holds only the pipeline; BENCH_INPROCESS_SIM=1 serves it from a
// simulator in this process instead (how round 2 measured, for comparison).
var (
	fastOrgMu sync.Mutex
	fastOrgs  = map[int]*benchOrg{}
)

func fastOrg(tb testing.TB) *benchOrg {
	n := benchEventCount()
	fastOrgMu.Lock()
	defer fastOrgMu.Unlock()
	if o := fastOrgs[n]; o != nil {
		return o
	}
	var o *benchOrg
	if os.Getenv("BENCH_INPROCESS_SIM") != "" {
		o = newBenchOrg(tb, n, oktasim.Options{RateLimit: 1_000_000})
	} else {
		addr, stop := startPageServer(tb, n, true)
		o = &benchOrg{url: "http://" + addr, n: n, close: stop}
	}
	fastOrgs[n] = o // kept for the process's life: a child exits when its stdin closes
	return o
}

func oktaInputYAML(url string, share float64, run string) string {
	return fmt.Sprintf(`
input:
  okta_system_log:
    org_url: %s
    api_token: %s
    poll_interval: 1s
    initial_lookback: %s
    limit: 1000
    rate_limit_share: %v
    checkpoint_cache: cursor
cache_resources:
  - label: cursor
    bench_cursor:
      run: %s
logger:
  level: ERROR
`, url, benchToken, orgLookback, share, run)
}

// runStream runs a Benthos stream until the cursor reaches event n (every
// event acknowledged by the output), and returns how long that took.
func runStream(tb testing.TB, yaml string, p *runProgress, timeout time.Duration, extra func(*service.StreamBuilder)) time.Duration {
	tb.Helper()
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(yaml); err != nil {
		tb.Fatalf("%v\n%s", err, yaml)
	}
	if extra != nil {
		extra(sb)
	}
	st, err := sb.Build()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- st.Run(ctx) }()
	select {
	case <-p.done:
	case err := <-errc:
		tb.Fatalf("stream ended before the backlog was drained: %v", err)
	case <-time.After(timeout):
		p.mu.Lock()
		defer p.mu.Unlock()
		tb.Fatalf("backlog not drained within %v: cursor at %d of %d", timeout, p.seq, p.want)
	}
	elapsed := time.Since(start)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopCancel()
	if err := st.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		tb.Logf("stopping: %v", err)
	}
	return elapsed
}

func reportEvents(b *testing.B, total time.Duration, events int) {
	per := float64(total.Nanoseconds()) / float64(events)
	b.ReportMetric(per, "ns/event")
	b.ReportMetric(1e9/per, "events/s")
}

// ---------------------------------------------------------------------------
// Poller benchmarks.

// BenchmarkPollerBareHTTP is the baseline: a plain net/http loop following
// the next links as fast as the simulator answers, reading each body whole
// and parsing nothing, no rate limit.
func BenchmarkPollerBareHTTP(b *testing.B) {
	org := fastOrg(b)
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		link := org.url + "/api/v1/logs?limit=1000&sortOrder=ASCENDING&since=" +
			url.QueryEscape(time.Now().Add(-orgLookback).UTC().Format("2006-01-02T15:04:05.000Z"))
		pages := 0
		for {
			req, _ := http.NewRequest(http.MethodGet, link, nil)
			req.Header.Set("Authorization", "SSWS "+benchToken)
			req.Header.Set("Accept", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("status %d: %v", resp.StatusCode, err)
			}
			next := ""
			for _, l := range resp.Header.Values("Link") {
				if strings.HasSuffix(l, `rel="next"`) {
					next = strings.TrimSuffix(strings.TrimPrefix(l[:strings.IndexByte(l, '>')], "<"), ">")
				}
			}
			if string(body) == "[]" {
				break
			}
			pages++
			link = next
		}
		if got := cursorSeq(link); got != org.n {
			b.Fatalf("ended at event %d of %d", got, org.n)
		}
		total += time.Since(start)
	}
	reportEvents(b, total, b.N*org.n)
}

// BenchmarkPollerUnlimited: okta_system_log → drop with a limit it never
// reaches and rate_limit_share 1: what the input costs per event.
func BenchmarkPollerUnlimited(b *testing.B) {
	org := fastOrg(b)
	var total time.Duration
	for b.Loop() {
		run, p := newRun(org.n)
		yaml := oktaInputYAML(org.url, 1, run) + "output:\n  drop: {}\n"
		total += runStream(b, yaml, p, 10*time.Minute, nil)
	}
	reportEvents(b, total, b.N*org.n)
}

// BenchmarkPollerRateLimited: the same input draining the backlog under a
// rate limit scaled down in time (Okta's window is a minute; here
// rateLimit requests per rateWindow), with rate_limit_share 0.5. It reports
// the requests sent per window against the share allowed (used_%: the mean
// over the windows wholly inside the drain), the most in any window (never
// above the allowance), 429s, and whether every page was full.
func BenchmarkPollerRateLimited(b *testing.B) {
	const (
		rateLimit  = 20
		rateWindow = 2 * time.Second
		share      = 0.5
		allowed    = 10 // floor(share × rateLimit)
	)
	n := benchEventCount()
	org := newBenchOrg(b, n, oktasim.Options{RateLimit: rateLimit, RateWindow: rateWindow})
	defer org.close()
	var (
		total                    time.Duration
		fullWindows, fullReqs    int
		maxPerWindow, throttled  int
		okRequests, wantRequests int
	)
	for b.Loop() {
		already := len(org.sim.Requests())
		run, p := newRun(n)
		yaml := oktaInputYAML(org.url, share, run) + "output:\n  drop: {}\n"
		total += runStream(b, yaml, p, 30*time.Minute, nil)

		reqs := org.sim.Requests()[already:]
		perWindow := map[time.Time]int{}
		var first, last time.Time
		for _, r := range reqs {
			w := r.At.Truncate(rateWindow)
			perWindow[w]++
			if first.IsZero() || w.Before(first) {
				first = w
			}
			if w.After(last) {
				last = w
			}
			switch r.Status {
			case 200:
				okRequests++
			case 429:
				throttled++
			}
		}
		for w, c := range perWindow {
			maxPerWindow = max(maxPerWindow, c)
			if w.After(first) && w.Before(last) { // windows wholly inside the drain
				fullWindows++
				fullReqs += c
			}
		}
		// Full pages: n/1000 pages with events; the run ends at the commit
		// of the last one, so the empty page after it may not have been sent.
		wantRequests += (n + 999) / 1000
	}
	if fullWindows > 0 {
		mean := float64(fullReqs) / float64(fullWindows)
		b.ReportMetric(mean, "req/window")
		b.ReportMetric(100*mean/allowed, "used_%")
	}
	b.ReportMetric(float64(maxPerWindow), "max_req/window")
	b.ReportMetric(allowed, "allowed/window")
	b.ReportMetric(float64(throttled), "429s")
	b.ReportMetric(float64(okRequests)/float64(wantRequests), "requests/full_pages")
	reportEvents(b, total, b.N*n)
}
