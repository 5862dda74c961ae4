package detect

import (
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Times in state are event `published` times in Unix nanoseconds.

// stateShards spreads keys over independent locks so that Benthos'
// processor threads rarely contend.
const stateShards = 32

var shardSeed = maphash.MakeSeed()

func shardOf(key string) int {
	return int(maphash.String(shardSeed, key) % stateShards)
}

// ruleState is everything one rule remembers. It survives hot reloads while
// the rule file is unchanged, and is what snapshots hold.
type ruleState struct {
	book      *keyBook // key count, clock and bound (state_bound.go)
	threshold [stateShards]thresholdShard
	dedup     [stateShards]dedupShard
	previous  [stateShards]previousShard
	sequence  [stateShards]sequenceShard
	firstSeen [stateShards]firstSeenShard
	absence   absenceState
	// gates are those of each kind of state (entryKinds' order), below
	// its shards' gates: a sweep passes over a kind whose shards hold
	// nothing due without visiting them.
	gates [len(entryKinds)]sweepGate
}

// newRuleState makes empty state; with track, the keys each change touches
// are recorded for the changelog (see state_entries.go). clock stamps
// updates (the engine's event count), maxKeys bounds the keys (0: no bound).
func newRuleState(track bool, clock *atomic.Uint64, maxKeys int64) *ruleState {
	s := &ruleState{book: &keyBook{clock: clock, max: maxKeys}}
	for i := range stateShards {
		s.threshold[i].init(s.book, countCodec, countCodec.due, s.kindGate(entryThreshold))
		s.dedup[i].openings = map[string]dedupKey{}
		s.dedup[i].book = s.book
		s.dedup[i].gate.up = s.kindGate(entryDedup)
		s.dedup[i].gate.lower(minTime)
		s.previous[i].book = s.book
		s.previous[i].gate.up = s.kindGate(entryPrevious)
		s.previous[i].gate.lower(minTime)
		s.sequence[i].init(s.book, seqCodec, seqCodec.due, s.kindGate(entrySequence))
		s.firstSeen[i].init(s.book, firstCodec, firstCodec.due, s.kindGate(entryFirstSeen))
		s.absence.shards[i].init(s.book, nil, (*absKey).due, s.kindGate(entryAbsence))
		if track {
			s.threshold[i].dirty = dirtyKeys{}
			s.dedup[i].dirty = dirtyKeys{}
			s.previous[i].dirty = dirtyKeys{}
			s.sequence[i].dirty = dirtyKeys{}
			s.firstSeen[i].dirty = dirtyKeys{}
			s.absence.shards[i].dirty = dirtyKeys{}
		}
	}
	return s
}

// keyShard holds one kind of per-key state for the keys hashed to it:
// live keys, and idle ones frozen (state_frozen.go) when the kind has a
// codec.
type keyShard[T any, P keyPtr[T]] struct {
	mu      sync.Mutex
	keys    map[string]*T
	frozen  packedMap
	codec   *frozenCodec[T] // nil: never frozen
	due     func(*T, retention) int64
	gate    sweepGate
	scratch []byte // freeze's encoding buffer
	dirty   dirtyKeys
	book    *keyBook
}

// init readies a shard of keys whose due times due gives; codec freezes
// them (nil: never frozen); up is the gate of their kind.
func (sh *keyShard[T, P]) init(book *keyBook, codec *frozenCodec[T], due func(*T, retention) int64, up *sweepGate) {
	sh.keys = map[string]*T{}
	sh.book = book
	sh.codec = codec
	sh.due = due
	sh.gate.up = up
	sh.gate.lower(minTime)
}

// sweepGate lets an expiry sweep pass over a shard that holds nothing the
// sweep could change, instead of visiting every key of every rule at every
// step of event time: it is a lower bound of the due times of the shard's
// keys (the earliest horizon at which a sweep changes a key), lowered as
// keys change and set exactly by each sweep of the shard.
//
// Keys change only under their shard's lock, which is where the gate is
// lowered; a sweep reads it without the lock. A sweep that passes a shard
// just before a concurrent change lowers the gate is one that ran before
// the change, which the lock allows too.
//
// A shard's gate has the gate of its kind of state above it (up), never
// later than any of the kind's shards: it is lowered with them, and
// reckoned again from them by each sweep of the kind (sweepKind).
type sweepGate struct {
	next atomic.Int64
	up   *sweepGate
}

// lower makes the gate open by horizon due. The shard must be locked.
func (g *sweepGate) lower(due int64) {
	if due < g.next.Load() {
		g.next.Store(due)
		g.up.lowerShared(due)
	}
}

// lowerShared lowers a gate that shards lock apart share.
func (g *sweepGate) lowerShared(due int64) {
	if g == nil {
		return
	}
	for cur := g.next.Load(); due < cur && !g.next.CompareAndSwap(cur, due); cur = g.next.Load() {
	}
}

// sweepKind sweeps the shards of one kind of state, unless its gate shows
// none holds anything due, and reckons the kind's gate from theirs. A shard
// lowered meanwhile lowers the kind's gate too, before or after it is
// reckoned. Sweeps must not run concurrently (Engine.sweepMu).
func sweepKind(kind *sweepGate, top int64, sweep func(i int) *sweepGate) {
	if kind.closed(top) {
		return
	}
	kind.next.Store(math.MaxInt64)
	for i := range stateShards {
		kind.lowerShared(sweep(i).next.Load())
	}
}

func (s *ruleState) kindGate(kind byte) *sweepGate {
	return &s.gates[strings.IndexByte(entryKinds, kind)]
}

// closed reports that a sweep at horizons no later than top changes
// nothing in the shard.
func (g *sweepGate) closed(top int64) bool { return top < g.next.Load() }

// get returns the state of key, made by create (given a copy of the key
// that state may keep: keys may point into an event's bytes) the first
// time, and stamps it as updated now, by an event at time at. The shard
// must be locked.
//
// Whatever an event adds to a key is stamped with its time or comes with a
// later due time, so no key it changes is due before at: the shard's gate
// opens at at.
func (sh *keyShard[T, P]) get(key string, at int64, create func(name string) *T) *T {
	sh.gate.lower(at)
	v := sh.lookup(key)
	if v == nil {
		name := strings.Clone(key)
		v = create(name)
		sh.keys[name] = v
		sh.book.keys.Add(1)
	}
	P(v).meta().touched = sh.book.now()
	return v
}

// expire applies drop to every key under the shard's lock, deleting the keys
// it empties and marking those it changes. Frozen keys are decoded only
// when horizons h have reached their due time (retention keep).
func (sh *keyShard[T, P]) expire(h horizons, keep retention, drop func(name string, v *T) (changed, empty bool)) {
	if sh.gate.closed(h.top) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	next := int64(math.MaxInt64)
	for name, v := range sh.keys {
		changed, empty := drop(name, v)
		if empty {
			delete(sh.keys, name)
			sh.book.keys.Add(-1)
		} else {
			next = min(next, sh.due(v, keep))
		}
		if changed {
			sh.dirty.mark(name)
		}
	}
	next = min(next, sh.expireFrozen(h, keep, drop))
	sh.gate.next.Store(next)
}

// dirtyKeys are the keys of a shard changed since the changes were last
// taken; nil when changes are not tracked.
type dirtyKeys map[string]struct{}

func (d dirtyKeys) mark(key string) {
	if d != nil {
		d[key] = struct{}{}
	}
}

// dedupShard holds, per dedup key, the sorted opening times of its alerts.
type dedupShard struct {
	mu       sync.Mutex
	openings map[string]dedupKey
	gate     sweepGate
	dirty    dirtyKeys
	book     *keyBook
}

// dedupKey is the opening times of one dedup key's alerts, and when the
// key was last updated (keyMeta.touched).
type dedupKey struct {
	times   []int64
	touched uint32
}

// assign returns the opening time of the alert a tagged event at t belongs
// to, opening a new alert when none covers t.
//
// In time order this is exactly "an alert opens at the first tagged event
// and lasts period". An event arriving late, before an alert opened less
// than period after it, joins that alert: ids already emitted cannot be
// renamed, and both events belong to the same burst.
func (s *ruleState) assign(key string, t, period int64) int64 {
	sh := &s.dedup[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	dk, ok := sh.openings[key]
	opens := dk.times
	if !ok {
		key = strings.Clone(key) // keys may point into an event's bytes
	}
	i := sort.Search(len(opens), func(i int) bool { return opens[i] > t })
	if i > 0 && t < opens[i-1]+period {
		return opens[i-1]
	}
	if i < len(opens) && opens[i]-t < period {
		return opens[i]
	}
	sh.openings[key] = dedupKey{times: slices.Insert(opens, i, t), touched: sh.book.now()}
	sh.gate.lower(t + period)
	if !ok {
		sh.book.keys.Add(1)
	}
	sh.dirty.mark(key)
	return t
}

// previousShard holds, per key, the latest remembered value by event time
// and the recent values it replaced, each in its compact encoding
// (state_codec.go: a fraction of the Go maps it decodes to, decoded when an
// event looks it up), held in a packedMap (state_previous.go).
type previousShard struct {
	mu     sync.Mutex
	values packedMap
	gate   sweepGate
	dirty  dirtyKeys
	book   *keyBook
}

// remembered is a remembered value in JSON snapshots (versions 1 and 2).
type remembered struct {
	At    int64 `json:"at"`
	Value any   `json:"value"`
}

// lockPrevious locks the key's shard for the read–evaluate–remember
// sequence, so that concurrent events of one key see a consistent order.
func (s *ruleState) lockPrevious(key string) *previousShard {
	sh := &s.previous[shardOf(key)]
	sh.mu.Lock()
	return sh
}

// retention says how long, in event time, each kind of entry must be kept.
type retention struct {
	window, period, ttl int64
	within              int64 // sequence.within
	history             int64 // first_seen.history
	learns              bool  // first_seen.learn is set
}

// expire frees entries no event at or after horizon can still need:
// threshold times at or before horizon-window, alert openings at or before
// horizon-period, remembered values older than horizon-ttl, and the
// entries of sequences, first sightings and absences (state_*.go).
func (s *ruleState) expire(h horizons, keep retention, span sweepSpan) {
	// Kinds whose keys fall due only a retention after their times are
	// swept at the cadence of that retention; the others, whose entries
	// can fall due at their own time, at every step.
	if span.crosses(keep.window) {
		sweepKind(s.kindGate(entryThreshold), h.top, func(i int) *sweepGate {
			expireThreshold(&s.threshold[i], h, keep)
			return &s.threshold[i].gate
		})
	}
	if span.crosses(keep.period) {
		sweepKind(s.kindGate(entryDedup), h.top, func(i int) *sweepGate {
			expireDedup(&s.dedup[i], h, keep.period)
			return &s.dedup[i].gate
		})
	}
	if span.crosses(keep.ttl) {
		sweepKind(s.kindGate(entryPrevious), h.top, func(i int) *sweepGate {
			expirePrevious(&s.previous[i], h, keep.ttl)
			return &s.previous[i].gate
		})
	}
	sweepKind(s.kindGate(entrySequence), h.top, func(i int) *sweepGate {
		expireSequences(&s.sequence[i], h, keep)
		return &s.sequence[i].gate
	})
	sweepKind(s.kindGate(entryFirstSeen), h.top, func(i int) *sweepGate {
		expireFirstSeen(&s.firstSeen[i], h, keep)
		return &s.firstSeen[i].gate
	})
	sweepKind(s.kindGate(entryAbsence), h.top, func(i int) *sweepGate {
		expireAbsences(&s.absence.shards[i], h)
		return &s.absence.shards[i].gate
	})
}

func expireDedup(sh *dedupShard, h horizons, period int64) {
	if sh.gate.closed(h.top) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	next := int64(math.MaxInt64)
	for k, dk := range sh.openings {
		cutoff := h.of(k) - period
		times := dk.times
		i := sort.Search(len(times), func(i int) bool { return times[i] > cutoff })
		switch {
		case i == len(times):
			delete(sh.openings, k)
			sh.book.keys.Add(-1)
			sh.dirty.mark(k)
			continue
		case i > 0: // the kept tail is copied so the dropped head can be freed
			sh.openings[k] = dedupKey{times: slices.Clone(times[i:]), touched: dk.touched}
			sh.dirty.mark(k)
		}
		next = min(next, times[i]+period)
	}
	sh.gate.next.Store(next)
}

func expirePrevious(sh *previousShard, h horizons, ttl int64) {
	if sh.gate.closed(h.top) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	next := int64(math.MaxInt64)
	for k, r := range sh.values.All() {
		at := prevOf(r).at
		if at < h.of(k)-ttl {
			sh.values.Delete(k)
			sh.book.keys.Add(-1)
			sh.dirty.mark(k)
			continue
		}
		// Dropped once the horizon passes at+ttl.
		next = min(next, at+ttl+1)
	}
	sh.values.tidy(0)
	sh.gate.next.Store(next)
}

// size counts entries, for tests and debugging.
func (s *ruleState) size() (times, openings, values int) {
	for i := range stateShards {
		s.threshold[i].mu.Lock()
		for _, k := range s.threshold[i].keys {
			times += len(k.At)
		}
		for name, v := range s.threshold[i].frozen.All() {
			times += len(s.threshold[i].decodeFrozen(name, v).At)
		}
		s.threshold[i].mu.Unlock()
		s.dedup[i].mu.Lock()
		for _, o := range s.dedup[i].openings {
			openings += len(o.times)
		}
		s.dedup[i].mu.Unlock()
		s.previous[i].mu.Lock()
		values += s.previous[i].values.Len()
		s.previous[i].mu.Unlock()
	}
	return times, openings, values
}
