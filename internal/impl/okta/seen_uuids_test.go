package okta

import (
	"testing"
)

func TestRecentUUIDsForgetsOldest(t *testing.T) {
	s := newRecentUUIDs(2)
	if !s.add("a") || !s.add("b") || s.add("a") {
		t.Fatal("a, b are new; a again is not")
	}
	s.add("c") // forgets a
	if !s.add("a") {
		t.Fatal("a was forgotten and is new again")
	}
}
