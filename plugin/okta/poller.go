package okta

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/meta"
)

// configRetryDelays spaces retries after answers that need a human (bad token,
// missing permission, bad filter): a handful of requests a minute at most, so a
// fix in Okta is picked up without a restart and the org is never hammered.
var configRetryDelays = []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}

// recentUUIDs is how many delivered uuids are remembered for de-duplication:
// several full pages.
const recentUUIDs = 20_000

// maxUnackedPages bounds the pages read but not yet committed (acknowledged
// together with every earlier page), and so the input's memory, whatever the
// backlog: reading waits while this many are outstanding.
const maxUnackedPages = 64

func defaultBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = time.Minute
	b.MaxElapsedTime = 0
	return b
}

// systemLogInput is the okta_system_log input. ReadBatch is called by one
// goroutine at a time; acks arrive on others, and only touch the tracker.
type systemLogInput struct {
	cfg     *inputConfig
	client  *client
	res     *service.Resources
	log     *service.Logger
	metrics inputMetrics
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error

	tracker   ackTracker
	cursorSeq uint64 // the last commit's number; written under the tracker's lock

	// Reader state, owned by the ReadBatch goroutine (Connect runs on it too).
	loaded        bool          // the cursor was read from the cache (or set from initial_lookback)
	connected     bool          // the org answered the last request (see probe)
	down          *requestError // why the org cannot be read, while !connected after a failure
	downReported  bool          // down was returned to Benthos (which logs it)
	probed        *page         // the page Connect's probe read, accepted by the next ReadBatch
	rateDistrust  string        // why Okta's rate headers are not used, "" while they are
	waitAnnounced bool          // the coming rate-limit wait was already logged
	next          string        // the link to request next
	tickStart     time.Time
	idle          bool // the last page was short: wait for the next tick
	budget        rateBudget
	seen          *uuidSet
	transientBoff *backoff.ExponentialBackOff
	configFails   int
	skewed        bool // the last Date was beyond clockSkewWarning

	stopWatch context.CancelFunc // ends watchAcks
	newest    atomic.Int64       // unix nanoseconds of the newest published read, for okta_lag_seconds
}

type inputMetrics struct {
	requests       *service.MetricCounter
	events         *service.MetricCounter
	duplicates     *service.MetricCounter
	remaining      *service.MetricGauge
	lag            *service.MetricGauge
	commits        *service.MetricCounter
	commitFailures *service.MetricCounter
	responseErrors *service.MetricCounter // 200s that could not be used, by reason
	unacked        *service.MetricGauge   // pages read and not yet acknowledged downstream
	unackedAge     *service.MetricGauge   // seconds since the oldest of them was read
	clockSkew      *service.MetricGauge   // Okta's Date − the local clock, seconds
	lastSuccess    *service.MetricGauge   // unix seconds of the last 200
}

