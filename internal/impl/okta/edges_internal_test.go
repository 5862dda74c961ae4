package okta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// The tests here drive one okta_system_log input over real HTTP against the
// simulator, on a fake clock shared by both: every wait the input takes is
// recorded and passes at once, so minutes and hours of rate-limit behaviour
// are asserted exactly, without timing anything.

const edgeToken = "00edgeTokenNeverInLogs-1a2b3c4d5e6f7a8b9c"

// errHorizon ends a run: the input wanted to wait past the fake time the
// test covers.
var errHorizon = errors.New("the test's horizon is reached")

// edgeRun is one input on a fake clock, against one simulated org.
type edgeRun struct {
	t       *testing.T
	clock   *testkit.Clock
	start   time.Time
	horizon time.Time
	sim     *oktasim.Sim
	in      *systemLogInput
	logs    *testkit.Buffer
	waits   []time.Duration
	// onSleep runs after each wait, with the clock already moved on.
	onSleep func(d time.Duration)
}

func newEdgeRun(t *testing.T, opts oktasim.Options, extraYAML string, horizon time.Duration) *edgeRun {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	opts.Now = clock.Now
	if opts.Token == "" {
		opts.Token = edgeToken
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 10_000 // the simulator never limits: the input must
	}
	sim := oktasim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	r := &edgeRun{t: t, clock: clock, start: clock.Now(), horizon: clock.Now().Add(horizon), sim: sim, logs: &testkit.Buffer{}}
	conf, err := inputSpec().ParseYAML(fmt.Sprintf(`
org_url: %s
api_token: %s
poll_interval: 200ms
initial_lookback: 1h
rate_limit_share: 0.5
%s`, srv.URL, edgeToken, extraYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	in, err := newSystemLogInput(conf, service.MockResources(service.MockResourcesOptUseLogger(logger)), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(context.Background()) })
	r.in = in
	return r
}

// Now is the run's fake time: the run is the input's clock.
func (r *edgeRun) Now() time.Time { return r.clock.Now() }

// Sleep records the wait and moves the clock on at once, unless the wait
// would pass the horizon.
func (r *edgeRun) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if r.clock.Now().Add(d).After(r.horizon) {
		return errHorizon
	}
	r.waits = append(r.waits, d)
	r.clock.Advance(d)
	if r.onSleep != nil {
		r.onSleep(d)
	}
	return nil
}

// run drives the input as Benthos does (Connect until it succeeds, honouring
// ErrBackOff; ReadBatch until ErrNotConnected; every batch acknowledged)
// until it wants to wait past the horizon. Errors Benthos would log are
// written to the same log, as Benthos writes them.
func (r *edgeRun) run() (delivered int) {
	ctx := context.Background()
	for {
		err := r.in.Connect(ctx)
		if errors.Is(err, errHorizon) {
			return delivered
		}
		if err != nil {
			fmt.Fprintf(r.logs, "level=ERROR msg=\"Failed to connect to okta_system_log: %v\"\n", err)
			var bo *service.ErrBackOff
			if !errors.As(err, &bo) {
				r.t.Fatalf("Connect: %v", err)
			}
			if err := r.Sleep(ctx, bo.Wait); errors.Is(err, errHorizon) {
				return delivered
			}
			continue
		}
		for {
			batch, ack, err := r.in.ReadBatch(ctx)
			if errors.Is(err, errHorizon) {
				return delivered
			}
			if errors.Is(err, service.ErrNotConnected) {
				break
			}
			if err != nil {
				fmt.Fprintf(r.logs, "level=ERROR msg=\"Failed to read message: %v\"\n", err)
				continue
			}
			delivered += len(batch)
			if err := ack(ctx, nil); err != nil {
				r.t.Fatalf("ack: %v", err)
			}
		}
	}
}

func (r *edgeRun) maxWait() time.Duration {
	var m time.Duration
	for _, w := range r.waits {
		m = max(m, w)
	}
	return m
}

