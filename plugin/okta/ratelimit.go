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
// input falls back to defaultLimit on its own clock instead.
const maxRateWait = time.Hour

// resetSlack is how far a reset may lie before the response's Date and still
// be rounding (both have a resolution of a second) rather than nonsense.
const resetSlack = 2 * time.Second

// defaultLimit is the limit per oktaWindow assumed while Okta's headers are
// missing or not believable: low for any Okta org, so the input never sends
// more than rate_limit_share of it when it cannot see the real limit.
const defaultLimit = 60

// rateBudget keeps this input within its share of the org's System Log rate
// limit. Okta's limit is a fixed window shared by every client of the org
// (the admin console, SIEMs, scripts), so the input counts the requests it
// sends in the current window and stops at share × limit, and also stops when
// Okta says nothing remains.
//
// The window's end is taken from X-Rate-Limit-Reset (moved onto the local
// clock). It is never moved earlier within a window, so the input never starts
// counting afresh before Okta's window has really reset.
//
// It also holds back requests after failures (holdUntil), so every wait before
// a request is decided in one place. It is used only by the reading goroutine.
type rateBudget struct {
	share float64

	limit     int         // X-Rate-Limit-Limit; 0 while unknown or not believable (defaultLimit applies)
	exhausted bool        // Okta said nothing remains in this window
	windowEnd time.Time   // local clock
	confirmed bool        // windowEnd comes from Okta's headers for this window
	sends     []time.Time // when this window's requests were sent

	hold time.Time // no request before this (backoff after a failure)
}

// allowed is this input's number of requests per window.
func (b *rateBudget) allowed() int {
	return max(1, int(math.Floor(b.share*float64(b.effectiveLimit()))))
}

func (b *rateBudget) effectiveLimit() int {
	if b.limit <= 0 {
		return defaultLimit
	}
	return b.limit
}

// delay returns how long to wait, from now, before the next request may go.
func (b *rateBudget) delay(now time.Time) time.Duration {
	d, _ := b.wait(now)
	return d
}

// Why a request waits (rateBudget.wait).
const (
	waitNone      = ""
	waitHold      = "hold"      // a retry after a failure, already reported
	waitExhausted = "exhausted" // Okta said nothing remains (or answered 429)
	waitShare     = "share"     // this input's share of the window is used
)

// wait returns how long to wait, from now, before the next request may go,
// and why.
func (b *rateBudget) wait(now time.Time) (time.Duration, string) {
	wait, why := b.hold.Sub(now), waitHold
	if now.Before(b.windowEnd) && (b.exhausted || len(b.sends) >= b.allowed()) {
		if w := b.windowEnd.Sub(now); w > wait {
			wait, why = w, waitShare
			if b.exhausted {
				why = waitExhausted
			}
		}
	}
	if wait <= 0 {
		return 0, waitNone
	}
	return wait, why
}

// sent counts a request about to be sent at now.
func (b *rateBudget) sent(now time.Time) {
	if !now.Before(b.windowEnd) {
		b.sends = b.sends[:0]
		b.confirmed = false
		b.exhausted = false
		b.windowEnd = now.Add(oktaWindow)
	}
	b.sends = append(b.sends, now)
}

// observe records the rate headers of an answer (any status but 429). Headers
// that cannot be believed put the budget back on defaultLimit; the window's
// end is kept, it is only ever moved later.
func (b *rateBudget) observe(info rateInfo) {
	if !info.known {
		if info.problem != "" {
			b.limit = 0
		}
		return
	}
	b.limit, b.exhausted = info.limit, info.remaining <= 0
	switch {
	case !b.confirmed:
		b.windowEnd, b.confirmed = info.resetAt, true
	case info.resetAt.Sub(b.windowEnd) > dateResolution:
		// The request landed in Okta's next window: it was sent in the
		// moment between Okta's reset and ours, which is later by up to the
		// Date header's resolution. Count the requests of that moment in the
		// new window.
		b.sends = sentSince(b.sends, b.windowEnd.Add(-dateResolution))
		b.windowEnd = info.resetAt
	case info.resetAt.After(b.windowEnd):
		b.windowEnd = info.resetAt
	}
}

// exhaust records a 429: nothing remains until resetAt (local clock).
func (b *rateBudget) exhaust(info rateInfo, now time.Time) {
	resetAt := info.resetAt
	if info.known {
		b.limit = info.limit
	} else {
		// A 429 without believable headers: wait one window, and count
		// against defaultLimit from then on.
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

// holdUntil delays the next request until at least t.
func (b *rateBudget) holdUntil(t time.Time) {
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
