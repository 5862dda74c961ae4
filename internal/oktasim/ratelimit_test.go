package oktasim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func rateHeaders(t *testing.T, r response) (limit, remaining int, reset int64) {
	t.Helper()
	var err error
	if limit, err = strconv.Atoi(r.Header.Get("X-Rate-Limit-Limit")); err != nil {
		t.Fatalf("X-Rate-Limit-Limit: %v", err)
	}
	if remaining, err = strconv.Atoi(r.Header.Get("X-Rate-Limit-Remaining")); err != nil {
		t.Fatalf("X-Rate-Limit-Remaining: %v", err)
	}
	if reset, err = strconv.ParseInt(r.Header.Get("X-Rate-Limit-Reset"), 10, 64); err != nil {
		t.Fatalf("X-Rate-Limit-Reset: %v", err)
	}
	return limit, remaining, reset
}

func TestFixedWindowRateLimit(t *testing.T) {
	f := newFixture(t, Options{RateLimit: 3, RateWindow: 2 * time.Second})
	f.clock.Advance(500 * time.Millisecond) // mid-window: the reset is still the window's end
	windowEnd := t0.Add(2 * time.Second).Unix()
	for i, wantRemaining := range []int{2, 1, 0} {
		r := f.get(t, f.logsURL(nil))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, r.StatusCode)
		}
		limit, remaining, reset := rateHeaders(t, r)
		if limit != 3 || remaining != wantRemaining || reset != windowEnd {
			t.Errorf("request %d: limit %d remaining %d reset %d, want 3 %d %d", i, limit, remaining, reset, wantRemaining, windowEnd)
		}
	}

	r := f.get(t, f.logsURL(nil))
	body := wantOktaError(t, r, http.StatusTooManyRequests, "E0000047")
	if body["errorSummary"] != "API call exceeded rate limit due to too many requests." {
		t.Errorf("errorSummary = %v", body["errorSummary"])
	}
	var exact map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &exact)
	if string(exact["errorCauses"]) != "[]" || len(exact) != 5 {
		t.Errorf("429 body = %s", r.body)
	}
	if _, remaining, reset := rateHeaders(t, r); remaining != 0 || reset != windowEnd {
		t.Errorf("429 remaining %d reset %d", remaining, reset)
	}

	f.clock.Advance(2 * time.Second) // next window
	r = f.get(t, f.logsURL(nil))
	if _, remaining, reset := rateHeaders(t, r); r.StatusCode != http.StatusOK || remaining != 2 || reset != windowEnd+2 {
		t.Errorf("next window: status %d remaining %d reset %d", r.StatusCode, remaining, reset)
	}
}

func TestDefaultRateLimit(t *testing.T) {
	f := newFixture(t, Options{})
	limit, remaining, reset := rateHeaders(t, f.get(t, f.logsURL(nil)))
	if limit != DefaultRateLimit || remaining != DefaultRateLimit-1 || reset != t0.Add(time.Minute).Unix() {
		t.Errorf("limit %d remaining %d reset %d", limit, remaining, reset)
	}
}

// A client must compute waits against Date, not its own clock: both come
// from the simulator's clock, however far it is from the real one.
func TestSkewedClockDrivesDateAndReset(t *testing.T) {
	skew := 3*time.Hour + 17*time.Second
	f := newFixture(t, Options{RateWindow: 10 * time.Second, Now: func() time.Time { return time.Now().Add(skew) }})
	r := f.get(t, f.logsURL(nil))
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		t.Fatalf("Date: %v", err)
	}
	if d := date.Sub(time.Now()); d < skew-time.Minute || d > skew+time.Minute {
		t.Errorf("Date %v is %v from the real clock, want about %v", date, d, skew)
	}
	_, _, reset := rateHeaders(t, r)
	if wait := time.Unix(reset, 0).Sub(date); wait <= 0 || wait > 11*time.Second {
		t.Errorf("reset is %v after Date, want within the 10s window", wait)
	}
}
