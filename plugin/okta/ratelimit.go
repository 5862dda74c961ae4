package okta

import (
	"math"
	"time"
)

// rateBudget keeps this input within its share of the org's System Log rate
// limit. Okta's limit is a fixed window shared by every client of the org
// (the admin console, SIEMs, scripts), so the input counts its own requests in
// the current window and stops at share × limit, and also stops when Okta says
// nothing remains. Windows are told apart by Okta's X-Rate-Limit-Reset value.
//
// It also holds back requests after failures (holdUntil), so every wait before
// a request is decided in one place. It is used only by the reading goroutine.
type rateBudget struct {
	share float64

	known     bool
	reset     int64     // X-Rate-Limit-Reset of the current window
	windowEnd time.Time // local clock
	limit     int
	remaining int
	used      int // our requests answered in this window

	hold time.Time // no request before this (backoff after a failure)
}

// allowed is this input's number of requests per window.
func (b *rateBudget) allowed() int {
	return max(1, int(math.Floor(b.share*float64(b.limit))))
}

// delay returns how long to wait, from now, before the next request may go.
func (b *rateBudget) delay(now time.Time) time.Duration {
	wait := b.hold.Sub(now)
	if b.known && now.Before(b.windowEnd) && (b.remaining <= 0 || b.used >= b.allowed()) {
		wait = max(wait, b.windowEnd.Sub(now))
	}
	return max(wait, 0)
}

// observe records one answered request (any status) and what its headers said.
func (b *rateBudget) observe(info rateInfo) {
	if !info.known {
		b.used++
		return
	}
	if !b.known || info.reset != b.reset {
		b.used = 0
	}
	b.known = true
	b.reset = info.reset
	b.windowEnd = info.resetAt
	b.limit = info.limit
	b.remaining = info.remaining
	b.used++
}

// exhaust records a 429: nothing remains until resetAt (local clock), whatever
// the headers said.
func (b *rateBudget) exhaust(resetAt time.Time) {
	b.remaining = 0
	if resetAt.IsZero() {
		// A 429 without usable headers: wait a conservative while.
		resetAt = time.Now().Add(time.Minute)
	}
	// Never retry a 429 at once, even if the reset looks past.
	if soonest := time.Now().Add(time.Second); resetAt.Before(soonest) {
		resetAt = soonest
	}
	b.known = true
	if resetAt.After(b.windowEnd) {
		b.windowEnd = resetAt
	}
}

// holdUntil delays the next request until at least t.
func (b *rateBudget) holdUntil(t time.Time) {
	b.hold = t
}