// assertShare checks that the input never sent more than share × the
// default limit (0.5 × 60 = 30) requests per minute, counted the way its
// windows fall: at most 30k requests in the first k minutes after the first.
// It also checks the input kept reading (the windows were used).
func (r *edgeRun) assertDefaultShare() {
	r.t.Helper()
	reqs := r.sim.Requests()
	if len(reqs) == 0 {
		r.t.Fatal("no request was sent")
	}
	first := reqs[0].At
	minutes := int(r.horizon.Sub(first) / time.Minute)
	for k := 1; k <= minutes; k++ {
		n := 0
		for _, q := range reqs {
			if q.At.Before(first.Add(time.Duration(k) * time.Minute)) {
				n++
			}
		}
		if n > 30*k {
			r.t.Fatalf("%d requests in the first %d minute(s): more than rate_limit_share 0.5 of the default 60 per minute allows (%d)", n, k, 30*k)
		}
	}
	if len(reqs) < 30*(minutes-1) {
		r.t.Fatalf("only %d requests in %d minutes: the input stalled instead of using its share", len(reqs), minutes)
	}
}

func (r *edgeRun) assertLog(want string) {
	r.t.Helper()
	if !strings.Contains(r.logs.String(), want) {
		r.t.Fatalf("the log does not say %q:\n%s", want, r.logs.String())
	}
}

const fiftyYears = 50 * 365 * 24 * time.Hour

// Hostile or broken rate-limit headers: no wait taken from them is longer
// than a minute (the default window), and the input sends at most its share
// of a default 60 requests per minute, saying why.
func TestHostileRateHeadersAreBounded(t *testing.T) {
	setHeader := func(name string, value func(now time.Time) string) func(int, http.Header, time.Time) {
		return func(_ int, h http.Header, now time.Time) { h.Set(name, value(now)) }
	}
	cases := []struct {
		name    string
		rewrite func(status int, h http.Header, now time.Time)
		problem string
	}{{
		name: "200 with remaining 0 and a reset 50 years ahead",
		rewrite: func(_ int, h http.Header, now time.Time) {
			h.Set("X-Rate-Limit-Remaining", "0")
			h.Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Add(fiftyYears).Unix(), 10))
		},
		problem: "X-Rate-Limit-Reset is 18250 days after the response's Date",
	}, {
		name:    "Date 5 years behind",
		rewrite: setHeader("Date", func(now time.Time) string { return now.Add(-5 * 365 * 24 * time.Hour).Format(http.TimeFormat) }),
		problem: "X-Rate-Limit-Reset is 1825 days after the response's Date",
	}, {
		name:    "Date 5 years ahead",
		rewrite: setHeader("Date", func(now time.Time) string { return now.Add(5 * 365 * 24 * time.Hour).Format(http.TimeFormat) }),
		problem: "X-Rate-Limit-Reset is 1824 days before the response's Date",
	}, {
		name:    "Date 2 hours ahead",
		rewrite: setHeader("Date", func(now time.Time) string { return now.Add(2 * time.Hour).Format(http.TimeFormat) }),
		problem: "before the response's Date",
	}, {
		name: "no rate headers",
		rewrite: func(_ int, h http.Header, _ time.Time) {
			h.Del("X-Rate-Limit-Limit")
			h.Del("X-Rate-Limit-Remaining")
			h.Del("X-Rate-Limit-Reset")
		},
		problem: "no X-Rate-Limit headers",
	}, {
		name:    "limit 0",
		rewrite: setHeader("X-Rate-Limit-Limit", func(time.Time) string { return "0" }),
		problem: "X-Rate-Limit-Limit 0",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newEdgeRun(t, oktasim.Options{RewriteHeaders: tc.rewrite}, "", 5*time.Minute)
			r.run()
			r.assertDefaultShare()
			if m := r.maxWait(); m > time.Minute {
				t.Fatalf("waited %v: no wait may exceed the default window when the headers cannot be believed", m)
			}
			r.assertLog("rate-limit headers from")
			r.assertLog(tc.problem)
			r.assertLog("at most 30 requests per minute")
		})
	}
}

