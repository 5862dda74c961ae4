package testkit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records a Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	WaitFor(t, time.Minute, "three calls", func() (bool, string) {
		calls++
		return calls == 3, fmt.Sprint(calls)
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestWaitForNamesWhatItWaitedForAndWhatItSaw(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		WaitFor(r, 50*time.Millisecond, "the impossible", func() (bool, string) { return false, "7 events" })
	}()
	if !strings.Contains(r.failed, "the impossible") || !strings.Contains(r.failed, "7 events") {
		t.Fatalf("failure message %q should name the wait and what it saw", r.failed)
	}
}