func newSystemLogInput(conf *service.ParsedConfig, res *service.Resources) (*systemLogInput, error) {
	cfg, err := parseInputConfig(conf)
	if err != nil {
		return nil, err
	}
	httpClient, err := newHTTPClient(conf, cfg.timeout)
	if err != nil {
		return nil, err
	}
	boff, err := conf.FieldBackOff(fieldBackoff)
	if err != nil {
		return nil, err
	}
	boff.MaxElapsedTime = 0 // never give up: giving up would skip events
	if cfg.checkpointCache != "" && !res.HasCache(cfg.checkpointCache) {
		return nil, fmt.Errorf("checkpoint_cache %q is not a cache resource: declare it under cache_resources", cfg.checkpointCache)
	}
	if oa, ok := cfg.auth.(*oauthAuth); ok {
		oa.http, oa.log = httpClient, res.Logger()
	}
	m := res.Metrics()
	in := &systemLogInput{
		cfg: cfg,
		client: &client{
			org: cfg.org, http: httpClient, auth: cfg.auth,
			userAgent: "oktadetect okta_system_log", now: time.Now,
		},
		res: res,
		log: res.Logger(),
		metrics: inputMetrics{
			requests:       m.NewCounter("okta_requests_total", "status"),
			events:         m.NewCounter("okta_events_total"),
			duplicates:     m.NewCounter("okta_duplicates_dropped_total"),
			remaining:      m.NewGauge("okta_rate_limit_remaining"),
			lag:            m.NewGauge("okta_lag_seconds"),
			commits:        m.NewCounter("okta_cursor_commits_total"),
			commitFailures: m.NewCounter("okta_checkpoint_errors_total"),
			responseErrors: m.NewCounter("okta_response_errors_total", "reason"),
			clockSkew:      m.NewGauge("okta_clock_skew_seconds"),
			lastSuccess:    m.NewGauge("okta_last_success_timestamp_seconds"),
			unacked:        m.NewGauge("okta_unacked_pages"),
			unackedAge:     m.NewGauge("okta_unacked_oldest_seconds"),
		},
		now:           time.Now,
		sleep:         sleepCtx,
		budget:        rateBudget{share: cfg.share},
		seen:          newUUIDSet(recentUUIDs),
		transientBoff: boff,
	}
	// Series exist from the start, so increase() and alerts see the first
	// duplicate or failed save (Benthos creates a series at its first Incr).
	for _, c := range []*service.MetricCounter{in.metrics.events, in.metrics.duplicates, in.metrics.commits, in.metrics.commitFailures} {
		c.Incr(0)
	}
	return in, nil
}

// stuckAckWarning is how long a page may wait for the output's
// acknowledgement before the input says the output is stuck (and again every
// twice as long while it stays stuck).
const stuckAckWarning = 15 * time.Second

// watchAcks publishes the pages waiting for the output's acknowledgement and
// warns while the oldest waits longer than stuckAckWarning: an output that
// cannot write (Kafka down) holds the cursor back without any request
// failing, and this is where that shows.
func (in *systemLogInput) watchAcks(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var stuckSince, lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		in.refreshLag()
		n, read := in.tracker.oldest()
		age := time.Duration(0)
		if n > 0 {
			age = time.Since(read)
		}
		in.metrics.unacked.Set(int64(n))
		in.metrics.unackedAge.Set(int64(age.Seconds()))
		switch {
		case age >= stuckAckWarning && time.Since(lastWarn) >= 2*stuckAckWarning:
			if stuckSince.IsZero() {
				stuckSince = read
			}
			in.log.Warnf("%d page(s) read from Okta are not acknowledged by the output after %v (the oldest): the output is not accepting events (is Kafka reachable?); the Okta cursor stays at the last acknowledged page and nothing is skipped", n, age.Round(time.Second))
			lastWarn = time.Now()
		case age < stuckAckWarning && !stuckSince.IsZero():
			in.log.Infof("The output acknowledges pages again, after %v", time.Since(stuckSince).Round(time.Second))
			stuckSince, lastWarn = time.Time{}, time.Time{}
		}
	}
}

func (in *systemLogInput) loadCheckpoint(ctx context.Context) (checkpoint, bool, error) {
	if in.cfg.checkpointCache == "" {
		return checkpoint{}, false, nil
	}
	var (
		best              checkpoint
		found, unreadable int
	)
	for _, key := range checkpointSlots(in.cfg.checkpointKey) {
		raw, err := in.getCheckpoint(ctx, key)
		if errors.Is(err, service.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return checkpoint{}, false, fmt.Errorf("reading the cursor %q from checkpoint_cache %q: %w", key, in.cfg.checkpointCache, err)
		}
		cp, err := decodeCheckpoint(raw)
		if err != nil {
			// A write torn by a crash: the other slot holds the commit before.
			unreadable++
			in.log.Warnf("Ignoring the unreadable cursor %q in checkpoint_cache %q: %v", key, in.cfg.checkpointCache, err)
			continue
		}
		if err := in.client.checkNext(cp.Next); err != nil {
			return checkpoint{}, false, fmt.Errorf("cursor %q in checkpoint_cache %q belongs to another org: %w (use another checkpoint_key per org)", key, in.cfg.checkpointCache, err)
		}
		if found == 0 || cp.Seq > best.Seq {
			best = cp
		}
		found++
	}
	if found == 0 && unreadable > 0 {
		return checkpoint{}, false, fmt.Errorf("no readable cursor under %q in checkpoint_cache %q (delete it to start again from initial_lookback)", in.cfg.checkpointKey, in.cfg.checkpointCache)
	}
	in.cursorSeq = best.Seq
	return best, found > 0, nil
}

