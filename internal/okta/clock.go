package okta

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"
)

// Clock is the time a Client, and whatever drives it, lives by. Tests give
// a fake one: waits then pass at once and are asserted exactly.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx is done, with a little jitter on long waits so
// many inputs restarted together do not stay in step.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
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

// responseDate is a response's Date header: Okta's clock when it answered,
// to a second. Rate-limit resets are measured against it, and it tells how
// far the local clock is off.
func responseDate(h http.Header) (time.Time, bool) {
	d, err := http.ParseTime(h.Get("Date"))
	return d, err == nil
}
