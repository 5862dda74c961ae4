package oktasim

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultRateLimit is Okta's default per-minute limit for /api/v1/logs.
const DefaultRateLimit = 120

// rateLimiter is Okta's fixed-window org limit: a counter per window, reset
// at the window's end, reported in X-Rate-Limit-* headers on every response.
type rateLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	start time.Time // current window
	used  int
}

// rateState is what the headers report for one request.
type rateState struct {
	limit, remaining int
	reset            time.Time
	exceeded         bool
}

// take counts one request at simulator time now. Windows are aligned on
// multiples of the window length, as Okta's per-minute windows are aligned
// on minutes.
func (l *rateLimiter) take(now time.Time) rateState {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now.Truncate(l.window)
	if !start.Equal(l.start) {
		l.start, l.used = start, 0
	}
	l.used++
	return rateState{
		limit:     l.limit,
		remaining: max(l.limit-l.used, 0),
		reset:     start.Add(l.window),
		exceeded:  l.used > l.limit,
	}
}

// set writes the X-Rate-Limit-* headers. Reset is whole epoch seconds,
// rounded up so a client waiting until Reset never retries early.
func (s rateState) set(h http.Header) {
	reset := s.reset.Unix()
	if s.reset.Nanosecond() != 0 {
		reset++
	}
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(s.limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(s.remaining))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset, 10))
}
