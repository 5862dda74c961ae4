package detect

import (
	"encoding/json"
	"slices"
	"sort"
)

// maxListedValues bounds a detection's `values`.
const maxListedValues = 100

// thresholdShard holds the threshold groups of its keys.
type thresholdShard = keyShard[countKey, *countKey]

// countKey is one threshold group: the times of its matching events in
// order, with each event's identity (uuid hash, 0: none) and, for distinct
// counts, its value; and the first tags of its tagged events, so that a
// re-delivered event is tagged as it was the first time.
type countKey struct {
	keyMeta
	At   []int64  `json:"t"`
	IDs  []uint64 `json:"i,omitempty"`
	Vals []string `json:"x,omitempty"`
	Tags tagMemos `json:"m,omitempty"`
}

// tagMemo is how an event with a uuid (its hash, id) was first tagged.
type tagMemo struct {
	id       uint64
	At       int64    `json:"at"`
	Count    int      `json:"n,omitempty"`
	Opening  int64    `json:"o"`
	Values   []string `json:"x,omitempty"`
	Sequence []string `json:"s,omitempty"`
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
	return &evidence{count: m.Count, opening: m.Opening, values: m.Values, sequence: m.Sequence}
}

// tagMemos are the first tags of a key's tagged events: a slice, as most
// keys hold one or two (a map costs hundreds of bytes per key), looked up
// only when an event is re-delivered.
type tagMemos []tagMemo

// get returns the memo of id, or nil.
func (t tagMemos) get(id uint64) *tagMemo {
	for i := range t {
		if t[i].id == id {
			return &t[i]
		}
	}
	return nil
}

// dropFunc removes the memos drop says to.
func (t tagMemos) dropFunc(drop func(*tagMemo) bool) tagMemos {
	t = slices.DeleteFunc(t, func(m tagMemo) bool { return drop(&m) })
	if len(t) == 0 {
		return nil
	}
	return t
}

// MarshalJSON and UnmarshalJSON keep the JSON of snapshots and entries
// written before (an object by id).
func (t tagMemos) MarshalJSON() ([]byte, error) {
	m := make(map[uint64]*tagMemo, len(t))
	for i := range t {
		m[t[i].id] = &t[i]
	}
	return json.Marshal(m)
}

func (t *tagMemos) UnmarshalJSON(b []byte) error {
	var m map[uint64]*tagMemo
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*t = nil
	for id, x := range m {
		if x != nil {
			x.id = id
			*t = append(*t, *x)
		}
	}
	return nil
}

// withTag records how the event (at, id) was tagged, unless it has no
// uuid (id 0) or was not tagged.
func withTag(tags tagMemos, id uint64, at int64, ev *evidence) tagMemos {
	if id == 0 || ev == nil {
		return tags
	}
	m := tagMemo{id: id, At: at, Count: ev.count, Opening: ev.opening, Values: ev.values, Sequence: ev.sequence}
	if old := tags.get(id); old != nil {
		*old = m
		return tags
	}
	return append(tags, m)
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
	k := sh.get(group, func(name string) *countKey { return &countKey{keyMeta: keyMeta{name: name}} })
	if o.id != 0 && k.holds(o.at, o.id) {
		return k.Tags.get(o.id).evidence()
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
	if o.distinct {
		ev.values = k.values(from, to)
	}
	k.Tags = withTag(k.Tags, o.id, o.at, ev)
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
	}
}

// normalize gives restored groups (written before ids or values were kept)
// their parallel lists.
func (k *countKey) normalize(distinct bool) {
	if len(k.IDs) != len(k.At) {
		k.IDs = make([]uint64, len(k.At), cap(k.At))
	}
	if distinct && len(k.Vals) != len(k.At) {
		k.Vals = make([]string, len(k.At), cap(k.At))
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
		for times[left] <= times[j]-window {
			left++
		}
		if n := j - left + 1; n > best {
			best, from, to = n, left, j
		}
	}
	return best, from, to
}

// maxDistinct is maxWindowCount counting distinct values.
func (k *countKey) maxDistinct(t, window int64) (best, from, to int) {
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
		if len(counts) > best {
			best, from, to = len(counts), left, j
		}
	}
	return best, from, to
}

// values lists the distinct values of [from, to], sorted, at most
// maxListedValues.
func (k *countKey) values(from, to int) []string {
	vs := slices.Clone(k.Vals[from : to+1])
	slices.Sort(vs)
	vs = slices.Compact(vs)
	return vs[:min(len(vs), maxListedValues):min(len(vs), maxListedValues)]
}

// dropUpTo removes the events at or before cutoff (and their tags); it
// reports whether the group is left empty.
func (k *countKey) dropUpTo(cutoff int64) (changed, empty bool) {
	i := sort.Search(len(k.At), func(i int) bool { return k.At[i] > cutoff })
	if i == 0 {
		return false, false
	}
	if i == len(k.At) {
		return true, true
	}
	k.At = slices.Clone(k.At[i:])
	if len(k.IDs) > i {
		k.IDs = slices.Clone(k.IDs[i:])
	}
	if len(k.Vals) > i {
		k.Vals = slices.Clone(k.Vals[i:])
	}
	k.Tags = k.Tags.dropFunc(func(m *tagMemo) bool { return m.At <= cutoff })
	return true, false
}

func (k *countKey) clone() *countKey {
	return &countKey{keyMeta: k.keyMeta, At: slices.Clone(k.At), IDs: slices.Clone(k.IDs), Vals: slices.Clone(k.Vals), Tags: slices.Clone(k.Tags)}
}

func expireThreshold(sh *thresholdShard, cutoff int64) {
	sh.expire(func(k *countKey) (bool, bool) { return k.dropUpTo(cutoff) })
}
