package okta

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func window(limit, remaining int, end time.Time) RateInfo {
	return RateInfo{Known: true, Limit: limit, Remaining: remaining, Reset: end.Unix(), ResetAt: end}
}

func TestRateBudgetShare(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	b := NewRateBudget(0.25)
	end := now.Add(40 * time.Second)
	for i := range 5 {
		if d := b.Delay(now); d != 0 {
			t.Fatalf("request %d of an allowance of 5 delayed by %v", i+1, d)
		}
		b.Sent(now)
		b.Observe(window(20, 19-i, end))
	}
	if d := b.Delay(now); d != 40*time.Second {
		t.Fatalf("6th request in a window allowing 5 (25%% of 20): delay %v, want 40s", d)
	}
	if d := b.Delay(end); d != 0 {
		t.Fatalf("after the reset the budget is fresh, got delay %v", d)
	}
	b.Sent(end)
	if len(b.sends) != 1 {
		t.Fatalf("a request after the reset starts a new window: used = %d, want 1", len(b.sends))
	}
}

func TestRateBudgetCountsRequestsWithoutHeaders(t *testing.T) {
	now := time.Now()
	end := now.Add(30 * time.Second)
	b := NewRateBudget(0.5)
	b.Sent(now)
	b.Observe(window(4, 3, end))
	b.Sent(now) // a connection reset: no answer, still a request
	if d := b.Delay(now); d != 30*time.Second {
		t.Fatalf("two requests of an allowance of 2: delay %v, want 30s", d)
	}
}

func TestRateBudgetWindowNeverShrinks(t *testing.T) {
	now := time.Now()
	b := NewRateBudget(0.5)
	b.Sent(now)
	b.Observe(window(4, 3, now.Add(30*time.Second)))
	b.Sent(now)
	b.Observe(window(4, 2, now.Add(29500*time.Millisecond))) // Date rounding
	if d := b.Delay(now); d != 30*time.Second {
		t.Fatalf("delay %v, want the later end 30s", d)
	}
}

func TestRateBudgetOthersExhaustWindow(t *testing.T) {
	now := time.Now()
	b := NewRateBudget(0.5)
	b.Sent(now)
	b.Observe(window(100, 0, now.Add(10*time.Second)))
	if d := b.Delay(now); d != 10*time.Second {
		t.Fatalf("remaining 0 must wait for the reset, got %v", d)
	}
}

func TestRateBudgetHoldAndExhaust(t *testing.T) {
	now := time.Now()
	b := NewRateBudget(1)
	b.HoldUntil(now.Add(3 * time.Second))
	if d := b.Delay(now); d != 3*time.Second {
		t.Fatalf("hold: delay %v, want 3s", d)
	}
	b = NewRateBudget(1)
	b.Sent(now)
	b.Exhaust(window(10, 0, now.Add(-time.Hour)), now) // a reset already past must not mean "retry at once"
	if d := b.Delay(now); d != time.Second {
		t.Fatalf("a 429 must never be retried at once, got delay %v", d)
	}
	b.Exhaust(RateInfo{}, now)
	if d := b.Delay(now); d != time.Minute {
		t.Fatalf("a 429 without headers waits a whole window, got %v", d)
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
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(okta.Add(30*time.Second).Unix(), 10))
	r := parseRateHeaders(h, local)
	if !r.Known || r.Limit != 120 || r.Remaining != 7 {
		t.Fatalf("parsed %+v", r)
	}
	if got := r.ResetAt.Sub(local); got != 30*time.Second {
		t.Fatalf("reset in %v on the local clock, want 30s", got)
	}
	if parseRateHeaders(http.Header{}, local).Known {
		t.Fatal("no headers must give an unknown window")
	}
}

// A request sent just after Okta's reset but before ours lands in the next
// window: it is counted there.
func TestRateBudgetRequestInResetGap(t *testing.T) {
	t0 := time.Now()
	b := NewRateBudget(0.5) // 2 of 4
	b.Sent(t0)
	b.Observe(window(4, 3, t0.Add(10*time.Second))) // our end; Okta's is up to 1s earlier
	gap := t0.Add(9500 * time.Millisecond)
	b.Sent(gap)
	b.Observe(window(4, 3, gap.Add(10*time.Second))) // Okta: next window
	if got := len(b.sends); got != 1 {
		t.Fatalf("%d requests counted in the new window, want 1 (the one sent in the gap)", got)
	}
	b.Sent(gap)
	if d := b.Delay(gap); d != 10*time.Second {
		t.Fatalf("2 of 2 used: delay %v, want until the new window's end", d)
	}
}

// Okta's headers are believed within an hour of Date only; beyond, or before
// Date, or with a limit of 0, they are not used and the reason is given.
func TestParseRateHeadersBounds(t *testing.T) {
	local := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	hdr := func(limit string, reset time.Time, date time.Time) http.Header {
		h := http.Header{}
		h.Set("Date", date.Format(http.TimeFormat))
		h.Set("X-Rate-Limit-Limit", limit)
		h.Set("X-Rate-Limit-Remaining", "0")
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
		return h
	}
	if r := parseRateHeaders(hdr("60", local.Add(59*time.Minute), local), local); !r.Known || r.ResetAt.Sub(local) != 59*time.Minute {
		t.Fatalf("a reset 59 minutes ahead is believed: %+v", r)
	}
	bad := map[string]http.Header{
		"X-Rate-Limit-Reset is 1h1m0s after the response's Date":     hdr("60", local.Add(61*time.Minute), local),
		"X-Rate-Limit-Reset is 18263 days after the response's Date": hdr("60", local.AddDate(50, 0, 0), local),
		"X-Rate-Limit-Reset is 1826 days before the response's Date": hdr("60", local, local.AddDate(5, 0, 0)),
		"X-Rate-Limit-Limit 0": hdr("0", local.Add(time.Minute), local),
		"X-Rate-Limit headers incomplete or not numbers (limit \"x\"": hdr("x", local.Add(time.Minute), local),
	}
	for want, h := range bad {
		r := parseRateHeaders(h, local)
		if r.Known || !r.Present || !strings.Contains(r.Problem, want) {
			t.Errorf("%s: parsed %+v", want, r)
		}
	}
	if r := parseRateHeaders(http.Header{}, local); r.Known || r.Present || r.Problem != "no X-Rate-Limit headers" {
		t.Fatalf("no headers: %+v", r)
	}
}

// Headers that cannot be believed put the budget on the default limit: 60
// per minute times the share, counted on the local clock.
func TestRateBudgetDefaultLimit(t *testing.T) {
	now := time.Now()
	b := NewRateBudget(0.5)
	b.Observe(RateInfo{Problem: "no X-Rate-Limit headers"})
	for i := range 30 {
		if d := b.Delay(now); d != 0 {
			t.Fatalf("request %d of 30 delayed %v", i+1, d)
		}
		b.Sent(now)
	}
	if d, why := b.Wait(now); d != time.Minute || why != WaitShare {
		t.Fatalf("31st request in a minute: wait %v (%s), want 1m (share)", d, why)
	}
}
