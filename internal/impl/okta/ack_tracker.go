package okta

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ackTracker orders acknowledgements. Pages are numbered as they are read; acks
// arrive concurrently and in any order; a page's cursor may be committed only
// once it and every earlier page are acknowledged, or a crash would skip the
// earlier pages' events.
type ackTracker struct {
	mu      sync.Mutex
	nextSeq uint64
	first   uint64        // sequence number of inflight[0]
	pending []*inflight   // pages read and not yet committed, in read order
	changed chan struct{} // closed and replaced whenever pages are committed
}

type inflight struct {
	cp    checkpoint
	acked bool
	read  time.Time // when the page was read
}

// track registers a page whose cursor is cp and returns its sequence number.
func (t *ackTracker) track(cp checkpoint) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		t.first = t.nextSeq
	}
	seq := t.nextSeq
	t.nextSeq++
	t.pending = append(t.pending, &inflight{cp: cp, read: time.Now()})
	return seq
}

// ack marks page seq acknowledged. If that completes a prefix of pages, commit
// is called with the newest cursor of the prefix, under the tracker's lock so
// commits happen in order; if commit fails the prefix stays pending and is
// committed with the next ack.
//
// When the prefix holds several pages, the page before the newest is committed
// first: commits alternate between two slots, and a crash that tears the
// newest slot resumes from the other one, which must then be exactly one page
// earlier (not several), or a torn write re-reads more than one page.
func (t *ackTracker) ack(seq uint64, commit func(checkpoint) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := seq - t.first
	if seq < t.first || i >= uint64(len(t.pending)) {
		return fmt.Errorf("acknowledgement for unknown page %d", seq)
	}
	t.pending[i].acked = true
	n := 0
	for n < len(t.pending) && t.pending[n].acked {
		n++
	}
	if n == 0 {
		return nil
	}
	if n > 1 {
		if err := commit(t.pending[n-2].cp); err != nil {
			return err
		}
		t.dropCommitted(n - 1)
	}
	if err := commit(t.pending[0].cp); err != nil {
		return err
	}
	t.dropCommitted(1)
	return nil
}

// dropCommitted forgets the first n pending pages, whose cursor is stored, and
// wakes waitBelow.
func (t *ackTracker) dropCommitted(n int) {
	t.pending = t.pending[n:]
	t.first += uint64(n)
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}

// oldest returns how many pages are uncommitted and when the oldest of them
// was read (zero when none is).
func (t *ackTracker) oldest() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return 0, time.Time{}
	}
	return len(t.pending), t.pending[0].read
}

// waitBelow blocks until fewer than n pages are uncommitted, or ctx is done.
// It bounds what one stuck acknowledgement can make the input hold: without
// it, every page read after the stuck one stays pending with its uuids.
func (t *ackTracker) waitBelow(ctx context.Context, n int) error {
	for {
		t.mu.Lock()
		if len(t.pending) < n {
			t.mu.Unlock()
			return nil
		}
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		changed := t.changed
		t.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
