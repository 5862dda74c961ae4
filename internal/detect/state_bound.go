package detect

import (
	"iter"
	"maps"
	"sync"
	"sync/atomic"
)

// Detection state is bounded: a rule holding more than max_state_keys keys
// (all kinds together: threshold groups, dedup keys, remembered values,
// sequences, first_seen keys, absences) loses the keys least recently
// updated.
//
// "Least recently updated" is approximated as Redis does: each key carries
// the engine's event count at its last update (a uint32, compared with
// wrap-around), and an eviction removes the oldest of a sample: every key
// while the rule holds at most exactScan keys (so small states evict in
// exact LRU order), otherwise evictSample keys from each kind of
// evictShards shards, the shards taken in turn. The bound itself is exact:
// after each event a rule holds at most max_state_keys keys (threads
// evaluating concurrently may each hold one more key for the instant
// between creating it and evicting). A snapshot keeps each key's age, so a
// restored state evicts in the order it would have; keys restored from a
// changelog or journal are stamped with the clock at restore (they are the
// latest changes), so they go before keys updated since.

const (
	exactScan   = 4096
	evictShards = 8
	evictSample = 5
)

// DefaultMaxStateKeys is max_state_keys' default.
const DefaultMaxStateKeys = 1_000_000

// keyMeta is what every state key carries besides its state: its name (a
// copy, never the event's bytes) and the clock of its last update.
type keyMeta struct {
	name    string
	touched uint32
}

func (m *keyMeta) meta() *keyMeta { return m }

// keyPtr is a pointer to a state key type (countKey, seqKey, …).
type keyPtr[T any] interface {
	*T
	meta() *keyMeta
}

// keyBook counts one rule's keys and bounds them.
type keyBook struct {
	keys  atomic.Int64
	clock *atomic.Uint64 // the engine's event count
	max   int64          // 0: unbounded

	evictMu  sync.Mutex
	cursor   int   // the next shard sampled
	reported int64 // keys last reported to Hooks.StateKeys
}

func (b *keyBook) now() uint32 {
	if b.clock == nil {
		return 0
	}
	return uint32(b.clock.Load())
}

// victim is the oldest key a sample found.
type victim struct {
	found bool
	age   uint32
	kind  byte
	shard int
	key   string
}

func (v *victim) consider(kind byte, shard int, key string, touched, now uint32) {
	if age := now - touched; !v.found || age > v.age {
		*v = victim{found: true, age: age, kind: kind, shard: shard, key: key}
	}
}

// enforceBound evicts keys while the rule holds more than its bound, and
// returns how many it evicted.
func (s *ruleState) enforceBound() int {
	b := s.book
	if b.max <= 0 || b.keys.Load() <= b.max {
		return 0
	}
	b.evictMu.Lock()
	defer b.evictMu.Unlock()
	n := 0
	for b.keys.Load() > b.max {
		v := s.oldestKey()
		if !v.found {
			break
		}
		if s.evict(v) {
			n++
		}
	}
	return n
}

// oldestKey samples the rule's keys (see above). b.evictMu must be held.
func (s *ruleState) oldestKey() victim {
	b := s.book
	var v victim
	now := b.now()
	shards, per := evictShards, evictSample
	if b.keys.Load() <= exactScan {
		shards, per = stateShards, -1
	}
	for range shards {
		i := b.cursor
		b.cursor = (b.cursor + 1) % stateShards
		sampleShard(&s.threshold[i], entryThreshold, i, per, now, &v)
		sampleShard(&s.sequence[i], entrySequence, i, per, now, &v)
		sampleShard(&s.firstSeen[i], entryFirstSeen, i, per, now, &v)
		sampleShard(&s.absence.shards[i].keyShard, entryAbsence, i, per, now, &v)
		s.dedup[i].sample(i, per, now, &v)
		s.previous[i].sample(i, per, now, &v)
	}
	return v
}

func sampleShard[T any, P keyPtr[T]](sh *keyShard[T, P], kind byte, i, per int, now uint32, v *victim) {
	sample(&sh.mu, maps.All(sh.keys), func(k *T) uint32 { return P(k).meta().touched }, kind, i, per, now, v)
	sample(&sh.mu, sh.frozen.All(), frozenTouched, kind, i, per, now, v)
}

