package detect

import (
	"math"
	"slices"
	"sort"
)

// maxListedValues bounds a detection's `values`.
const maxListedValues = 100

// thresholdShard holds the threshold groups of its keys.
type thresholdShard = keyShard[countKey, *countKey]

// countKey is one threshold group: the times of its matching events in
// order, with each event's identity (uuid hash, 0: none) and, for distinct
// counts, its value and arrival number; and the first tags of its tagged
// events, so that a re-delivered event is tagged as it was the first time.
type countKey struct {
	keyMeta
	At   []int64  `json:"t"`
	IDs  []uint64 `json:"i,omitempty"`
	Vals []string `json:"x,omitempty"`
	// Arrived numbers a distinct group's events in arrival order (from 1;
	// 0: restored from before numbers were kept), and Arrivals counts them:
	// a memo names the events its values came from by time range and
	// arrival, instead of holding a copy of up to maxListedValues values.
	Arrived  []uint64 `json:"a,omitempty"`
	Arrivals uint64   `json:"n,omitempty"`
	Tags     tagMemos `json:"m,omitempty"`
	// tail counts the values of a large distinct group's latest window
	// (state_distinct.go); derived, never stored.
	tail *distinctTail
}

// tagMemo is how an event with a uuid (its hash, id) was first tagged.
// A distinct count's values are either listed (Values) or, since arrival
// numbers are kept, named: those of the group's events with times in
// [From, To] that arrived up to Seen.
//
// Groups under attack hold one memo per tagged event, so a memo is kept
// small: the rarely used lists sit behind a pointer.
type tagMemo struct {
	id        uint64
	At        int64  `json:"at"`
	Opening   int64  `json:"o"`
	From      int64  `json:"f,omitempty"`
	To        int64  `json:"u,omitempty"`
	Seen      uint64 `json:"a,omitempty"`
	Count     int32  `json:"n,omitempty"`
	*tagLists        // nil: no listed values nor sequence
}

// tagLists are a memo's listed values (distinct counts restored from
// before values were named) and sequence.
type tagLists struct {
	Values   []string `json:"x,omitempty"`
	Sequence []string `json:"s,omitempty"`
}

func (m *tagMemo) values() []string {
	if m.tagLists == nil {
		return nil
	}
	return m.tagLists.Values
}

func (m *tagMemo) sequence() []string {
	if m.tagLists == nil {
		return nil
	}
	return m.tagLists.Sequence
}

// setLists sets the memo's lists, reusing its tagLists when it has one.
func (m *tagMemo) setLists(values, sequence []string) {
	switch {
	case len(values) == 0 && len(sequence) == 0:
		m.tagLists = nil
	case m.tagLists == nil:
		m.tagLists = &tagLists{Values: values, Sequence: sequence}
	default:
		m.tagLists.Values, m.tagLists.Sequence = values, sequence
	}
}

// evidence is what a stateful rule found for the event it tags: the
// alert's opening (bucketStart of the evidence) and the detection's count,
// values and sequence.
type evidence struct {
	count    int
	opening  int64
	values   []string
	sequence []string
}

func (m *tagMemo) evidence() *evidence {
	if m == nil {
		return nil
	}
	return &evidence{count: int(m.Count), opening: m.Opening, values: m.values(), sequence: m.sequence()}
}

// countObservation is one matching event of a threshold rule.
type countObservation struct {
	at       int64
	id       uint64
	value    string // distinct rules: the event's value (a copy)
	distinct bool
}

// countLimits are a threshold rule's numbers, in event-time nanoseconds.
type countLimits struct {
	count          int
	window, period int64
}

