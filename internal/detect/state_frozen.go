package detect

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// Idle keys are kept frozen: encoded in the compact form of snapshots
// (state_codec.go) as one string, instead of a struct with a slice per
// list. Most keys of a large org hold one or two events and are not
// touched again for a long time (a user signs in, fails once, moves on);
// live, such a threshold group costs some 330 bytes, frozen about 100.
//
// A key untouched for freezeEvery events is frozen by the pass that runs
// every freezeEvery events; the next event that needs it thaws it (one
// decode). Expiry sweeps skip a frozen key until event time reaches the
// horizon at which it can change (its due time, stored beside it), so a
// sweep decodes only the keys that expire. Snapshots write frozen keys as
// they are, and restores keep them frozen: restoring allocates little
// more than the snapshot's size.
//
// Freezing changes how a key is held, never what it holds: tags, counts
// and ids are the same whether a key was frozen or not.
const freezeEvery = 1 << 13

// frozenCodec is how one kind of key is frozen.
type frozenCodec[T any] struct {
	encode func(*encoder, *T)
	decode func(*decoder) *T
	// due is the earliest horizon at which an expiry sweep can change the
	// key (dropping its events, tags or values), given the rule's
	// retention; minTime when unknown (it is checked at every sweep).
	due func(*T, retention) int64
}

var (
	countCodec = &frozenCodec[countKey]{encode: encodeCount, decode: decodeCount, due: (*countKey).due}
	seqCodec   = &frozenCodec[seqKey]{encode: encodeSeq, decode: decodeSeq, due: (*seqKey).due}
	firstCodec = &frozenCodec[firstKey]{encode: encodeFirst, decode: decodeFirst, due: (*firstKey).due}
)

// A frozen value: touched (4 bytes), due (8 bytes), the entry's body,
// held in the shard's packedMap.
const frozenHead = 12

// setFrozen stores key's frozen entry.
func (sh *keyShard[T, P]) setFrozen(key string, touched uint32, due int64, body []byte) {
	b, _ := sh.frozen.Put(key, frozenHead+len(body))
	binary.LittleEndian.PutUint32(b, touched)
	binary.LittleEndian.PutUint64(b[4:], uint64(due))
	copy(b[frozenHead:], body)
}

func frozenTouched(v string) uint32 { return binary.LittleEndian.Uint32(stringBytes(v[:4])) }
func frozenDue(v string) int64 {
	return int64(binary.LittleEndian.Uint64(stringBytes(v[4:frozenHead])))
}
func frozenBody(v string) []byte { return stringBytes(v[frozenHead:]) }

// freeze stores v, the state of name, frozen.
func (sh *keyShard[T, P]) freeze(name string, v *T, keep retention) {
	e := encoder{b: sh.scratch[:0]}
	sh.codec.encode(&e, v)
	sh.setFrozen(name, P(v).meta().touched, sh.codec.due(v, keep), e.b)
	if cap(e.b) <= 64<<10 { // one huge group's buffer is not kept
		sh.scratch = e.b
	}
}

// decodeFrozen decodes a frozen value of the key name. The shard encoded
// it itself, so an error is a bug, not bad input.
func (sh *keyShard[T, P]) decodeFrozen(name, v string) *T {
	d := decoder{b: frozenBody(v), format: entryFormat}
	k := sh.codec.decode(&d)
	if err := d.end(); err != nil {
		panic(fmt.Sprintf("detect: frozen state of key %q does not decode: %v", name, err))
	}
	P(k).meta().name = name
	P(k).meta().touched = frozenTouched(v)
	return k
}

// thaw moves key's frozen state, if any, back among the live keys and
// returns it. The shard must be locked.
func (sh *keyShard[T, P]) thaw(key string) *T {
	v, ok := sh.frozen.Get(key)
	if !ok {
		return nil
	}
	name := strings.Clone(key)
	k := sh.decodeFrozen(name, v)
	sh.frozen.Delete(key)
	sh.keys[name] = k
	return k
}