func (in *systemLogInput) getCheckpoint(ctx context.Context, key string) ([]byte, error) {
	var (
		raw    []byte
		getErr error
	)
	err := in.res.AccessCache(ctx, in.cfg.checkpointCache, func(c service.Cache) {
		raw, getErr = c.Get(ctx, key)
	})
	if err == nil {
		err = getErr
	}
	return raw, err
}

// ReadBatch returns the next non-empty page of events. It blocks through idle
// ticks, rate-limit waits and retries. When the org cannot be read (401/403,
// no answer) it returns ErrNotConnected, and Connect reports the cause and
// probes again; other errors are only cancellation.
func (in *systemLogInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if !in.connected {
		return nil, nil, service.ErrNotConnected
	}
	if p := in.probed; p != nil {
		in.probed = nil
		if batch, ack := in.accept(p); len(batch) > 0 {
			return batch, ack, nil
		}
	}
	for {
		if err := in.tracker.waitBelow(ctx, maxUnackedPages); err != nil {
			return nil, nil, err
		}
		if err := in.waitTurn(ctx); err != nil {
			return nil, nil, err
		}
		p, err := in.fetch(ctx)
		if err != nil {
			down, reportErr := in.onFailure(err)
			if down != nil {
				// The org cannot be read: Benthos marks the input not
				// connected (so /ready says so) and calls Connect, which
				// reports the cause and probes on the retry schedule.
				in.goDown(down)
				return nil, nil, service.ErrNotConnected
			}
			if reportErr != nil {
				return nil, nil, reportErr
			}
			continue
		}
		if batch, ack := in.accept(p); len(batch) > 0 {
			return batch, ack, nil
		}
	}
}

// waitTurn waits for the next tick after a short page, and for the rate budget.
func (in *systemLogInput) waitTurn(ctx context.Context) error {
	if in.idle {
		if err := in.sleep(ctx, in.tickStart.Add(in.cfg.pollInterval).Sub(in.now())); err != nil {
			return err
		}
		in.idle = false
		in.tickStart = in.now()
	}
	d, why := in.budget.wait(in.now())
	in.announceWait(d, why)
	return in.sleep(ctx, d)
}

// longWait is the wait before a request worth a line in the log.
const longWait = time.Minute

// announceWait logs a rate-limit wait longer than longWait with its reason,
// unless it was logged already (a 429). Waits after failures are reported
// with the failure.
func (in *systemLogInput) announceWait(d time.Duration, why string) {
	announced := in.waitAnnounced
	in.waitAnnounced = false
	if d <= longWait || announced {
		return
	}
	switch why {
	case waitShare:
		in.log.Infof("Waiting %v before the next System Log request of %s: this input's share of the rate limit (%d of %d requests per window, rate_limit_share %v) is used up until the window resets", d.Round(time.Second), in.cfg.org.Host, in.budget.allowed(), in.budget.effectiveLimit(), in.cfg.share)
	case waitExhausted:
		in.log.Warnf("Waiting %v before the next System Log request of %s: Okta reports no requests left in its rate-limit window (X-Rate-Limit-Remaining 0 until X-Rate-Limit-Reset); other clients of the org use its System Log limit", d.Round(time.Second), in.cfg.org.Host)
	}
}

