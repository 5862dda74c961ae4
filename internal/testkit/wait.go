package testkit

import (
	"testing"
	"time"
)

// Patience is how long a test waits for a state of the system it expects
// soon (an event delivered, a commit landed, a rebalance finished). It is
// generous on purpose: a loaded 2-core CI machine is slow, never wrong, and a
// wait ends as soon as its condition holds.
const Patience = 60 * time.Second

// pollEvery is how often a wait looks at the condition again.
const pollEvery = 20 * time.Millisecond

// WaitFor polls cond until it reports true, and fails the test once within
// has passed, naming what it waited for and what cond last saw. cond returns
// whether the state is reached and a short description of what it sees.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", within, what, saw)
		}
		time.Sleep(pollEvery)
	}
}

// Until is WaitFor with Patience.
func Until(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	WaitFor(t, Patience, what, cond)
}

// Scaled is n, or n/div under the race detector: for tests that run on one
// goroutine over a large input, which the race pass slows tenfold and has
// nothing to find in beyond a smaller input. The full size runs in the
// pass without it.
func Scaled(n, div int) int {
	if Race {
		return max(1, n/div)
	}
	return n
}