// lookup returns key's state, live or thawed; nil when it has none. The
// shard must be locked.
func (sh *keyShard[T, P]) lookup(key string) *T {
	if v := sh.keys[key]; v != nil {
		return v
	}
	return sh.thaw(key)
}

// peek returns key's state without thawing it (a frozen key is decoded
// into a copy). The shard must be locked.
func (sh *keyShard[T, P]) peek(key string) (*T, bool) {
	if v, ok := sh.keys[key]; ok {
		return v, true
	}
	if v, ok := sh.frozen.Get(key); ok {
		return sh.decodeFrozen(key, v), true
	}
	return nil, false
}

// count is the number of keys, live and frozen. The shard must be locked.
func (sh *keyShard[T, P]) count() int { return len(sh.keys) + sh.frozen.Len() }

// remove deletes key, live or frozen, and reports whether it was there.
// The shard must be locked.
func (sh *keyShard[T, P]) remove(key string) bool {
	if _, ok := sh.keys[key]; ok {
		delete(sh.keys, key)
		return true
	}
	return sh.frozen.Delete(key)
}

// freezeIdle freezes every rule's keys idle for e.freezeAfter events.
func (e *Engine) freezeIdle() {
	for _, r := range e.active.Load().rules {
		r.state.freezeIdle(uint32(e.freezeAfter), r.retention())
	}
}

func (s *ruleState) freezeIdle(idle uint32, keep retention) {
	now := s.book.now()
	for i := range stateShards {
		s.threshold[i].freezeIdle(now, idle, keep)
		s.sequence[i].freezeIdle(now, idle, keep)
		s.firstSeen[i].freezeIdle(now, idle, keep)
	}
}