// fetch requests the current link once and accounts for it.
func (in *systemLogInput) fetch(ctx context.Context) (*page, error) {
	in.budget.sent(in.now())
	// net/http silently re-sends a GET whose reused connection was closed
	// under it; Okta counts every attempt, so the budget does too. GotConn
	// runs once per attempt, on this goroutine, before the request is sent.
	var attempts atomic.Int32
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { attempts.Add(1) },
	})
	p, err := in.client.fetch(traced, in.next)
	for range attempts.Load() - 1 {
		in.budget.sent(in.now())
	}
	in.observeSkew()
	var reqErr *requestError
	if errors.As(err, &reqErr) && reqErr.reason != "" {
		in.metrics.responseErrors.Incr(1, reqErr.reason)
	}
	switch {
	case err == nil:
		in.metrics.requests.Incr(1, "200")
		in.metrics.lastSuccess.Set(in.now().Unix())
		in.observeRate(p.rate, true)
	case errors.As(err, &reqErr) && reqErr.status != 0:
		in.metrics.requests.Incr(1, strconv.Itoa(reqErr.status))
		if reqErr.kind == failRateLimited {
			in.budget.exhaust(reqErr.rate, in.now())
			in.trustRate(reqErr.rate, true)
		} else {
			// A 200 that could not be used is often a proxy's page:
			// its missing headers say nothing about Okta's limit.
			in.observeRate(reqErr.rate, false)
		}
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		in.metrics.requests.Incr(1, "error")
	}
	return p, err
}

// clockSkewWarning is the difference between Okta's clock and the local one
// worth a warning: beyond it, something reading the local clock (lag, the
// first request's since) is visibly off.
const clockSkewWarning = time.Minute

// observeSkew publishes how far Okta's Date is from the local clock, and
// warns when it moves beyond clockSkewWarning (and says when it is back).
// Rate-limit waits are measured against Date, so they are right either way.
func (in *systemLogInput) observeSkew() {
	skew, ok := in.client.skew()
	if !ok {
		return
	}
	in.metrics.clockSkew.Set(int64(skew.Round(time.Second).Seconds()))
	far := skew >= clockSkewWarning || skew <= -clockSkewWarning
	switch {
	case far && !in.skewed:
		dir := "ahead of"
		if skew < 0 {
			dir = "behind"
		}
		in.log.Warnf("Okta's clock (Date header of %s) is %v %s the local clock: check NTP on this host; rate-limit waits are measured against Okta's Date and stay correct, okta_lag_seconds and the first request's since use the local clock", in.cfg.org.Host, skew.Abs().Round(time.Second), dir)
	case !far && in.skewed:
		in.log.Infof("Okta's clock and the local clock agree again (within %v)", clockSkewWarning)
	}
	in.skewed = far
}

// observeRate takes an answer's rate headers into the budget. Okta sends
// them on every answer; only a 200 without any is taken as a broken server
// (a gateway's error page has none, and says nothing about the limit).
func (in *systemLogInput) observeRate(rate rateInfo, ok bool) {
	if !rate.known && !rate.present && !ok {
		return
	}
	in.budget.observe(rate)
	in.trustRate(rate, ok)
	if rate.known {
		in.metrics.remaining.Set(int64(rate.remaining))
	}
}

// trustRate says, once per change, when Okta's rate headers cannot be
// believed and the input counts against defaultLimit instead, and when they
// can again.
func (in *systemLogInput) trustRate(rate rateInfo, ok bool) {
	switch {
	case !rate.known && (rate.present || ok) && in.rateDistrust == "":
		in.rateDistrust = rate.problem
		in.log.Warnf("Okta's rate-limit headers from %s cannot be used (%s): this input sends at most %d requests per minute (a default limit of %d × rate_limit_share %v) until they can, and takes no wait from them; check for a proxy in front of Okta, and this host's clock", in.cfg.org.Host, rate.problem, max(1, int(in.cfg.share*defaultLimit)), defaultLimit, in.cfg.share)
	case rate.known && in.rateDistrust != "":
		in.rateDistrust = ""
		in.log.Infof("Okta's rate-limit headers from %s are usable again (limit %d per window)", in.cfg.org.Host, rate.limit)
	}
}

