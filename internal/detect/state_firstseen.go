package detect

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
)

// firstSeenShard holds the first_seen histories of its keys.
type firstSeenShard = keyShard[firstKey, *firstKey]

// firstKey is one first_seen key: when it was first seen (for learn), and
// per value the times it was seen, thinned to what answers "seen within
// history before t" (see thin). Recent holds the identities of events seen
// within max_lateness, so that a re-delivered event counts once; Pending
// the new values seen while the key was still learning, which a late,
// earlier sighting of the key may turn into first sightings.
type firstKey struct {
	keyMeta
	First   int64          `json:"first"`
	Values  seenValues     `json:"v"`
	Recent  []idAt         `json:"r,omitempty"`
	Pending []pendingFirst `json:"p,omitempty"`
	Tags    tagMemos       `json:"m,omitempty"`
}

type idAt struct {
	At int64  `json:"t"`
	ID uint64 `json:"i"`
}

type pendingFirst struct {
	At    int64  `json:"t"`
	Value string `json:"v"`
}

// firstLimits are a first_seen rule's numbers, in event-time nanoseconds.
type firstLimits struct {
	history, learn, period int64
}

// observeFirst records a sighting of value for key at (id: the event's
// identity) and returns the evidence when it is a first sighting: no
// sighting of the value within history before it, the key seen for learn
// before it. A sighting that moves the key's first sighting earlier may
// complete the learning of a pending new value: then it is tagged for it.
func (s *ruleState) observeFirst(key, value string, at int64, id uint64, lim firstLimits) *evidence {
	sh := &s.firstSeen[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := sh.get(key, at, func(name string) *firstKey {
		return &firstKey{keyMeta: keyMeta{name: name}, First: at}
	})
	if id != 0 {
		if slices.Contains(k.Recent, idAt{At: at, ID: id}) {
			return k.Tags.get(at, id).evidence()
		}
		k.Recent = append(k.Recent, idAt{At: at, ID: id})
	}
	sh.dirty.mark(k.name)
	seen := k.seenWithin(value, at, lim.history)
	learned := k.First <= at-lim.learn
	earlier := at < k.First
	value = k.addSighting(value, at, lim.history)
	var found *evidence
	switch {
	case !seen && learned:
		found = &evidence{opening: bucketStart(at, lim.period)}
	case !seen:
		k.Pending = append(k.Pending, pendingFirst{At: at, Value: value})
	}
	if earlier {
		k.First = at
		if ev := k.learnPending(lim); found == nil {
			found = ev
		}
	}
	k.Tags = withTag(k.Tags, id, at, found)
	return found
}

// seenWithin reports a sighting of value in [at-history, at).
func (k *firstKey) seenWithin(value string, at, history int64) bool {
	times := k.Values.times(value)
	i := sort.Search(len(times), func(i int) bool { return times[i] >= at-history })
	return i < len(times) && times[i] < at
}

// addSighting records value at t and returns the value as stored (a copy
// the first time).
func (k *firstKey) addSighting(value string, at, history int64) string {
	j, ok := k.Values.find(value)
	if !ok {
		value = strings.Clone(value)
		k.Values = slices.Insert(k.Values, j, seenValue{Value: value})
	}
	sv := &k.Values[j]
	i := sort.Search(len(sv.Times), func(i int) bool { return sv.Times[i] > at })
	sv.Times = thin(slices.Insert(sv.Times, i, at), history)
	return sv.Value
}

// learnPending tags the pending new values the key has now been seen long
// enough for (and drops those a late sighting showed were not new); it
// returns the evidence of the earliest.
func (k *firstKey) learnPending(lim firstLimits) *evidence {
	var found *evidence
	k.Pending = slices.DeleteFunc(k.Pending, func(p pendingFirst) bool {
		if k.seenWithin(p.Value, p.At, lim.history) {
			return true
		}
		if k.First > p.At-lim.learn {
			return false
		}
		if found == nil {
			found = &evidence{opening: bucketStart(p.At, lim.period)}
		}
		return true
	})
	return found
}

// thin drops the sightings that answer no question the others do not: a
// sighting m between l and r with r-l <= span. "Is there a sighting in
// [t-span, t)" has the same answer for every t without m: for t in
// (m, r], l is in range (l < m < t and t-span <= r-span <= l); past r, r
// answers wherever m did. So each span-long stretch keeps at most a few
// sightings however often a value recurs.
func thin(times []int64, span int64) []int64 {
	out := times[:0]
	for i, t := range times {
		if n := len(out); n >= 1 && i+1 < len(times) && times[i+1]-out[n-1] <= span {
			continue
		}
		out = append(out, t)
	}
	return out
}

// dropOld removes sightings before cutoff (no event at or after the horizon
// asks about them), and identities, pending values and tags of events
// before the horizon. A key left without sightings is emptied, unless its
// rule learns: then when it was first seen still decides whether its next
// value is new, however long it was quiet.
func (k *firstKey) dropOld(horizon, cutoff int64, learns bool) (changed, empty bool) {
	k.Values = slices.DeleteFunc(k.Values, func(sv seenValue) bool {
		n := sort.Search(len(sv.Times), func(i int) bool { return sv.Times[i] >= cutoff })
		changed = changed || n > 0
		return n == len(sv.Times)
	})
	for i := range k.Values {
		sv := &k.Values[i]
		if n := sort.Search(len(sv.Times), func(i int) bool { return sv.Times[i] >= cutoff }); n > 0 {
			sv.Times = slices.Clone(sv.Times[n:])
		}
	}
	before := len(k.Recent) + len(k.Pending) + k.Tags.Len()
	k.Recent = slices.DeleteFunc(k.Recent, func(r idAt) bool { return r.At < horizon })
	k.Pending = slices.DeleteFunc(k.Pending, func(p pendingFirst) bool { return p.At < horizon })
	k.Tags.dropBefore(horizon)
	changed = changed || len(k.Recent)+len(k.Pending)+k.Tags.Len() != before
	return changed, len(k.Values) == 0 && !learns && len(k.Pending) == 0
}

func (k *firstKey) clone() *firstKey {
	c := &firstKey{keyMeta: k.keyMeta, First: k.First, Values: slices.Clone(k.Values),
		Recent: slices.Clone(k.Recent), Pending: slices.Clone(k.Pending), Tags: k.Tags.clone()}
	for i := range c.Values {
		c.Values[i].Times = slices.Clone(c.Values[i].Times)
	}
	return c
}

func expireFirstSeen(sh *firstSeenShard, h horizons, keep retention) {
	sh.expire(h, keep, func(name string, k *firstKey) (bool, bool) {
		horizon := h.of(name)
		return k.dropOld(horizon, horizon-keep.history, keep.learns)
	})
}

// seenValues are a key's values with their sightings, sorted by value: a
// slice, as most keys have a few (a map costs hundreds of bytes per key).
type seenValues []seenValue

type seenValue struct {
	Value string
	Times []int64
}

// find returns the index of value, or where it goes.
func (vs seenValues) find(value string) (int, bool) {
	return slices.BinarySearchFunc(vs, value, func(sv seenValue, v string) int { return strings.Compare(sv.Value, v) })
}

func (vs seenValues) times(value string) []int64 {
	if i, ok := vs.find(value); ok {
		return vs[i].Times
	}
	return nil
}

// MarshalJSON and UnmarshalJSON keep the JSON of snapshots and entries
// written before (an object by value).
func (vs seenValues) MarshalJSON() ([]byte, error) {
	m := make(map[string][]int64, len(vs))
	for _, sv := range vs {
		m[sv.Value] = sv.Times
	}
	return json.Marshal(m)
}

func (vs *seenValues) UnmarshalJSON(b []byte) error {
	var m map[string][]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*vs = (*vs)[:0]
	for v, times := range m {
		*vs = append(*vs, seenValue{Value: v, Times: times})
	}
	slices.SortFunc(*vs, func(a, b seenValue) int { return strings.Compare(a.Value, b.Value) })
	return nil
}
