package okta

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/internal/okta"
)

// configRetryDelays spaces retries after answers that need a human (bad token,
// missing permission, bad filter): a handful of requests a minute at most, so a
// fix in Okta is picked up without a restart and the org is never hammered.
var configRetryDelays = []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}

// waitTurn waits for the next tick after a short page, and for the rate budget.
func (in *systemLogInput) waitTurn(ctx context.Context) error {
	if in.idle {
		if err := in.clock.Sleep(ctx, in.tickStart.Add(in.cfg.pollInterval).Sub(in.clock.Now())); err != nil {
			return err
		}
		in.idle = false
		in.tickStart = in.clock.Now()
	}
	d, why := in.budget.Wait(in.clock.Now())
	in.announceWait(d, why)
	return in.clock.Sleep(ctx, d)
}

// longWait is the wait before a request worth a line in the log.
const longWait = time.Minute

// announceWait logs a rate-limit wait longer than longWait with its reason,
// unless it was logged already (a 429). Waits after failures are reported
// with the failure.
func (in *systemLogInput) announceWait(d time.Duration, why okta.WaitReason) {
	announced := in.waitAnnounced
	in.waitAnnounced = false
	if d <= longWait || announced {
		return
	}
	switch why {
	case okta.WaitShare:
		in.log.Infof("Waiting %v before the next System Log request of %s: this input's share of the rate limit (%d of %d requests per window, rate_limit_share %v) is used up until the window resets", d.Round(time.Second), in.cfg.org.Host, in.budget.Allowed(), in.budget.EffectiveLimit(), in.cfg.share)
	case okta.WaitExhausted:
		in.log.Warnf("Waiting %v before the next System Log request of %s: Okta reports no requests left in its rate-limit window (X-Rate-Limit-Remaining 0 until X-Rate-Limit-Reset); other clients of the org use its System Log limit", d.Round(time.Second), in.cfg.org.Host)
	}
}