// onFailure decides how long to wait after a failed request. down is the
// failure when the org cannot be read at all (credentials or permissions
// refused, no answer from the host): the input is then not connected until a
// probe succeeds. reportErr is an error to return as is (cancellation). Other
// failures were logged here and are retried quietly after the wait.
func (in *systemLogInput) onFailure(err error) (down *requestError, reportErr error) {
	var reqErr *requestError
	if !errors.As(err, &reqErr) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		reqErr = transientError("System Log request failed", err)
	}
	switch {
	case reqErr.kind == failRateLimited:
		note := ""
		if !reqErr.rate.known {
			note = fmt.Sprintf(" (its rate-limit headers cannot be used: %s; waiting one window)", reqErr.rate.problem)
		}
		in.log.Warnf("%v; waiting for the window to reset in %v%s", reqErr, in.budget.delay(in.now()).Round(time.Millisecond), note)
		in.waitAnnounced = true
		return nil, nil
	case reqErr.kind == failConfig:
		delay := configRetryDelays[min(in.configFails, len(configRetryDelays)-1)]
		in.configFails++
		in.budget.holdUntil(in.now().Add(delay))
		return reqErr, nil
	default:
		delay := in.transientBoff.NextBackOff()
		in.budget.holdUntil(in.now().Add(delay))
		if unreachable(reqErr) {
			return reqErr, nil
		}
		in.log.Warnf("%v; retrying the same link in %v", reqErr, delay.Round(time.Millisecond))
		return nil, nil
	}
}

// unreachable reports a request that got no answer at all (DNS, refused or
// reset connections, TLS failures, timeouts).
func unreachable(e *requestError) bool {
	return e.kind == failTransient && e.status == 0 && e.reason == ""
}

// accept turns a page into a batch, moves the cursor and ends the tick at a
// page shorter than limit. Events already delivered (same uuid) are dropped.
func (in *systemLogInput) accept(p *page) (service.MessageBatch, service.AckFunc) {
	in.transientBoff.Reset()
	in.configFails = 0
	if p.next == "" {
		in.metrics.responseErrors.Incr(1, reasonMissingNext)
		in.log.Warnf("Okta sent no next link for a polling request; requesting the same link again")
	} else {
		in.next = p.next
	}
	if len(p.events) < in.cfg.limit {
		// A short page: the log is drained for now. Its next link is the
		// cursor the next tick starts from (gap-free), so the tick ends
		// here instead of asking for the empty page after it.
		in.idle = true
	}
	if len(p.events) == 0 {
		return nil, nil
	}
	batch := make(service.MessageBatch, 0, len(p.events))
	uuids := make([]string, 0, len(p.events))
	var newest time.Time
	for _, ev := range p.events {
		if ev.badField != "" {
			in.metrics.responseErrors.Incr(1, reasonOddField)
			in.log.Warnf("A System Log event's %s is neither a string nor null; passing it on with okta_%s empty%s",
				ev.badField, metaSuffix(ev.badField), map[bool]string{true: " (it cannot be de-duplicated)", false: ""}[ev.badField == "uuid"])
		}
		if ev.uuid != "" {
			uuids = append(uuids, ev.uuid)
			if !in.seen.add(ev.uuid) {
				in.metrics.duplicates.Incr(1)
				continue
			}
		}
		batch = append(batch, in.message(ev))
		if t, err := time.Parse(time.RFC3339Nano, ev.published); err == nil && t.After(newest) {
			newest = t
		}
	}
	in.metrics.events.Incr(int64(len(batch)))
	if !newest.IsZero() && newest.UnixNano() > in.newest.Load() {
		in.newest.Store(newest.UnixNano())
		in.metrics.lag.Set(int64(in.now().Sub(newest).Seconds()))
	}
	cp := checkpoint{Version: checkpointVersion, Next: in.next, UUIDs: uuids}
	seq := in.tracker.track(cp)
	if len(batch) > 0 {
		in.tagCursor(batch[len(batch)-1], cp)
	}
	if len(batch) == 0 {
		// Every event was a duplicate: nothing goes downstream, so the page
		// is acknowledged here to let the cursor move past it.
		in.ackPage(context.Background(), seq, nil)
		return nil, nil
	}
	return batch, func(ctx context.Context, err error) error { return in.ackPage(ctx, seq, err) }
}

