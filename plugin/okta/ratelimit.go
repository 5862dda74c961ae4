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

	limit     int // X-Rate-Limit-Limit; 0 until known
	remaining int
	windowEnd time.Time   // local clock
	confirmed bool        // windowEnd comes from Okta's headers for this window
	sends     []time.Time // when this window's requests were sent

	hold time.Time // no request before this (backoff after a failure)
}

// allowed is this input's number of requests per window.
func (b *rateBudget) allowed() int {
	return max(1, int(math.Floor(b.share*float64(b.limit))))
}

// delay returns how long to wait, from now, before the next request may go.
func (b *rateBudget) delay(now time.Time) time.Duration {
	wait := b.hold.Sub(now)
	if b.limit > 0 && now.Before(b.windowEnd) && (b.remaining <= 0 || len(b.sends) >= b.allowed()) {
		wait = max(wait, b.windowEnd.Sub(now))
	}
	return max(wait, 0)
}

// sent counts a request about to be sent at now.
func (b *rateBudget) sent(now time.Time) {
	if !now.Before(b.windowEnd) {
		b.sends = b.sends[:0]
		b.confirmed = false
		b.remaining = b.limit
		b.windowEnd = now.Add(oktaWindow)
	}
	b.sends = append(b.sends, now)
}

// observe records the rate headers of an answer (any status but 429).
func (b *rateBudget) observe(info rateInfo) {
	if !info.known {
		return
	}
	b.limit, b.remaining = info.limit, info.remaining
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
	if info.known {
		b.limit = info.limit
	}
	resetAt := info.resetAt
	if !info.known {
		resetAt = now.Add(oktaWindow) // a 429 without usable headers
	}
	// Never retry a 429 at once, even if the reset looks past.
	resetAt = later(resetAt, now.Add(time.Second))
	if b.confirmed {
		resetAt = later(resetAt, b.windowEnd)
	}
	b.windowEnd, b.confirmed, b.remaining = resetAt, true, 0
	if b.limit == 0 {
		b.limit = 1
	}
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