// observe records a matching event and returns its evidence when some
// interval (a, a+window] containing its time holds at least count events
// (distinct values) of the group; nil when none does. A re-delivered event
// (same uuid and time) is not counted again: it gets its first evidence.
func (s *ruleState) observe(group string, o countObservation, lim countLimits) *evidence {
	sh := &s.threshold[shardOf(group)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := sh.get(group, o.at, func(name string) *countKey { return &countKey{keyMeta: keyMeta{name: name}} })
	if o.id != 0 && k.holds(o.at, o.id) {
		return k.memoEvidence(k.Tags.get(o.at, o.id))
	}
	k.insert(o)
	sh.dirty.mark(k.name)
	var n, from, to int
	if o.distinct {
		n, from, to = k.maxDistinct(o.at, lim.window)
	} else {
		n, from, to = maxWindowCount(k.At, o.at, lim.window)
	}
	if n < lim.count {
		return nil
	}
	ev := &evidence{count: n, opening: bucketStart(k.At[from], lim.period)}
	if !o.distinct {
		k.Tags = withTag(k.Tags, o.id, o.at, ev)
		return ev
	}
	ev.values = k.values(from, to)
	if o.id != 0 {
		// Named by time range and arrival, not listed.
		k.Tags.put(tagMemo{id: o.id, At: o.at, Count: int32(min(n, math.MaxInt32)), Opening: ev.opening,
			From: k.At[from], To: k.At[to], Seen: k.Arrivals})
	}
	return ev
}

// memoEvidence is the evidence m recorded, its values listed again from
// the events it names.
func (k *countKey) memoEvidence(m *tagMemo) *evidence {
	ev := m.evidence()
	if ev == nil || m.Seen == 0 {
		return ev
	}
	var top smallestValues
	for i := sort.Search(len(k.At), func(i int) bool { return k.At[i] >= m.From }); i < len(k.At) && k.At[i] <= m.To; i++ {
		if k.Arrived[i] <= m.Seen {
			top.add(k.Vals[i])
		}
	}
	ev.values = top.list()
	return ev
}

// holds reports whether the event (at, id) is counted already.
func (k *countKey) holds(at int64, id uint64) bool {
	for i := sort.Search(len(k.At), func(i int) bool { return k.At[i] >= at }); i < len(k.At) && k.At[i] == at; i++ {
		if i < len(k.IDs) && k.IDs[i] == id {
			return true
		}
	}
	return false
}

func (k *countKey) insert(o countObservation) {
	k.normalize(o.distinct)
	i := sort.Search(len(k.At), func(i int) bool { return k.At[i] > o.at })
	k.At = slices.Insert(k.At, i, o.at)
	k.IDs = slices.Insert(k.IDs, i, o.id)
	if o.distinct {
		k.Vals = slices.Insert(k.Vals, i, o.value)
		k.Arrivals++
		k.Arrived = slices.Insert(k.Arrived, i, k.Arrivals)
		k.tail.inserted(k, i)
	}
}

// normalize gives restored groups (written before ids, values or arrival
// numbers were kept) their parallel lists.
func (k *countKey) normalize(distinct bool) {
	if len(k.IDs) != len(k.At) {
		k.IDs = make([]uint64, len(k.At), cap(k.At))
	}
	if distinct && len(k.Vals) != len(k.At) {
		k.Vals = make([]string, len(k.At), cap(k.At))
	}
	if distinct && len(k.Arrived) != len(k.At) {
		// All arrived before anything that comes now, in some order: number
		// them in time order.
		k.Arrived = make([]uint64, len(k.At), cap(k.At))
		for i := range k.Arrived {
			k.Arrived[i] = uint64(i + 1)
		}
		k.Arrivals = max(k.Arrivals, uint64(len(k.At)))
	}
}

// maxWindowCount: the best interval containing t can always be slid so that
// its right end is an event time p with t <= p < t+window; it then holds the
// events in (p-window, p]. Two pointers over those candidates. It returns
// the count and the first and last index of the best interval (the
// earliest of equals).
func maxWindowCount(times []int64, t, window int64) (best, from, to int) {
	first := sort.Search(len(times), func(i int) bool { return times[i] >= t })
	left := sort.Search(len(times), func(i int) bool { return times[i] > t-window })
	for j := first; j < len(times) && times[j] < t+window; j++ {
		// A window ends at the last event of its time (a burst stamped
		// with one time is one candidate, not one per event).
		at := times[j]
		j += sort.Search(len(times)-j, func(i int) bool { return times[j+i] > at }) - 1
		for times[left] <= times[j]-window {
			left++
		}
		if n := j - left + 1; n > best {
			best, from, to = n, left, j
		}
	}
	return best, from, to
}

// dropUpTo removes the tags of events at or before cutoff, and the events
// at or before cutoff that no tag left names; it reports whether the group
// is left empty.
func (k *countKey) dropUpTo(cutoff int64) (changed, empty bool) {
	before := k.Tags.Len()
	k.Tags.dropThrough(cutoff)
	changed = k.Tags.Len() != before
	for m := range k.Tags.all() {
		if m.Seen != 0 && m.From <= cutoff {
			cutoff = m.From - 1
		}
	}
	i := sort.Search(len(k.At), func(i int) bool { return k.At[i] > cutoff })
	if i == 0 {
		return changed, false
	}
	if i == len(k.At) && len(k.Tags) == 0 {
		return true, true
	}
	k.tail = nil // its indices shift
	k.At = slices.Clone(k.At[i:])
	if len(k.IDs) > i {
		k.IDs = slices.Clone(k.IDs[i:])
	}
	if len(k.Vals) > i {
		k.Vals = slices.Clone(k.Vals[i:])
	}
	if len(k.Arrived) > i {
		k.Arrived = slices.Clone(k.Arrived[i:])
	}
	return true, false
}

func (k *countKey) clone() *countKey {
	c := *k
	c.At, c.IDs, c.Vals, c.Arrived, c.Tags = slices.Clone(k.At), slices.Clone(k.IDs), slices.Clone(k.Vals), slices.Clone(k.Arrived), k.Tags.clone()
	c.tail = nil
	return &c
}

func expireThreshold(sh *thresholdShard, h horizons, keep retention) {
	sh.expire(h, keep, func(name string, k *countKey) (bool, bool) { return k.dropUpTo(h.of(name) - keep.window) })
}
