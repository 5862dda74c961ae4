package detect

import (
	"fmt"
	"strconv"
	"strings"
)

// Changelog entries: the state of one engine as keyed records, so that a
// compacted topic holds the latest value of every entry (partition_engines.go).
//
//	t NUL <rule id> NUL <threshold group>   a threshold group
//	d NUL <rule id> NUL <dedup key>         alert openings
//	p NUL <rule id> NUL <previous key>      time and remembered value
//	s NUL <rule id> NUL <sequence key>      a sequence
//	f NUL <rule id> NUL <first_seen key>    a first_seen history
//	a NUL <rule id> NUL <absence key>       expectations
//
// Values are compact (state_codec.go: a format byte, the rule file's
// fingerprint, the entry); JSON values written before, {"f": fingerprint,
// "c"|"t"|"at"+"v"|"s"|"fs"|"a": …}, are still read.
//
// A nil value deletes the entry (expired). Entries of a rule whose file has
// changed since (another fingerprint) are not restored.
const (
	entryThreshold = 't'
	entryDedup     = 'd'
	entryPrevious  = 'p'
	entrySequence  = 's'
	entryFirstSeen = 'f'
	entryAbsence   = 'a'
)

// entryKinds are the kinds restoreEntries reads.
const entryKinds = "tdpsfa"

type stateEntry struct {
	Fingerprint string    `json:"f"`
	Times       []int64   `json:"t,omitempty"`
	At          int64     `json:"at,omitempty"`
	Value       any       `json:"v,omitempty"`
	Count       *countKey `json:"c,omitempty"`
	Seq         *seqKey   `json:"s,omitempty"`
	First       *firstKey `json:"fs,omitempty"`
	Abs         *absKey   `json:"a,omitempty"`
	// prevEnc is the remembered value in its compact encoding (Value is
	// read from JSON entries only), prevID the uuid hash of its event, and
	// prevOlder the values it replaced that are kept, oldest first, with
	// prevPruned: older ones were dropped (state_previous.go).
	prevEnc    []byte
	prevID     uint64
	prevOlder  []prevRecord
	prevPruned bool
	// touched is the key's update stamp, when aged (read from a snapshot
	// that keeps each key's age); other entries are restored as updated
	// at the restore.
	touched uint32
	aged    bool
}

// stamp is the update stamp a restored entry gets.
func (s *ruleState) stamp(ent *stateEntry) uint32 {
	if ent.aged {
		return ent.touched
	}
	return s.book.now()
}

func entryKey(kind byte, ruleID, key string) []byte {
	return []byte(string(kind) + "\x00" + ruleID + "\x00" + key)
}

// takeChanges returns the current value (or deletion) of every state entry
// changed since the last call, and forgets the changes.
func (e *Engine) takeChanges() ([]Change, error) {
	var recs []Change
	for _, r := range e.active.Load().rules {
		var err error
		if recs, err = r.state.takeChanges(recs, r.ID, r.fingerprint); err != nil {
			return nil, err
		}
	}
	for org, mark := range e.orgs.takeChanged() {
		recs = append(recs, Change{Key: []byte(orgMarkPrefix + org), Value: strconv.AppendInt(nil, mark, 10)})
	}
	return recs, nil
}

// orgMarkPrefix starts the entries holding each org's event time
// (watermark_org.go): "w" NUL org, the time in decimal.
const orgMarkPrefix = "w\x00"

// restoreOrgMark restores the org mark entry k (orgMarkPrefix + org).
func restoreOrgMark(orgs *orgMarks, k string, v []byte) error {
	if v == nil {
		return nil
	}
	mark, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return fmt.Errorf("org mark %q: %w", v, err)
	}
	orgs.restoreOrg(k[len(orgMarkPrefix):], mark)
	return nil
}

