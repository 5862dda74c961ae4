package okta

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestAckTrackerCommitsOnlyContiguousPrefix(t *testing.T) {
	var tr ackTracker
	var committed []string
	commit := func(cp checkpoint) error { committed = append(committed, cp.Next); return nil }
	s1 := tr.track(checkpoint{Next: "n1"})
	s2 := tr.track(checkpoint{Next: "n2"})
	s3 := tr.track(checkpoint{Next: "n3"})
	if err := tr.ack(s3, commit); err != nil {
		t.Fatal(err)
	}
	if err := tr.ack(s2, commit); err != nil {
		t.Fatal(err)
	}
	if len(committed) != 0 {
		t.Fatalf("committed %v before page 1 was acknowledged", committed)
	}
	if err := tr.ack(s1, commit); err != nil {
		t.Fatal(err)
	}
	// The page before the newest is committed first, so the two slots the
	// commits alternate between are always one page apart.
	if len(committed) != 2 || committed[0] != "n2" || committed[1] != "n3" {
		t.Fatalf("committed %v, want [n2 n3]", committed)
	}
	if n, _ := tr.oldest(); n != 0 {
		t.Fatalf("%d pages still pending", n)
	}
	if err := tr.ack(s1, commit); err == nil {
		t.Fatal("a second ack of a committed page must be an error")
	}
}

func TestAckTrackerFailedCommitRetriedOnNextAck(t *testing.T) {
	var tr ackTracker
	fail := true
	var committed []string
	commit := func(cp checkpoint) error {
		if fail {
			return errors.New("disk full")
		}
		committed = append(committed, cp.Next)
		return nil
	}
	s1 := tr.track(checkpoint{Next: "n1"})
	s2 := tr.track(checkpoint{Next: "n2"})
	if err := tr.ack(s1, commit); err == nil {
		t.Fatal("want the commit error")
	}
	fail = false
	if err := tr.ack(s2, commit); err != nil {
		t.Fatal(err)
	}
	if len(committed) != 2 || committed[0] != "n1" || committed[1] != "n2" {
		t.Fatalf("committed %v, want [n1 n2]", committed)
	}
}

// Concurrent out-of-order acks: commits are monotone and end at the last page.
func TestAckTrackerConcurrent(t *testing.T) {
	var tr ackTracker
	const n = 500
	seqs := make([]uint64, n)
	for i := range n {
		seqs[i] = tr.track(checkpoint{Version: i})
	}
	rand.Shuffle(n, func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	var mu sync.Mutex
	last := -1
	commit := func(cp checkpoint) error {
		mu.Lock()
		defer mu.Unlock()
		if cp.Version <= last {
			t.Errorf("commit went back from %d to %d", last, cp.Version)
		}
		last = cp.Version
		return nil
	}
	var wg sync.WaitGroup
	for _, s := range seqs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = tr.ack(s, commit) }()
	}
	wg.Wait()
	if last != n-1 {
		t.Fatalf("last commit %d, want %d", last, n-1)
	}
}

func TestAckTrackerWaitBelow(t *testing.T) {
	var tr ackTracker
	s1 := tr.track(checkpoint{Next: "n1"})
	tr.track(checkpoint{Next: "n2"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.waitBelow(ctx, 2); err == nil {
		t.Fatal("two pages pending: waitBelow(2) must block until ctx ends")
	}
	done := make(chan error, 1)
	go func() { done <- tr.waitBelow(context.Background(), 2) }()
	if err := tr.ack(s1, func(checkpoint) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitBelow did not return once a page was committed")
	}
}