// A 429 whose X-Rate-Limit-Reset is 50 years ahead costs one minute, not 50
// years; the next answers with honest headers are used again.
func TestRateLimitedWithAbsurdResetWaitsOneWindow(t *testing.T) {
	r := newEdgeRun(t, oktasim.Options{}, "", 10*time.Minute)
	r.in.cfg.pollInterval = 5 * time.Second
	r.sim.Inject(
		oktasim.Fault{Kind: oktasim.FaultRateLimit, RetryAfter: fiftyYears},
		oktasim.Fault{Kind: oktasim.FaultRateLimit, RetryAfter: fiftyYears},
		oktasim.Fault{Kind: oktasim.FaultRateLimit, RetryAfter: fiftyYears},
	)
	r.run()
	reqs := r.sim.Requests()
	limited := 0
	for i, q := range reqs {
		if q.Status != http.StatusTooManyRequests {
			continue
		}
		limited++
		if i+1 >= len(reqs) {
			t.Fatalf("nothing was sent after the 429 at %v: the input waits for a reset 50 years ahead", q.At)
		}
		if gap := reqs[i+1].At.Sub(q.At); gap < time.Second || gap > time.Minute {
			t.Fatalf("the request after a 429 with an absurd reset came %v later, want at most the default window (1m)", gap)
		}
	}
	if limited != 3 || reqs[len(reqs)-1].Status != http.StatusOK {
		t.Fatalf("%d 429s served, last status %d: want the 3 injected, then 200s", limited, reqs[len(reqs)-1].Status)
	}
	r.assertLog("X-Rate-Limit-Reset is 18250 days after the response's Date")
	r.assertLog("waiting one window")
	r.assertLog("are usable again")
}

// A believable reset far ahead (10 minutes, Okta saying nothing remains) is
// honoured, and every such wait over a minute is logged with its reason; a
// reset beyond the 1-hour cap is not believed.
func TestLongRateWaitsAreLoggedAndCapped(t *testing.T) {
	resetIn := func(d time.Duration) func(int, http.Header, time.Time) {
		return func(_ int, h http.Header, now time.Time) {
			h.Set("X-Rate-Limit-Remaining", "0")
			h.Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Add(d).Unix(), 10))
		}
	}
	r := newEdgeRun(t, oktasim.Options{RewriteHeaders: resetIn(10 * time.Minute)}, "", 45*time.Minute)
	r.run()
	reqs := r.sim.Requests()
	if len(reqs) < 4 || len(reqs) > 5 {
		t.Fatalf("%d requests in 45 minutes of windows that reset every 10, want 4 or 5", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < 10*time.Minute || gap > 11*time.Minute {
			t.Fatalf("request %d came %v after the one before, want the 10m reset", i, gap)
		}
	}
	r.assertLog("Waiting 10m0s before the next System Log request")
	r.assertLog("Okta reports no requests left in its rate-limit window")

	r = newEdgeRun(t, oktasim.Options{RewriteHeaders: resetIn(2 * time.Hour)}, "", 5*time.Minute)
	r.run()
	if m := r.maxWait(); m > time.Minute {
		t.Fatalf("waited %v for a reset 2 hours ahead: beyond the 1-hour cap, a reset is not believed", m)
	}
	r.assertDefaultShare()
	r.assertLog("X-Rate-Limit-Reset is 2h0m0s after the response's Date")
}

// A server that echoes the Authorization header back, in Okta's JSON error
// fields, a WWW-Authenticate header and an HTML page: the token appears in
// no log line and no error, not even cut short.
func TestEchoedTokenIsRedactedFromEveryLine(t *testing.T) {
	r := newEdgeRun(t, oktasim.Options{}, "", time.Hour)
	r.in.cfg.pollInterval = 5 * time.Minute
	gen := oktasim.NewGenerator(7)
	r.sim.Persist(gen.Backlog(20, r.start.Add(-10*time.Minute), time.Second)...)
	for _, status := range []int{400, 401, 403, 500, 502, 200, 404, 401} {
		r.sim.Inject(oktasim.Fault{Kind: oktasim.FaultEcho, Status: status})
	}
	if got := r.run(); got != 20 {
		t.Fatalf("%d events delivered after the echoing answers, want 20", got)
	}
	logs := r.logs.String()
	for _, want := range []string{"HTTP 400", "HTTP 401", "HTTP 403", "HTTP 500", "HTTP 502", "not a JSON array", "HTTP 404", "[redacted]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not report %q:\n%s", want, logs)
		}
	}
	const minSecretLen = 8 // the shortest fragment of a secret internal/okta redacts
	for i := 0; i+minSecretLen <= len(edgeToken); i++ {
		if frag := edgeToken[i : i+minSecretLen]; strings.Contains(logs, frag) {
			t.Fatalf("the log contains %q, part of the API token:\n%s", frag, logs)
		}
	}
}