// fetch requests the current link once and accounts for it.
func (in *systemLogInput) fetch(ctx context.Context) (*okta.Page, error) {
	in.budget.Sent(in.clock.Now())
	// net/http silently re-sends a GET whose reused connection was closed
	// under it; Okta counts every attempt, so the budget does too. GotConn
	// runs once per attempt, on this goroutine, before the request is sent.
	var attempts atomic.Int32
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { attempts.Add(1) },
	})
	p, err := in.client.Fetch(traced, in.next)
	for range attempts.Load() - 1 {
		in.budget.Sent(in.clock.Now())
	}
	in.observeSkew()
	var reqErr *okta.RequestError
	if errors.As(err, &reqErr) && reqErr.Reason != "" {
		in.metrics.responseErrors.Incr(1, reqErr.Reason)
	}
	switch {
	case err == nil:
		in.metrics.requests.Incr(1, "200")
		in.metrics.lastSuccess.Set(in.clock.Now().Unix())
		in.observeRate(p.Rate, true)
	case errors.As(err, &reqErr) && reqErr.Status != 0:
		in.metrics.requests.Incr(1, strconv.Itoa(reqErr.Status))
		if reqErr.Kind == okta.FailRateLimited {
			in.budget.Exhaust(reqErr.Rate, in.clock.Now())
			in.trustRate(reqErr.Rate, true)
		} else {
			// A 200 that could not be used is often a proxy's page:
			// its missing headers say nothing about Okta's limit.
			in.observeRate(reqErr.Rate, false)
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
	skew, ok := in.client.ClockSkew()
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
func (in *systemLogInput) observeRate(rate okta.RateInfo, ok bool) {
	if !rate.Known && !rate.Present && !ok {
		return
	}
	in.budget.Observe(rate)
	in.trustRate(rate, ok)
	if rate.Known {
		in.metrics.remaining.Set(int64(rate.Remaining))
	}
}

// trustRate says, once per change, when Okta's rate headers cannot be
// believed and the input counts against okta.DefaultLimit instead, and when they
// can again.
func (in *systemLogInput) trustRate(rate okta.RateInfo, ok bool) {
	switch {
	case !rate.Known && (rate.Present || ok) && in.rateDistrust == "":
		in.rateDistrust = rate.Problem
		in.log.Warnf("Okta's rate-limit headers from %s cannot be used (%s): this input sends at most %d requests per minute (a default limit of %d × rate_limit_share %v) until they can, and takes no wait from them; check for a proxy in front of Okta, and this host's clock", in.cfg.org.Host, rate.Problem, max(1, int(in.cfg.share*okta.DefaultLimit)), okta.DefaultLimit, in.cfg.share)
	case rate.Known && in.rateDistrust != "":
		in.rateDistrust = ""
		in.log.Infof("Okta's rate-limit headers from %s are usable again (limit %d per window)", in.cfg.org.Host, rate.Limit)
	}
}

// onFailure decides how long to wait after a failed request. down is the
// failure when the org cannot be read at all (credentials or permissions
// refused, no answer from the host): the input is then not connected until a
// probe succeeds. reportErr is an error to return as is (cancellation). Other
// failures were logged here and are retried quietly after the wait.
func (in *systemLogInput) onFailure(err error) (down *okta.RequestError, reportErr error) {
	var reqErr *okta.RequestError
	if !errors.As(err, &reqErr) {
		return nil, err // the client's errors are classified, but cancellation
	}
	switch {
	case reqErr.Kind == okta.FailRateLimited:
		note := ""
		if !reqErr.Rate.Known {
			note = fmt.Sprintf(" (its rate-limit headers cannot be used: %s; waiting one window)", reqErr.Rate.Problem)
		}
		in.log.Warnf("%v; waiting for the window to reset in %v%s", reqErr, in.budget.Delay(in.clock.Now()).Round(time.Millisecond), note)
		in.waitAnnounced = true
		return nil, nil
	case reqErr.Kind == okta.FailConfig:
		delay := configRetryDelays[min(in.configFails, len(configRetryDelays)-1)]
		in.configFails++
		in.budget.HoldUntil(in.clock.Now().Add(delay))
		return reqErr, nil
	default:
		delay := in.transientBoff.NextBackOff()
		in.budget.HoldUntil(in.clock.Now().Add(delay))
		if reqErr.Unreachable() {
			return reqErr, nil
		}
		in.log.Warnf("%v; retrying the same link in %v", reqErr, delay.Round(time.Millisecond))
		return nil, nil
	}
}

// accept turns a page into a batch, moves the cursor and ends the tick at a
// page shorter than limit. Events already delivered (same uuid) are dropped.
func (in *systemLogInput) accept(p *okta.Page) (service.MessageBatch, service.AckFunc) {
	in.transientBoff.Reset()
	in.configFails = 0
	if p.Next == "" {
		in.metrics.responseErrors.Incr(1, okta.ReasonMissingNext)
		in.log.Warnf("Okta sent no next link for a polling request; requesting the same link again")
	} else {
		in.next = p.Next
	}
	if len(p.Events) < in.cfg.limit {
		// A short page: the log is drained for now. Its next link is the
		// cursor the next tick starts from (gap-free), so the tick ends
		// here instead of asking for the empty page after it.
		in.idle = true
	}
	if len(p.Events) == 0 {
		return nil, nil
	}
	batch := make(service.MessageBatch, 0, len(p.Events))
	uuids := make([]string, 0, len(p.Events))
	var newest time.Time
	for _, ev := range p.Events {
		if ev.BadField != "" {
			in.metrics.responseErrors.Incr(1, okta.ReasonOddField)
			in.log.Warnf("A System Log event's %s is neither a string nor null; passing it on with okta_%s empty%s",
				ev.BadField, metaSuffix(ev.BadField), map[bool]string{true: " (it cannot be de-duplicated)", false: ""}[ev.BadField == "uuid"])
		}
		if ev.UUID != "" {
			uuids = append(uuids, ev.UUID)
			if !in.seen.add(ev.UUID) {
				in.metrics.duplicates.Incr(1)
				continue
			}
		}
		batch = append(batch, in.message(ev))
		if t, err := time.Parse(time.RFC3339Nano, ev.Published); err == nil && t.After(newest) {
			newest = t
		}
	}
	in.metrics.events.Incr(int64(len(batch)))
	if !newest.IsZero() && newest.UnixNano() > in.newest.Load() {
		in.newest.Store(newest.UnixNano())
		in.metrics.lag.Set(int64(in.clock.Now().Sub(newest).Seconds()))
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

func (in *systemLogInput) message(ev okta.Event) *service.Message {
	msg := service.NewMessage(ev.Raw)
	msg.MetaSetMut(meta.OktaUUID, ev.UUID)
	msg.MetaSetMut(meta.OktaEventType, ev.EventType)
	msg.MetaSetMut(meta.OktaPublished, ev.Published)
	msg.MetaSetMut(meta.OktaOrg, in.cfg.org.Host)
	return msg
}

// metaSuffix is the metadata key suffix of an event field.
func metaSuffix(field string) string {
	if field == "eventType" {
		return "event_type"
	}
	return field
}
