package okta

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRateBudgetShare(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	b := rateBudget{share: 0.25}
	if d := b.delay(now); d != 0 {
		t.Fatalf("first request must go at once, got delay %v", d)
	}
	end := now.Add(40 * time.Second)
	window := rateInfo{known: true, limit: 20, remaining: 19, reset: end.Unix(), resetAt: end}
	for i := range 5 {
		if d := b.delay(now); d != 0 {
			t.Fatalf("request %d of an allowance of 5 delayed by %v", i+1, d)
		}
		window.remaining = 19 - i
		b.observe(window)
	}
	if d := b.delay(now); d != 40*time.Second {
		t.Fatalf("6th request in a window allowing 5 (25%% of 20): delay %v, want 40s", d)
	}
	if d := b.delay(end); d != 0 {
		t.Fatalf("after the reset the budget is fresh, got delay %v", d)
	}
	next := end.Add(60 * time.Second)
	b.observe(rateInfo{known: true, limit: 20, remaining: 19, reset: next.Unix(), resetAt: next})
	if b.used != 1 {
		t.Fatalf("a new reset value starts a new window: used = %d, want 1", b.used)
	}
}

func TestRateBudgetOthersExhaustWindow(t *testing.T) {
	now := time.Now()
	end := now.Add(10 * time.Second)
	b := rateBudget{share: 0.5}
	b.observe(rateInfo{known: true, limit: 100, remaining: 0, reset: end.Unix(), resetAt: end})
	if d := b.delay(now); d != 10*time.Second {
		t.Fatalf("remaining 0 must wait for the reset, got %v", d)
	}
}

func TestRateBudgetHoldAndExhaust(t *testing.T) {
	now := time.Now()
	b := rateBudget{share: 1}
	b.holdUntil(now.Add(3 * time.Second))
	if d := b.delay(now); d != 3*time.Second {
		t.Fatalf("hold: delay %v, want 3s", d)
	}
	b.exhaust(now.Add(-time.Hour)) // a reset already past must not mean "retry at once"
	if d := b.delay(time.Now()); d < 900*time.Millisecond {
		t.Fatalf("a 429 must never be retried at once, got delay %v", d)
	}
}

func TestParseRateHeadersUsesDate(t *testing.T) {
	// Okta's clock is 1 hour ahead of ours: the reset is 30 s after Okta's
	// Date, so the wait is 30 s on our clock too, not 1 h 30 s.
	local := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	okta := local.Add(time.Hour)
	h := http.Header{}
	h.Set("Date", okta.Format(http.TimeFormat))
	h.Set("X-Rate-Limit-Limit", "120")
	h.Set("X-Rate-Limit-Remaining", "7")
	h.Set("X-Rate-Limit-Reset", itoa(okta.Add(30*time.Second).Unix()))
	r := parseRateHeaders(h, local)
	if !r.known || r.limit != 120 || r.remaining != 7 {
		t.Fatalf("parsed %+v", r)
	}
	if got := r.resetAt.Sub(local); got != 30*time.Second {
		t.Fatalf("reset in %v on the local clock, want 30s", got)
	}
	if parseRateHeaders(http.Header{}, local).known {
		t.Fatal("no headers must give an unknown window")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
