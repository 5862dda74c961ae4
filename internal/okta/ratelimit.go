package okta

import (
	"math"
	"time"
)

// oktaWindow is the length of Okta's rate-limit windows, used only to guess
// where a window ends before Okta's headers have said so.
const oktaWindow = time.Minute

// dateResolution is the precision of the Date header the reset is measured
// against: the local reset time is late by up to this much.
const dateResolution = time.Second

// maxRateWait is the longest wait taken from Okta's headers. Okta's System Log
// windows are a minute long: a reset further from the response's Date than
// this is not believed (a hostile or broken server, or a wrong Date), and the
// budget falls back to DefaultLimit on its own clock instead.
const maxRateWait = time.Hour

// resetSlack is how far a reset may lie before the response's Date and still
// be rounding (both have a resolution of a second) rather than nonsense.
const resetSlack = 2 * time.Second

// DefaultLimit is the limit per window a RateBudget assumes while Okta's
// headers are missing or not believable: low for any Okta org, so a reader
// never sends more than its share of it when it cannot see the real limit.
const DefaultLimit = 60

// RateBudget keeps one reader of the System Log within its share of the
// org's rate limit. Okta's limit is a fixed window shared by every client of
// the org (the admin console, SIEMs, scripts), so the reader counts the
// requests it sends in the current window and stops at share × limit, and
// also stops when Okta says nothing remains.
//
// The window's end is taken from X-Rate-Limit-Reset (moved onto the local
// clock). It is never moved earlier within a window, so the reader never
// starts counting afresh before Okta's window has really reset.
//
// It also holds back requests after failures (HoldUntil), so every wait
// before a request is decided in one place. It is used by one goroutine at a
// time.
type RateBudget struct {
	share float64

	limit     int         // X-Rate-Limit-Limit; 0 while unknown or not believable (DefaultLimit applies)
	exhausted bool        // Okta said nothing remains in this window
	windowEnd time.Time   // local clock
	confirmed bool        // windowEnd comes from Okta's headers for this window
	sends     []time.Time // when this window's requests were sent

	hold time.Time // no request before this (backoff after a failure)
}

// NewRateBudget returns the budget of a reader that may use share (0 <
// share ≤ 1) of the org's limit.
func NewRateBudget(share float64) *RateBudget {
	return &RateBudget{share: share}
}

// Allowed is the reader's number of requests per window.
func (b *RateBudget) Allowed() int {
	return max(1, int(math.Floor(b.share*float64(b.EffectiveLimit()))))
}

// EffectiveLimit is the org's limit per window as the budget counts it:
// Okta's X-Rate-Limit-Limit, or DefaultLimit while that is not known.
func (b *RateBudget) EffectiveLimit() int {
	if b.limit <= 0 {
		return DefaultLimit
	}
	return b.limit
}

// Delay returns how long to wait, from now, before the next request may go.
func (b *RateBudget) Delay(now time.Time) time.Duration {
	d, _ := b.Wait(now)
	return d
}

// WaitReason is why a request waits (RateBudget.Wait).
type WaitReason string

// The reasons to wait.
const (
	WaitNone      WaitReason = ""
	WaitHold      WaitReason = "hold"      // a retry after a failure, already reported
	WaitExhausted WaitReason = "exhausted" // Okta said nothing remains (or answered 429)
	WaitShare     WaitReason = "share"     // the reader's share of the window is used
)

// Wait returns how long to wait, from now, before the next request may go,
// and why.
func (b *RateBudget) Wait(now time.Time) (time.Duration, WaitReason) {
	wait, why := b.hold.Sub(now), WaitHold
	if now.Before(b.windowEnd) && (b.exhausted || len(b.sends) >= b.Allowed()) {
		if w := b.windowEnd.Sub(now); w > wait {
			wait, why = w, WaitShare
			if b.exhausted {
				why = WaitExhausted
			}
		}
	}
	if wait <= 0 {
		return 0, WaitNone
	}
	return wait, why
}

// Sent counts a request about to be sent at now. Every attempt counts, as
// Okta counts it.
func (b *RateBudget) Sent(now time.Time) {
	if !now.Before(b.windowEnd) {
		b.sends = b.sends[:0]
		b.confirmed = false
		b.exhausted = false
		b.windowEnd = now.Add(oktaWindow)
	}
	b.sends = append(b.sends, now)
}

// Observe records the rate headers of an answer (any status but 429).
// Headers that cannot be believed put the budget back on DefaultLimit; the
// window's end is kept, it is only ever moved later.
func (b *RateBudget) Observe(info RateInfo) {
	if !info.Known {
		if info.Problem != "" {
			b.limit = 0
		}
		return
	}
	b.limit, b.exhausted = info.Limit, info.Remaining <= 0
	switch {
	case !b.confirmed:
		b.windowEnd, b.confirmed = info.ResetAt, true
	case info.ResetAt.Sub(b.windowEnd) > dateResolution:
		// The request landed in Okta's next window: it was sent in the
		// moment between Okta's reset and ours, which is later by up to the
		// Date header's resolution. Count the requests of that moment in the
		// new window.
		b.sends = sentSince(b.sends, b.windowEnd.Add(-dateResolution))
		b.windowEnd = info.ResetAt
	case info.ResetAt.After(b.windowEnd):
		b.windowEnd = info.ResetAt
	}
}

// Exhaust records a 429: nothing remains until info.ResetAt (local clock),
// or for one window when info cannot be believed.
func (b *RateBudget) Exhaust(info RateInfo, now time.Time) {
	resetAt := info.ResetAt
	if info.Known {
		b.limit = info.Limit
	} else {
		// A 429 without believable headers: wait one window, and count
		// against DefaultLimit from then on.
		b.limit = 0
		resetAt = now.Add(oktaWindow)
	}
	// Never retry a 429 at once, even if the reset looks past.
	resetAt = later(resetAt, now.Add(time.Second))
	if b.confirmed {
		resetAt = later(resetAt, b.windowEnd)
	}
	b.windowEnd, b.confirmed, b.exhausted = resetAt, true, true
}

// HoldUntil delays the next request until at least t (a backoff after a
// failure).
func (b *RateBudget) HoldUntil(t time.Time) {
	b.hold = t
}

// sentSince keeps the send times at or after t.
func sentSince(sends []time.Time, t time.Time) []time.Time {
	kept := sends[:0]
	for _, s := range sends {
		if !s.Before(t) {
			kept = append(kept, s)
		}
	}
	return kept
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
