package detect

import (
	"container/heap"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"sync"
)

// noDeadline: no absence is waiting to fire.
const noDeadline = math.MaxInt64

// absenceState holds an absence rule's expectations, and per org the
// earliest time one of them may fire, so that each event checks one number.
//
// An expectation fires by its own org's event time (watermark_org.go), not
// by the newest event of any org: an org whose poller is catching up a
// backlog runs hours behind the others, and the closing events of its
// expectations are still to come. Firing them by another org's progress
// would invent alerts, and make the tags depend on how orgs interleave.
type absenceState struct {
	shards [stateShards]absenceShard
	nextMu sync.RWMutex
	next   map[string]int64 // org ("" unscoped) → earliest deadline of an open expectation; absent: none
}

// absenceShard holds the expectations of its keys, and their deadlines in
// a heap per org (entries of expectations closed since are skipped when
// popped).
type absenceShard struct {
	keyShard[absKey, *absKey]
	due map[string]*deadlines // org of the keys → their deadlines
}

// nextOf is the earliest deadline of org's open expectations.
func (s *absenceState) nextOf(org string) int64 {
	s.nextMu.RLock()
	defer s.nextMu.RUnlock()
	if d, ok := s.next[org]; ok {
		return d
	}
	return noDeadline
}

// lower makes d org's earliest deadline if it is earlier. org must not
// point into an event's bytes: it may become a map key.
func (s *absenceState) lower(org string, d int64) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	if cur, ok := s.next[org]; !ok || d < cur {
		if s.next == nil {
			s.next = map[string]int64{}
		}
		s.next[org] = d
	}
}

// push queues key's deadline d in the heap of its org.
func (sh *absenceShard) push(key string, d int64) string {
	org, _ := scopedOrg(key)
	h := sh.due[org]
	if h == nil {
		if sh.due == nil {
			sh.due = map[string]*deadlines{}
		}
		h = &deadlines{}
		sh.due[org] = h
	}
	heap.Push(h, deadline{at: d, key: key})
	return org
}

// absKey is one `by` key of an absence rule: its expectations in time
// order (open, or closed/fired kept without their event until they expire,
// so that a re-delivered opening event does not open them again), and the
// times of its closing events (thinned as first_seen's sightings are).
type absKey struct {
	keyMeta
	Open    []expectation `json:"o,omitempty"`
	Closers []int64       `json:"c,omitempty"`
}

// expectation states.
const (
	expectOpen   = 0
	expectClosed = 1
	expectFired  = 2
)

// expectation is an opening event waiting for its closing event: its
// bytes, metadata and detection are what fires.
type expectation struct {
	At    int64           `json:"t"`
	ID    uint64          `json:"i,omitempty"`
	State int             `json:"s,omitempty"`
	Raw   json.RawMessage `json:"raw,omitempty"`
	Meta  []MetaField     `json:"meta,omitempty"`
	Det   *Detection      `json:"det,omitempty"`
}

// absLimits are an absence rule's numbers, in event-time nanoseconds.
type absLimits struct {
	within, grace int64
}

func (l absLimits) deadline(at int64) int64 { return at + l.within + l.grace }

// open records an expectation (its event and detection already copied)
// unless one with the same identity exists; a closing event already seen
// in (at, at+within] closes it at once.
func (s *absenceState) open(key string, x expectation, lim absLimits) {
	sh := &s.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := sh.get(key, x.At, newAbsKey)
	i := sort.Search(len(k.Open), func(i int) bool { return k.Open[i].At >= x.At })
	for j := i; x.ID != 0 && j < len(k.Open) && k.Open[j].At == x.At; j++ {
		if k.Open[j].ID == x.ID {
			return // re-delivered
		}
	}
	sh.dirty.mark(k.name)
	if c := sort.Search(len(k.Closers), func(c int) bool { return k.Closers[c] > x.At }); c < len(k.Closers) && k.Closers[c] <= x.At+lim.within {
		x = expectation{At: x.At, ID: x.ID, State: expectClosed}
	}
	k.Open = slices.Insert(k.Open, i, x)
	if x.State == expectOpen {
		d := lim.deadline(x.At)
		s.lower(sh.push(k.name, d), d)
	}
}

