// Package corpus builds the realistic event sets the benchmarks share:
// events from the Okta simulator's generator (ordinary traffic of every
// kind, with the attack scenarios mixed in), as the JSON Okta sends.
package corpus

import (
	"time"

	"github.com/oktadetect/oktadetect/tests/oktasim"
)

// Start is the simulated time the corpus begins at.
var Start = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// Events returns n events: ordinary traffic one second apart, and every
// 1,000 events the "full" scenario's attacks (brute force, admin grant, API
// tokens, impossible travel, MFA reset, push bombing, …). The output depends
// only on n.
func Events(n int) [][]byte {
	g := oktasim.NewGenerator(42)
	out := make([][]byte, 0, n)
	at := Start
	for len(out) < n {
		for _, e := range g.Backlog(1000, at, time.Second) {
			out = append(out, e.JSON())
		}
		at = at.Add(1000 * time.Second)
		tl, _ := oktasim.Scenario("full", g, at)
		for _, t := range tl {
			if t.Offset > time.Minute*2 {
				break
			}
			out = append(out, t.Event.JSON())
		}
		at = at.Add(oktasim.TrafficDuration)
	}
	return out[:n]
}

// Bytes is the total size of events.
func Bytes(events [][]byte) int {
	n := 0
	for _, e := range events {
		n += len(e)
	}
	return n
}