func (s *ruleState) takeChanges(recs []Change, ruleID, fp string) ([]Change, error) {
	var err error
	for i := range stateShards {
		if recs, err = shardChanges(&s.threshold[i], recs, entryThreshold, ruleID, func(k *countKey) *stateEntry {
			return &stateEntry{Fingerprint: fp, Count: k}
		}); err != nil {
			return nil, err
		}
		dd := &s.dedup[i]
		dd.mu.Lock()
		recs, err = appendChanges(recs, dd.dirty, entryDedup, ruleID, func(k string) (*stateEntry, bool) {
			o, ok := dd.openings[k]
			return &stateEntry{Fingerprint: fp, Times: o.times}, ok
		})
		dd.mu.Unlock()
		if err != nil {
			return nil, err
		}
		pv := &s.previous[i]
		pv.mu.Lock()
		recs, err = appendChanges(recs, pv.dirty, entryPrevious, ruleID, func(k string) (*stateEntry, bool) {
			v, ok := pv.values.Get(k)
			if !ok {
				return nil, false
			}
			return prevStateEntry(fp, prevOf(v)), true
		})
		pv.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if recs, err = shardChanges(&s.sequence[i], recs, entrySequence, ruleID, func(k *seqKey) *stateEntry {
			return &stateEntry{Fingerprint: fp, Seq: k}
		}); err != nil {
			return nil, err
		}
		if recs, err = shardChanges(&s.firstSeen[i], recs, entryFirstSeen, ruleID, func(k *firstKey) *stateEntry {
			return &stateEntry{Fingerprint: fp, First: k}
		}); err != nil {
			return nil, err
		}
		if recs, err = shardChanges(&s.absence.shards[i].keyShard, recs, entryAbsence, ruleID, func(k *absKey) *stateEntry {
			return &stateEntry{Fingerprint: fp, Abs: k}
		}); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// shardChanges is appendChanges for a keyShard, under its lock.
func shardChanges[T any, P keyPtr[T]](sh *keyShard[T, P], recs []Change, kind byte, ruleID string, entry func(*T) *stateEntry) ([]Change, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return appendChanges(recs, sh.dirty, kind, ruleID, func(k string) (*stateEntry, bool) {
		v, ok := sh.peek(k)
		if !ok {
			return nil, false
		}
		return entry(v), true
	})
}

// appendChanges encodes the dirty keys of one shard (locked by the caller)
// and clears them.
func appendChanges(recs []Change, dirty dirtyKeys, kind byte, ruleID string, current func(string) (*stateEntry, bool)) ([]Change, error) {
	for k := range dirty {
		rec := Change{Key: entryKey(kind, ruleID, k)}
		if e, ok := current(k); ok {
			v, err := encodeEntryValue(kind, e)
			if err != nil {
				return nil, fmt.Errorf("encoding state of rule %s: %w", ruleID, err)
			}
			rec.Value = v
		}
		recs = append(recs, rec)
		delete(dirty, k)
	}
	return recs, nil
}

// restoreEntries loads changelog entries into a fresh engine. It returns the
// keys of entries no active rule can use (a rule removed or changed since),
// for the caller to delete, and an error for an entry it cannot read.
func (e *Engine) restoreEntries(entries map[string][]byte) (stale []string, err error) {
	rules := e.rulesByID()
	var scratch frozenScratch
	for k, v := range entries {
		isStale, err := restoreEntryOf(rules, e.orgs, k, v, &scratch)
		if err != nil {
			return nil, err
		}
		if isStale {
			stale = append(stale, k)
		}
	}
	restoreDeadlines(rules)
	return stale, nil
}

func (e *Engine) rulesByID() map[string]activeRule {
	rules := map[string]activeRule{}
	for _, r := range e.active.Load().rules {
		rules[r.ID] = r
	}
	return rules
}

// restoreDeadlines rebuilds the absences' deadline queues once every entry
// is restored.
func restoreDeadlines(rules map[string]activeRule) {
	for _, r := range rules {
		r.state.absence.restoreDeadlines(r.limits.abs)
	}
}

// restoreEntryOf applies one entry (nil v: a deletion) to the rules' state,
// or an org's mark to orgs.
// It reports an entry no active rule can use as stale; keys that are not
// state entries (partition_engines.go's own) are skipped. Entries of the
// kinds kept frozen are checked with scratch and kept as they are.
func restoreEntryOf(rules map[string]activeRule, orgs *orgMarks, k string, v []byte, scratch *frozenScratch) (stale bool, err error) {
	if strings.HasPrefix(k, orgMarkPrefix) {
		return false, restoreOrgMark(orgs, k, v)
	}
	kind, rest, ok := strings.Cut(k, "\x00")
	if !ok || len(kind) != 1 || !strings.Contains(entryKinds, kind) {
		return false, nil
	}
	ruleID, key, ok := strings.Cut(rest, "\x00")
	if !ok {
		return false, fmt.Errorf("changelog entry %q: no rule id", k)
	}
	if v == nil { // a deletion (a journal replayed over a snapshot)
		if r, ok := rules[ruleID]; ok {
			r.state.deleteEntry(kind[0], key)
		}
		return false, nil
	}
	if len(v) > 0 && v[0] == entryFormat && freezable(kind[0]) {
		return restoreFrozenEntry(rules, ruleID, kind[0], key, v, scratch)
	}
	var ent stateEntry
	if err := decodeEntryValue(kind[0], v, &ent); err != nil {
		return false, fmt.Errorf("changelog entry of rule %s: %w", ruleID, err)
	}
	r, ok := rules[ruleID]
	if !ok || r.fingerprint != ent.Fingerprint {
		return true, nil
	}
	if kind[0] != entryPrevious { // copied with its value (previousShard.put)
		// The entry keeps its key: a copy, as k may be a view of a log
		// record's bytes, and without the rule id k holds.
		key = strings.Clone(key)
	}
	r.state.restoreEntry(kind[0], key, &ent)
	return false, nil
}

// restoreFrozenEntry restores a compact entry value (format, fingerprint,
// body) of a freezable kind, frozen.
func restoreFrozenEntry(rules map[string]activeRule, ruleID string, kind byte, key string, v []byte, scratch *frozenScratch) (stale bool, err error) {
	d := decoder{b: v[1:]}
	fp := d.raw()
	if d.err != nil {
		return false, fmt.Errorf("changelog entry of rule %s: %w", ruleID, d.err)
	}
	r, ok := rules[ruleID]
	if !ok || r.fingerprint != string(fp) {
		return true, nil
	}
	if err := scratch.check(kind, d.b); err != nil {
		return false, fmt.Errorf("changelog entry of rule %s: %w", ruleID, err)
	}
	r.state.restoreFrozen(kind, key, d.b, r.state.book.now())
	return false, nil
}

func (s *ruleState) restoreEntry(kind byte, key string, ent *stateEntry) {
	switch kind {
	case entryThreshold:
		k := ent.Count
		if k == nil {
			k = &countKey{At: ent.Times} // written before groups kept identities
		}
		k.name = key
		restoreKey(&s.threshold[shardOf(key)], key, k, s.stamp(ent))
	case entryDedup:
		sh := &s.dedup[shardOf(key)]
		sh.mu.Lock()
		if _, ok := sh.openings[key]; !ok {
			sh.book.keys.Add(1)
		}
		sh.openings[key] = dedupKey{times: ent.Times, touched: s.stamp(ent)}
		sh.gate.lower(minTime)
		sh.mu.Unlock()
	case entryPrevious:
		enc := ent.prevEnc
		if enc == nil { // a JSON entry
			var e encoder
			if encodeValue(&e, ent.Value, 0) != nil {
				return // nested too deeply to have been remembered
			}
			enc = e.b
		}
		sh := &s.previous[shardOf(key)]
		sh.mu.Lock()
		recs := append(ent.prevOlder[:len(ent.prevOlder):len(ent.prevOlder)], prevRecord{at: ent.At, id: ent.prevID, enc: bytesView(enc)})
		if sh.put(key, recs, ent.prevPruned, s.stamp(ent)) {
			sh.book.keys.Add(1)
		}
		sh.gate.lower(minTime)
		sh.mu.Unlock()
	case entrySequence:
		if ent.Seq != nil {
			ent.Seq.name = key
			restoreKey(&s.sequence[shardOf(key)], key, ent.Seq, s.stamp(ent))
		}
	case entryFirstSeen:
		if ent.First != nil {
			ent.First.name = key
			restoreKey(&s.firstSeen[shardOf(key)], key, ent.First, s.stamp(ent))
		}
	case entryAbsence:
		if ent.Abs != nil {
			ent.Abs.name = key
			restoreKey(&s.absence.shards[shardOf(key)].keyShard, key, ent.Abs, s.stamp(ent))
		}
	}
}

// deleteEntry removes an entry of the state (expired, as a journal replays
// it).
func (s *ruleState) deleteEntry(kind byte, key string) {
	i := shardOf(key)
	switch kind {
	case entryThreshold:
		deleteKey(&s.threshold[i], key)
	case entrySequence:
		deleteKey(&s.sequence[i], key)
	case entryFirstSeen:
		deleteKey(&s.firstSeen[i], key)
	case entryAbsence:
		deleteKey(&s.absence.shards[i].keyShard, key)
	case entryDedup:
		sh := &s.dedup[i]
		sh.mu.Lock()
		if _, ok := sh.openings[key]; ok {
			delete(sh.openings, key)
			sh.book.keys.Add(-1)
		}
		sh.mu.Unlock()
	case entryPrevious:
		sh := &s.previous[i]
		sh.mu.Lock()
		if sh.values.Delete(key) {
			sh.book.keys.Add(-1)
		}
		sh.mu.Unlock()
	}
}

func deleteKey[T any, P keyPtr[T]](sh *keyShard[T, P], key string) {
	sh.mu.Lock()
	if sh.remove(key) {
		sh.book.keys.Add(-1)
	}
	sh.mu.Unlock()
}

func restoreKey[T any, P keyPtr[T]](sh *keyShard[T, P], key string, v *T, touched uint32) {
	sh.mu.Lock()
	if !sh.remove(key) {
		sh.book.keys.Add(1)
	}
	P(v).meta().touched = touched
	sh.keys[key] = v
	sh.gate.lower(minTime)
	sh.mu.Unlock()
}

// restoreWatermark moves the watermark forward to that of restored state.
func (e *Engine) restoreWatermark(w int64) {
	e.setWatermark(w)
	e.orgs.restore(w)
}

// setWatermark moves the watermark forward to w (an event's, or a restored
// partition's), and returns where it was and is, and whether it moved.
func (e *Engine) setWatermark(w int64) (from, to int64, moved bool) {
	for {
		cur := e.watermark.Load()
		if w <= cur {
			return cur, cur, false
		}
		if e.watermark.CompareAndSwap(cur, w) {
			return cur, w, true
		}
	}
}

// prevStateEntry is the entry of a remembered value as held.
func prevStateEntry(fingerprint string, p prevEntry) *stateEntry {
	return &stateEntry{Fingerprint: fingerprint, At: p.at, prevEnc: stringBytes(p.enc), prevID: p.id, prevOlder: p.olderRecords(), prevPruned: p.pruned}
}
