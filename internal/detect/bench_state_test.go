package detect

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPackStatePerUser measures the state of the whole pack per
// distinct user: N users each log in and fail once (the events of
// BenchmarkStatePerUser, with uuids); the live heap after a GC divided by
// N, the snapshot's bytes per user, and what restoring the snapshot
// allocates, as a multiple of its size. The measurement runs once
// whatever -benchtime says. OKTADETECT_BENCH_USERS sets N (20,000; the
// memory goal is stated for 1,000,000, where idle users' keys are frozen
// and the live ones are a sliver).
func BenchmarkPackStatePerUser(b *testing.B) { packStatePerUser(b, 0) }

// BenchmarkPackStatePerUserOverADay is BenchmarkPackStatePerUser with the
// users' sign-ins spread evenly over 24 hours, as a large org's are: what
// is left at the end is what the pack keeps per user once windows and
// lateness have passed (remembered logins, first sightings), plus the last
// hour's users in full.
func BenchmarkPackStatePerUserOverADay(b *testing.B) { packStatePerUser(b, 24*time.Hour) }

func packStatePerUser(b *testing.B, spread time.Duration) {
	users := 20000
	if n, err := strconv.Atoi(os.Getenv("OKTADETECT_BENCH_USERS")); err == nil && n > 0 {
		users = n
	}
	rs := packRules(b)
	mk := func(i int, result string) []byte {
		return ev(time.Duration(float64(spread)*float64(i)/float64(users)), map[string]any{
			"uuid":      result + itoa(i),
			"eventType": "user.session.start",
			"actor":     map[string]any{"id": "00u" + itoa(i), "alternateId": "user" + itoa(i) + "@acme.example"},
			"outcome":   map[string]any{"result": result, "reason": "INVALID_CREDENTIALS"},
			"client": map[string]any{"ipAddress": "198.51.100." + itoa(i%250), "geographicalContext": map[string]any{"city": "Berlin", "country": "Germany",
				"geolocation": map[string]any{"lat": 52.52, "lon": 13.405}}},
		})
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	e := NewEngine(rs, EngineOptions{})
	h0 := heap()
	for i := range users {
		for _, r := range []string{"SUCCESS", "FAILURE"} {
			if _, err := e.Process(mk(i, r)); err != nil {
				b.Fatal(err)
			}
		}
	}
	h1 := heap()
	var snap bytes.Buffer
	if err := e.WriteSnapshot(&snap); err != nil {
		b.Fatal(err)
	}
	runtime.KeepAlive(e)
	fresh := NewEngine(rs, EngineOptions{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := fresh.ReadSnapshot(bytes.NewReader(snap.Bytes())); err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	for b.Loop() {
	}
	b.ReportMetric(float64(h1-h0)/float64(users), "B-heap/user")
	b.ReportMetric(float64(snap.Len())/float64(users), "B-snapshot/user")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(snap.Len()), "restore-alloc/snapshot")
}