// Requests per tick on a trickle (5 events per 1 s tick) and on a
// backlog (2,500 events, limit 1000): a short page ends the tick, and its
// next link is where the next tick starts, so nothing is read twice or
// skipped.
func TestShortPageEndsTheTick(t *testing.T) {
	r := newEdgeRun(t, oktasim.Options{}, "", 60*time.Second)
	r.in.cfg.pollInterval = time.Second
	gen := oktasim.NewGenerator(9)
	trickled, ticks := 0, 0
	lastTick := r.start
	r.onSleep = func(time.Duration) {
		if now := r.clock.Now(); now.Sub(lastTick) >= time.Second {
			lastTick = now
			ticks++
			r.sim.Persist(gen.Backlog(5, now.Add(-time.Second), 100*time.Millisecond)...)
			trickled += 5
		}
	}
	got := r.run()
	reqs := len(r.sim.Requests())
	t.Logf("trickle: %d requests for %d ticks of 5 events (%.2f per tick)", reqs, ticks, float64(reqs)/float64(ticks))
	if got != trickled {
		t.Fatalf("delivered %d events of %d trickled", got, trickled)
	}
	if reqs > ticks+1 {
		t.Fatalf("%d requests for %d ticks: a tick must end at a short page", reqs, ticks)
	}

	r = newEdgeRun(t, oktasim.Options{}, "limit: 1000", 10*time.Second)
	r.in.cfg.pollInterval = time.Minute
	r.sim.Persist(gen.Backlog(2500, r.start.Add(-30*time.Minute), 100*time.Millisecond)...)
	if got := r.run(); got != 2500 {
		t.Fatalf("delivered %d of a backlog of 2500", got)
	}
	if n := len(r.sim.Requests()); n != 3 {
		t.Fatalf("%d requests for a backlog of 2 full pages and a short one, want 3", n)
	}
}

// A host that does not answer (connections reset): the input is not
// connected (Connect fails, so /ready is not ready) until a probe, after the
// backoff, is answered; nothing is lost, the cursor is kept.
func TestUnreachableOrgIsNotConnected(t *testing.T) {
	r := newEdgeRun(t, oktasim.Options{}, "limit: 10", 10*time.Minute)
	r.in.cfg.pollInterval = time.Minute
	gen := oktasim.NewGenerator(11)
	evs := gen.Backlog(25, r.start.Add(-10*time.Minute), time.Second)
	r.sim.Persist(evs...)
	// The first probe, and later a read mid-backlog, get no answer.
	r.sim.Inject(oktasim.Fault{Kind: oktasim.FaultReset}, oktasim.Fault{Kind: oktasim.FaultReset})
	connects := 0
	r.onSleep = func(time.Duration) {
		if connects++; connects == 3 {
			// Two: net/http silently retries a GET once when a reused
			// connection is reset.
			r.sim.Inject(oktasim.Fault{Kind: oktasim.FaultReset}, oktasim.Fault{Kind: oktasim.FaultReset})
		}
	}
	if got := r.run(); got != len(evs) {
		t.Fatalf("delivered %d of %d events", got, len(evs))
	}
	r.assertLog("Failed to connect to okta_system_log: System Log request to")
	resets := 0
	for _, q := range r.sim.Requests() {
		if q.Status == 0 {
			resets++
		}
	}
	if resets != 4 {
		for _, q := range r.sim.Requests() {
			t.Logf("%v %d %s", q.At, q.Status, q.URL)
		}
		t.Fatalf("%d requests reset, want the 4 injected", resets)
	}
	r.assertLog("the input is not ready until the org answers")
	r.assertLog("can be read again")
}