func (sh *dedupShard) sample(i, per int, now uint32, v *victim) {
	sample(&sh.mu, maps.All(sh.openings), func(k dedupKey) uint32 { return k.touched }, entryDedup, i, per, now, v)
}

func (sh *previousShard) sample(i, per int, now uint32, v *victim) {
	sample(&sh.mu, sh.values.All(), prevTouched, entryPrevious, i, per, now, v)
}

// sample considers up to per keys of all (all: per < 0) under mu; Go's
// maps and packedMaps range from a random place.
func sample[V any](mu *sync.Mutex, all iter.Seq2[string, V], touched func(V) uint32, kind byte, i, per int, now uint32, v *victim) {
	mu.Lock()
	defer mu.Unlock()
	for name, x := range all {
		if per == 0 {
			return
		}
		per--
		v.consider(kind, i, name, touched(x), now)
	}
}

// evict deletes the victim (gone meanwhile: false) and marks it changed,
// so that the changelog and the journal delete it too.
func (s *ruleState) evict(v victim) bool {
	switch v.kind {
	case entryThreshold:
		return evictKey(&s.threshold[v.shard], v.key)
	case entrySequence:
		return evictKey(&s.sequence[v.shard], v.key)
	case entryFirstSeen:
		return evictKey(&s.firstSeen[v.shard], v.key)
	case entryAbsence:
		return evictKey(&s.absence.shards[v.shard].keyShard, v.key)
	case entryDedup:
		sh := &s.dedup[v.shard]
		return evictWith(&sh.mu, func(k string) bool {
			_, ok := sh.openings[k]
			delete(sh.openings, k)
			return ok
		}, v.key, sh.dirty, s.book)
	case entryPrevious:
		sh := &s.previous[v.shard]
		return evictWith(&sh.mu, sh.values.Delete, v.key, sh.dirty, s.book)
	}
	return false
}

// evictWith deletes key with remove under mu, marking it changed.
func evictWith(mu *sync.Mutex, remove func(string) bool, key string, dirty dirtyKeys, book *keyBook) bool {
	mu.Lock()
	defer mu.Unlock()
	if !remove(key) {
		return false
	}
	book.keys.Add(-1)
	dirty.mark(key)
	return true
}

func evictKey[T any, P keyPtr[T]](sh *keyShard[T, P], key string) bool {
	return evictWith(&sh.mu, sh.remove, key, sh.dirty, sh.book)
}

// keysDelta returns how the rule's key count changed since the last call.
func (s *ruleState) keysDelta() int64 {
	s.book.evictMu.Lock()
	defer s.book.evictMu.Unlock()
	n := s.book.keys.Load()
	d := n - s.book.reported
	s.book.reported = n
	return d
}

func (e *Engine) reportEvictions(r activeRule, n int) {
	if e.hooks.Evicted != nil {
		e.hooks.Evicted(r.ID, n)
	}
	e.reportKeys(r)
}

func (e *Engine) reportKeys(r activeRule) {
	if e.hooks.StateKeys == nil {
		return
	}
	if d := r.state.keysDelta(); d != 0 {
		e.hooks.StateKeys(r.ID, d)
	}
}

// ReleaseState reports every rule's keys as gone (Hooks.StateKeys), for an
// engine its owner drops (a partition released).
func (e *Engine) ReleaseState() {
	for _, r := range e.active.Load().rules {
		e.releaseKeys(r)
	}
}

// releaseDropped reports the keys of the rules a swap dropped (removed, or
// changed: their state starts again) as gone.
func (e *Engine) releaseDropped(prev, next *activeSet) {
	kept := map[*ruleState]bool{}
	for _, r := range next.rules {
		kept[r.state] = true
	}
	for _, r := range prev.rules {
		if !kept[r.state] {
			e.releaseKeys(r)
		}
	}
}

func (e *Engine) releaseKeys(r activeRule) {
	if e.hooks.StateKeys == nil {
		return
	}
	b := r.state.book
	b.evictMu.Lock()
	n := b.reported
	b.reported = 0
	b.evictMu.Unlock()
	if n != 0 {
		e.hooks.StateKeys(r.ID, -n)
	}
}
