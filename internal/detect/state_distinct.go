package detect

import (
	"slices"
	"sort"
)

// Distinct counts at scale. An address spraying thousands of usernames puts
// thousands of events in one group's window; counting the window's values
// afresh for each event would make every event cost the window, and the
// pipeline slow down as the attack grows. A group of tailMin events or more
// keeps the counts of its latest window, (At[last]-window, At[last]], up to
// date as events are inserted; an event's best window is found by sliding
// from that one back to the event (a few steps: events arrive nearly in
// time order), and then put back.

// tailMin is the size from which a distinct group keeps its tail counts;
// smaller groups are counted afresh (cheap, and the counts would cost more
// memory than the group).
const tailMin = 64

// distinctTail counts the values of events [left, len-1] of its group: those
// in (At[last]-window, At[last]]; top lists the smallest of them (a
// detection's values) unless stale, when one of them left the window.
type distinctTail struct {
	window int64
	left   int
	counts map[string]int32
	top    smallestValues
	stale  bool
	undo   []tailStep // scratch of maxDistinct
}

// tailStep is a change maxDistinct made to the counts while sliding.
type tailStep struct {
	value string
	delta int32
}

// add changes the count of v, and reports whether v entered or left.
func (d *distinctTail) add(v string, delta int32) (entered, left bool) {
	n := d.counts[v] + delta
	if n > 0 {
		d.counts[v] = n
		return n == delta, false
	}
	delete(d.counts, v)
	return false, true
}

// move is add for a change that stays: it keeps top.
func (d *distinctTail) move(v string, delta int32) {
	switch entered, left := d.add(v, delta); {
	case entered && !d.stale:
		d.top.add(v)
	case left && !d.stale && len(d.top) > 0 && v <= d.top[len(d.top)-1]:
		d.stale = true
	}
}

// values lists the window's smallest values, sorted.
func (d *distinctTail) values() []string {
	if d.stale {
		d.top = d.top[:0]
		for v := range d.counts {
			d.top.add(v)
		}
		d.stale = false
	}
	return slices.Clone([]string(d.top))
}

// tailOf returns k's tail counts for window, building them when k is large
// enough and has none.
func (k *countKey) tailOf(window int64) *distinctTail {
	if len(k.At) < tailMin {
		k.tail = nil
		return nil
	}
	if k.tail != nil && k.tail.window == window {
		return k.tail
	}
	last := k.At[len(k.At)-1]
	d := &distinctTail{window: window, counts: map[string]int32{}}
	d.left = sort.Search(len(k.At), func(i int) bool { return k.At[i] > last-window })
	for _, v := range k.Vals[d.left:] {
		d.move(v, 1)
	}
	k.tail = d
	return d
}

// inserted updates the counts for the event just inserted at index i.
func (d *distinctTail) inserted(k *countKey, i int) {
	if d == nil {
		return
	}
	last := len(k.At) - 1
	if i < last { // the latest window is the same
		if k.At[i] > k.At[last]-d.window {
			d.move(k.Vals[i], 1)
		} else {
			d.left++
		}
		return
	}
	d.move(k.Vals[i], 1) // a new latest event: the window moves
	for k.At[d.left] <= k.At[last]-d.window {
		d.move(k.Vals[d.left], -1)
		d.left++
	}
}

// maxDistinct is maxWindowCount counting distinct values: the best
// interval containing t ends at an event time p with t <= p < t+window and
// holds the values of (p-window, p]. It returns the count and the first and
// last index of the best interval (the earliest of equals).
func (k *countKey) maxDistinct(t, window int64) (best, from, to int) {
	d := k.tailOf(window)
	if d == nil {
		return k.maxDistinctAfresh(t, window)
	}
	first := sort.Search(len(k.At), func(i int) bool { return k.At[i] >= t })
	l, undo := d.left, d.undo[:0]
	step := func(v string, delta int32) {
		d.add(v, delta)
		undo = append(undo, tailStep{v, delta})
	}
	// Candidate windows end at the last event of each time: a window
	// ending earlier at the same time holds a subset. So a burst stamped
	// with one time is one candidate, not one per event.
	for r := len(k.At) - 1; r >= first; {
		if k.At[r] < t+window && len(d.counts) >= best {
			best, from, to = len(d.counts), l, r
		}
		next := r - 1
		for next >= first && k.At[next] == k.At[r] {
			next--
		}
		if next < first {
			break
		}
		for ; r > next; r-- { // slide the window to end at event next
			step(k.Vals[r], -1)
		}
		for l > 0 && k.At[l-1] > k.At[r]-window {
			l--
			step(k.Vals[l], 1)
		}
	}
	for i := len(undo) - 1; i >= 0; i-- {
		d.add(undo[i].value, -undo[i].delta)
	}
	d.undo = undo[:0]
	return best, from, to
}

// maxDistinctAfresh is maxDistinct counting each candidate window anew.
func (k *countKey) maxDistinctAfresh(t, window int64) (best, from, to int) {
	times := k.At
	first := sort.Search(len(times), func(i int) bool { return times[i] >= t })
	left := sort.Search(len(times), func(i int) bool { return times[i] > t-window })
	counts := map[string]int{}
	next := left // counts holds the values of [left, next)
	for j := first; j < len(times) && times[j] < t+window; j++ {
		for ; next <= j; next++ {
			counts[k.Vals[next]]++
		}
		for times[left] <= times[j]-window {
			if counts[k.Vals[left]]--; counts[k.Vals[left]] == 0 {
				delete(counts, k.Vals[left])
			}
			left++
		}
		last := j+1 == len(times) || times[j+1] != times[j] // windows end at a time's last event
		if last && len(counts) > best {
			best, from, to = len(counts), left, j
		}
	}
	return best, from, to
}

// values lists the distinct values of [from, to], sorted, at most
// maxListedValues.
func (k *countKey) values(from, to int) []string {
	if d := k.tail; d != nil && from == d.left && to == len(k.At)-1 {
		return d.values()
	}
	var top smallestValues
	for _, v := range k.Vals[from : to+1] {
		top.add(v)
	}
	return top.list()
}

// smallestValues keeps the maxListedValues smallest distinct values added,
// sorted: one pass over a window of any size, in memory of the list's size.
type smallestValues []string

func (s *smallestValues) add(v string) {
	top := *s
	if len(top) == maxListedValues && v >= top[len(top)-1] {
		return
	}
	i, found := slices.BinarySearch(top, v)
	if found {
		return
	}
	if len(top) == maxListedValues {
		top = top[:len(top)-1]
	}
	*s = slices.Insert(top, i, v)
}

func (s smallestValues) list() []string { return slices.Clip([]string(s)) }
