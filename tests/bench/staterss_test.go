package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestPackStateRSS measures the process memory of the whole pack's state:
// N users each sign in and fail once (the events of the detect package's
// BenchmarkPackStatePerUser, 250 addresses) through generate → cel_detect
// (the pack, state in memory) → drop, in this process, and reports the
// peak RSS (VmHWM) and the Go heap left at the end. Two shapes: the users'
// sign-ins spread over a day, as a large org's are (windows and lateness
// pass, so what stays is what the pack keeps for long), and all at one
// instant (every window holds every user: the worst case).
//
// It runs only when asked:
//
//	OKTADETECT_RSS=1 go test -run TestPackStateRSS -v -timeout 30m .
//	OKTADETECT_RSS=1 OKTADETECT_RSS_USERS=100000 …
func TestPackStateRSS(t *testing.T) {
	if os.Getenv("OKTADETECT_RSS") == "" {
		t.Skip("set OKTADETECT_RSS=1 to measure the pack's state for 1,000,000 users (minutes)")
	}
	users := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("OKTADETECT_RSS_USERS")); err == nil && n > 0 {
		users = n
	}
	for _, shape := range []struct {
		name   string
		spread time.Duration
	}{{"over-a-day", 24 * time.Hour}, {"one-instant", 0}} {
		t.Run(shape.name, func(t *testing.T) { measureStateRSS(t, users, shape.spread) })
	}
}

func measureStateRSS(t *testing.T, users int, spread time.Duration) {
	runtime.GC()
	debug.FreeOSMemory()
	resetHWM(t)
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(stateRSSYAML(users, spread)); err != nil {
		t.Fatal(err)
	}
	st, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	start := rssSample() // the pack compiled, no state yet
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	began := time.Now()
	if err := st.Run(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	hwm := readStatusKB(t, "VmHWM")
	runtime.GC()
	end := rssSample()
	runtime.KeepAlive(st) // its processor holds the state measured at the end
	t.Logf("%d users, %d events in %v; built, before any event: RSS %s, Go heap %s", users, 2*users, elapsed.Round(time.Second), mib(start.rss), mib(start.heap))
	t.Logf("peak RSS (VmHWM) %s; at the end, after a GC: RSS %s, Go heap %s (%.0f B per user over the built stream)",
		mib(hwm), mib(end.rss), mib(end.heap), float64(end.heap-start.heap)/float64(users))
}

// stateRSSYAML generates user i's sign-in and failure at spread·i/users
// after a fixed start.
func stateRSSYAML(users int, spread time.Duration) string {
	return fmt.Sprintf(`
input:
  generate:
    count: %d
    interval: ""
    batch_size: 100
    mapping: |
      let i = counter() - 1
      let u = ($i / 2).floor()
      let result = if $i %% 2 == 0 { "SUCCESS" } else { "FAILURE" }
      root.uuid = $result + $u.string()
      root.published = (1714564800.0 + $u * %f / %d.0).ts_format("2006-01-02T15:04:05.000Z07:00", "UTC")
      root.eventType = "user.session.start"
      root.actor = {"id": "00u" + $u.string(), "alternateId": "user" + $u.string() + "@acme.example"}
      root.outcome = {"result": $result, "reason": "INVALID_CREDENTIALS"}
      root.client = {"ipAddress": "198.51.100." + ($u %% 250).string(), "geographicalContext": {"city": "Berlin", "country": "Germany", "geolocation": {"lat": 52.52, "lon": 13.405}}}
pipeline:
  processors:
    - cel_detect: {}
output:
  drop: {}
logger:
  level: none
`, 2*users, spread.Seconds(), users)
}