// close records a closing event at and closes the open expectations it
// closes: those opened in [at-within, at).
func (s *absenceState) close(key string, at int64, lim absLimits) {
	sh := &s.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := sh.get(key, at, newAbsKey)
	sh.dirty.mark(k.name)
	i := sort.Search(len(k.Closers), func(i int) bool { return k.Closers[i] > at })
	k.Closers = thin(slices.Insert(k.Closers, i, at), lim.within)
	for j := sort.Search(len(k.Open), func(j int) bool { return k.Open[j].At >= at-lim.within }); j < len(k.Open) && k.Open[j].At < at; j++ {
		if k.Open[j].State == expectOpen {
			k.Open[j] = expectation{At: k.Open[j].At, ID: k.Open[j].ID, State: expectClosed}
			sh.gate.lower(k.Open[j].At + 1) // dropOld drops it from then on, before at
		}
	}
}

func newAbsKey(name string) *absKey { return &absKey{keyMeta: keyMeta{name: name}} }

// fire takes the open expectations of org ("" for unscoped keys) whose
// deadline is before watermark, that org's event time: each fires once.
func (s *absenceState) fire(org string, watermark int64, lim absLimits) []expectation {
	if watermark <= s.nextOf(org) {
		return nil
	}
	// Forget org's earliest deadline before the shards are scanned: an
	// expectation opened meanwhile lowers it again, whether its shard was
	// scanned already or not.
	s.nextMu.Lock()
	delete(s.next, org)
	s.nextMu.Unlock()
	var out []expectation
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if h := sh.due[org]; h != nil {
			for len(*h) > 0 && (*h)[0].at < watermark {
				d := heap.Pop(h).(deadline)
				out = sh.fireKey(d.key, watermark, lim, out)
			}
			if len(*h) > 0 {
				// The org of a stored key: the event's may point into its bytes.
				stored, _ := scopedOrg((*h)[0].key)
				s.lower(stored, (*h)[0].at)
			} else {
				delete(sh.due, org)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

func (sh *absenceShard) fireKey(key string, watermark int64, lim absLimits, out []expectation) []expectation {
	k := sh.keys[key]
	if k == nil {
		return out
	}
	for j := range k.Open {
		x := &k.Open[j]
		if x.State != expectOpen || lim.deadline(x.At) >= watermark {
			continue
		}
		out = append(out, *x)
		*x = expectation{At: x.At, ID: x.ID, State: expectFired}
		sh.gate.lower(x.At + 1) // dropOld drops it from then on
		sh.dirty.mark(k.name)
	}
	return out
}

// dropOld removes closing events at or before horizon (an opening at or
// after it needs later ones) and closed or fired expectations before it;
// open ones stay until they fire.
func (k *absKey) dropOld(horizon int64) (changed, empty bool) {
	if n := sort.Search(len(k.Closers), func(i int) bool { return k.Closers[i] > horizon }); n > 0 {
		k.Closers = slices.Clone(k.Closers[n:])
		changed = true
	}
	before := len(k.Open)
	k.Open = slices.DeleteFunc(k.Open, func(x expectation) bool { return x.State != expectOpen && x.At < horizon })
	changed = changed || len(k.Open) != before
	return changed, len(k.Open) == 0 && len(k.Closers) == 0
}

// due: an absence key changes when its earliest closing event falls at or
// behind the horizon, or a closed or fired expectation behind it
// (dropOld). Open expectations change only as they fire (fireKey).
func (k *absKey) due(retention) int64 {
	due := int64(math.MaxInt64)
	if len(k.Closers) > 0 {
		due = k.Closers[0]
	}
	for _, x := range k.Open { // sorted by time: the first one not open
		if x.State != expectOpen {
			due = min(due, x.At+1)
			break
		}
	}
	return due
}

func (k *absKey) clone() *absKey {
	return &absKey{keyMeta: k.keyMeta, Open: slices.Clone(k.Open), Closers: slices.Clone(k.Closers)}
}

func expireAbsences(sh *absenceShard, h horizons) {
	sh.expire(h, retention{}, func(name string, k *absKey) (bool, bool) { return k.dropOld(h.of(name)) })
}

// restoreDeadlines rebuilds the heaps after a restore.
func (s *absenceState) restoreDeadlines(lim absLimits) {
	s.nextMu.Lock()
	clear(s.next)
	s.nextMu.Unlock()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		clear(sh.due)
		for _, k := range sh.keys {
			for _, x := range k.Open {
				if x.State == expectOpen {
					d := lim.deadline(x.At)
					s.lower(sh.push(k.name, d), d)
				}
			}
		}
		sh.mu.Unlock()
	}
}

// deadline is when an expectation of key may fire.
type deadline struct {
	at  int64
	key string
}

// deadlines is a min-heap by time (container/heap).
type deadlines []deadline

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at < d[j].at }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(deadline)) }
func (d *deadlines) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}