func (in *systemLogInput) message(ev event) *service.Message {
	msg := service.NewMessage(ev.raw)
	msg.MetaSetMut(meta.OktaUUID, ev.uuid)
	msg.MetaSetMut(meta.OktaEventType, ev.eventType)
	msg.MetaSetMut(meta.OktaPublished, ev.published)
	msg.MetaSetMut(meta.OktaOrg, in.cfg.org.Host)
	return msg
}

// Metadata that carries the page's cursor to an output able to commit it
// together with the events (kafka_producer with transactional_id): the
// checkpoint JSON exactly as checkpoint_cache would store it, and the key it is
// stored under. Only the last message of a page carries them, so a cursor
// travels with, and is committed no earlier than, every event of its page.
func (in *systemLogInput) tagCursor(msg *service.Message, cp checkpoint) {
	raw, err := encodeCheckpoint(cp)
	if err != nil {
		in.log.Errorf("Cannot encode the Okta cursor for the page: %v", err)
		return
	}
	msg.MetaSetMut(meta.OktaCursor, string(raw))
	msg.MetaSetMut(meta.OktaCursorKey, in.cfg.checkpointKey)
}

// ackPage records a page's acknowledgement and stores the cursor once every
// earlier page is acknowledged too. A nack leaves the page pending: the
// AutoRetryNacks wrapper delivers it again, and the cursor never passes it.
func (in *systemLogInput) ackPage(ctx context.Context, seq uint64, err error) error {
	if err != nil {
		return nil
	}
	return in.tracker.ack(seq, func(cp checkpoint) error { return in.storeCheckpoint(ctx, cp) })
}

// storeCheckpoint writes the cursor. Failing to write it is loud every time:
// the pipeline keeps running, but a restart would read events again.
func (in *systemLogInput) storeCheckpoint(ctx context.Context, cp checkpoint) error {
	if in.cfg.checkpointCache == "" {
		in.metrics.commits.Incr(1)
		return nil
	}
	key, err := in.writeCheckpoint(ctx, cp)
	if err != nil {
		in.metrics.commitFailures.Incr(1)
		in.log.Errorf("Cannot save the Okta cursor to checkpoint_cache %q key %q: %v (events keep flowing, but a restart would read them again; check the cache, e.g. that a file cache's directory exists and is writable)", in.cfg.checkpointCache, key, err)
		return fmt.Errorf("saving the Okta cursor: %w", err)
	}
	in.metrics.commits.Incr(1)
	return nil
}

// writeCheckpoint writes cp as the next commit, into the slot the commit
// number picks, and returns that slot's key.
func (in *systemLogInput) writeCheckpoint(ctx context.Context, cp checkpoint) (string, error) {
	cp.Seq = in.cursorSeq + 1
	key := checkpointSlots(in.cfg.checkpointKey)[cp.Seq%2]
	raw, err := encodeCheckpoint(cp)
	if err != nil {
		return key, err
	}
	var setErr error
	err = in.res.AccessCache(ctx, in.cfg.checkpointCache, func(c service.Cache) {
		setErr = c.Set(ctx, key, raw, nil)
	})
	if err == nil {
		err = setErr
	}
	if err != nil {
		return key, err
	}
	in.cursorSeq = cp.Seq
	return key, nil
}

// Close has nothing to flush: the cursor is written as acks arrive.
func (in *systemLogInput) Close(ctx context.Context) error {
	if in.stopWatch != nil {
		in.stopWatch()
	}
	in.client.http.CloseIdleConnections()
	return nil
}

// sleepCtx waits d or until ctx is done, with a little jitter on long waits so
// many inputs restarted together do not stay in step.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if d > 5*time.Second {
		d += time.Duration(rand.Int64N(int64(d / 20)))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// metaSuffix is the metadata key suffix of an event field.
func metaSuffix(field string) string {
	if field == "eventType" {
		return "event_type"
	}
	return field
}
