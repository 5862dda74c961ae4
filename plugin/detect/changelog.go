package detect

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/oktadetect/oktadetect/internal/changelog"
)

// Changelog entries: the state of one engine as keyed records, so that a
// compacted topic holds the latest value of every entry (partitioned.go).
//
//	t NUL <rule id> NUL <threshold group>   {"f": fingerprint, "t": [times]}
//	d NUL <rule id> NUL <dedup key>         {"f": fingerprint, "t": [openings]}
//	p NUL <rule id> NUL <previous key>      {"f": fingerprint, "at": time, "v": value}
//
// A nil value deletes the entry (expired). Entries of a rule whose file has
// changed since (another fingerprint) are not restored.
const (
	entryThreshold = 't'
	entryDedup     = 'd'
	entryPrevious  = 'p'
)

type stateEntry struct {
	Fingerprint string  `json:"f"`
	Times       []int64 `json:"t,omitempty"`
	At          int64   `json:"at,omitempty"`
	Value       any     `json:"v,omitempty"`
}

func entryKey(kind byte, ruleID, key string) []byte {
	return []byte(string(kind) + "\x00" + ruleID + "\x00" + key)
}

// takeChanges returns the current value (or deletion) of every state entry
// changed since the last call, and forgets the changes.
func (e *Engine) takeChanges() ([]changelog.Record, error) {
	var recs []changelog.Record
	for _, r := range e.active.Load().rules {
		var err error
		if recs, err = r.state.takeChanges(recs, r.ID, r.fingerprint); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

func (s *ruleState) takeChanges(recs []changelog.Record, ruleID, fingerprint string) ([]changelog.Record, error) {
	var err error
	for i := range stateShards {
		th := &s.threshold[i]
		th.mu.Lock()
		recs, err = appendChanges(recs, th.dirty, entryThreshold, ruleID, func(k string) (*stateEntry, bool) {
			t, ok := th.groups[k]
			return &stateEntry{Fingerprint: fingerprint, Times: t}, ok
		})
		th.mu.Unlock()
		if err != nil {
			return nil, err
		}
		dd := &s.dedup[i]
		dd.mu.Lock()
		recs, err = appendChanges(recs, dd.dirty, entryDedup, ruleID, func(k string) (*stateEntry, bool) {
			o, ok := dd.openings[k]
			return &stateEntry{Fingerprint: fingerprint, Times: o}, ok
		})
		dd.mu.Unlock()
		if err != nil {
			return nil, err
		}
		pv := &s.previous[i]
		pv.mu.Lock()
		recs, err = appendChanges(recs, pv.dirty, entryPrevious, ruleID, func(k string) (*stateEntry, bool) {
			v, ok := pv.values[k]
			return &stateEntry{Fingerprint: fingerprint, At: v.At, Value: v.Value}, ok
		})
		pv.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// appendChanges encodes the dirty keys of one shard (locked by the caller)
// and clears them.
func appendChanges(recs []changelog.Record, dirty dirtyKeys, kind byte, ruleID string, current func(string) (*stateEntry, bool)) ([]changelog.Record, error) {
	for k := range dirty {
		rec := changelog.Record{Key: entryKey(kind, ruleID, k)}
		if e, ok := current(k); ok {
			v, err := json.Marshal(e)
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
	rules := map[string]activeRule{}
	for _, r := range e.active.Load().rules {
		rules[r.ID] = r
	}
	for k, v := range entries {
		kind, rest, ok := strings.Cut(k, "\x00")
		if !ok || len(kind) != 1 || !strings.ContainsRune("tdp", rune(kind[0])) {
			continue // not a state entry (partitioned.go's own keys)
		}
		ruleID, key, ok := strings.Cut(rest, "\x00")
		if !ok {
			return nil, fmt.Errorf("changelog entry %q: no rule id", k)
		}
		var ent stateEntry
		if err := json.Unmarshal(v, &ent); err != nil {
			return nil, fmt.Errorf("changelog entry of rule %s: %w", ruleID, err)
		}
		r, ok := rules[ruleID]
		if !ok || r.fingerprint != ent.Fingerprint {
			stale = append(stale, k)
			continue
		}
		r.state.restoreEntry(kind[0], key, &ent)
	}
	return stale, nil
}

func (s *ruleState) restoreEntry(kind byte, key string, ent *stateEntry) {
	switch kind {
	case entryThreshold:
		sh := &s.threshold[shardOf(key)]
		sh.mu.Lock()
		sh.groups[key] = ent.Times
		sh.mu.Unlock()
	case entryDedup:
		sh := &s.dedup[shardOf(key)]
		sh.mu.Lock()
		sh.openings[key] = ent.Times
		sh.mu.Unlock()
	case entryPrevious:
		sh := &s.previous[shardOf(key)]
		sh.mu.Lock()
		sh.values[key] = remembered{At: ent.At, Value: ent.Value}
		sh.mu.Unlock()
	}
}

// setWatermark moves the watermark forward to w (a restored partition's).
func (e *Engine) setWatermark(w int64) {
	for {
		cur := e.watermark.Load()
		if w <= cur || e.watermark.CompareAndSwap(cur, w) {
			return
		}
	}
}