// freezeIdle freezes the live keys untouched for at least idle events
// (now: the clock).
func (sh *keyShard[T, P]) freezeIdle(now, idle uint32, keep retention) {
	if sh.codec == nil {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for name, v := range sh.keys {
		if now-P(v).meta().touched < idle {
			continue
		}
		delete(sh.keys, name)
		sh.freeze(name, v, keep)
	}
}

// restoreFrozen keeps a restored entry's body (current format) frozen, as
// touched now, its due time unknown until the next sweep. It reports
// whether the key is new. The shard must be locked.
func (sh *keyShard[T, P]) restoreFrozen(key string, body []byte, touched uint32) bool {
	sh.gate.lower(minTime)
	had := sh.remove(key)
	sh.setFrozen(key, touched, minTime, body)
	return !had
}

// expireFrozen applies drop to the frozen keys a sweep at horizons h can
// change (due at or before their horizon), deleting those it empties and
// freezing again, with their new due time, those it changes. It returns
// the earliest due time of the frozen keys left.
func (sh *keyShard[T, P]) expireFrozen(h horizons, keep retention, drop func(name string, v *T) (changed, empty bool)) int64 {
	next := int64(math.MaxInt64)
	var refreeze []*T // frozen again after the loop, which must not see them again
	for name, v := range sh.frozen.All() {
		if h.of(name) < frozenDue(v) {
			next = min(next, frozenDue(v))
			continue
		}
		k := sh.decodeFrozen(name, v)
		changed, empty := drop(name, k)
		switch {
		case empty:
			sh.frozen.Delete(name)
			sh.book.keys.Add(-1)
		case changed || frozenDue(v) == minTime:
			refreeze = append(refreeze, k)
		default:
			next = min(next, frozenDue(v))
		}
		if changed {
			sh.dirty.mark(name)
		}
	}
	sh.frozen.tidy(0) // an arena emptied by the sweep is freed now, not at the next write
	for _, k := range refreeze {
		sh.freeze(P(k).meta().name, k, keep)
		next = min(next, sh.codec.due(k, keep))
	}
	return next
}

// due: a threshold group changes when its earliest event or tag leaves the
// window behind the horizon (dropUpTo(horizon - window)).
func (k *countKey) due(keep retention) int64 {
	t := int64(math.MaxInt64)
	if len(k.At) > 0 {
		t = k.At[0]
	}
	if at, ok := k.Tags.firstAt(); ok {
		t = min(t, at)
	}
	if t == math.MaxInt64 {
		return minTime
	}
	return t + keep.window
}

// due: a sequence changes when a step event or tag leaves `within` behind
// the horizon, or a final event falls behind it (dropOld).
func (k *seqKey) due(keep retention) int64 {
	t := int64(math.MaxInt64)
	for _, list := range k.Steps {
		if len(list) > 0 {
			t = min(t, list[0].At)
		}
	}
	if at, ok := k.Tags.firstAt(); ok {
		t = min(t, at)
	}
	due := int64(math.MaxInt64)
	if t != math.MaxInt64 {
		due = t + keep.within
	}
	if len(k.Finals) > 0 {
		due = min(due, k.Finals[0].At)
	}
	if due == math.MaxInt64 {
		return minTime
	}
	return due
}

// due: a first_seen key changes when a value's earliest sighting leaves
// history behind the horizon, or a recent identity, pending value or tag
// falls behind it (dropOld). A learning key with nothing else never
// changes; any other key without times is checked at every sweep.
func (k *firstKey) due(keep retention) int64 {
	due := int64(math.MaxInt64)
	for _, sv := range k.Values {
		if len(sv.Times) > 0 {
			due = min(due, sv.Times[0]+keep.history)
		}
	}
	for _, r := range k.Recent {
		due = min(due, r.At)
	}
	for _, p := range k.Pending {
		due = min(due, p.At)
	}
	if at, ok := k.Tags.firstAt(); ok {
		due = min(due, at)
	}
	if due == math.MaxInt64 && !keep.learns {
		return minTime
	}
	return due
}

// frozenScratch checks entry bodies before they are kept frozen, by
// decoding them into values reused from one entry to the next: a restore
// refuses a garbled entry as it always did, without allocating a decoded
// copy of every key.
type frozenScratch struct {
	memos  []tagMemo
	count  countKey
	seq    seqKey
	finals []seqEvent
	first  firstKey
}

// freezable reports whether entries of kind are kept frozen.
func freezable(kind byte) bool {
	return kind == entryThreshold || kind == entrySequence || kind == entryFirstSeen
}

// check decodes body, an entry of a freezable kind in the current format.
func (f *frozenScratch) check(kind byte, body []byte) error {
	d := decoder{b: body, format: entryFormat, alias: true, checkMemos: &f.memos}
	switch kind {
	case entryThreshold:
		decodeCountInto(&d, &f.count)
	case entrySequence:
		f.finals = decodeSeqInto(&d, &f.seq, f.finals)
	case entryFirstSeen:
		decodeFirstInto(&d, &f.first)
	default:
		return fmt.Errorf("state entries of kind %q are not kept frozen", kind)
	}
	return d.end()
}

// restoreFrozen keeps a checked entry body of a freezable kind frozen.
func (s *ruleState) restoreFrozen(kind byte, key string, body []byte, touched uint32) {
	i := shardOf(key)
	var added bool
	switch kind {
	case entryThreshold:
		added = lockedRestoreFrozen(&s.threshold[i], key, body, touched)
	case entrySequence:
		added = lockedRestoreFrozen(&s.sequence[i], key, body, touched)
	case entryFirstSeen:
		added = lockedRestoreFrozen(&s.firstSeen[i], key, body, touched)
	}
	if added {
		s.book.keys.Add(1)
	}
}

func lockedRestoreFrozen[T any, P keyPtr[T]](sh *keyShard[T, P], key string, body []byte, touched uint32) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.restoreFrozen(key, body, touched)
}
