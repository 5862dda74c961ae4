package detect

import (
	"encoding/binary"
	"slices"
)

// A remembered key holds its latest value by event time and, before it,
// the values it replaced that are recent: within the engine's max_lateness
// of the latest, at most maxPrevHistory of them. Each value records the
// uuid hash of the event it came from, so that a re-delivered event reads
// what it read the first time: the value held just before its own was
// stored, not its own nor one stored after it. Without that, a re-delivery
// after a crash (state saved, output not yet written) changes the tags:
// the impossible-travel login reads itself and no longer alerts, and an
// earlier login of the same user reads the later one and alerts falsely.
//
// As held (one string, sharing one allocation with the key):
//
//	touched (4) | flags (1) | records, oldest first
//	record = at (8) | id (8) | length (4) | encoding
//
// A record whose value is the same as the one before it has length 0 and
// no encoding (an encoding is never empty): a rule that keeps a first
// sighting remembers the same value at every event.
//
// flags bit 0 (prevPruned): older values were dropped from the history,
// so the oldest record's event read one of those, not nothing.

const (
	prevHeader     = 5
	prevRecordHead = 20
	prevPruned     = 1
	// maxPrevHistory bounds the values a key keeps beside its latest (a
	// burst of one user's logins keeps the last ones).
	maxPrevHistory = 8
)

// prevRecord is one remembered value: its time, its event's uuid hash (0:
// the event had none) and its encoding (state_codec_value.go).
type prevRecord struct {
	at  int64
	id  uint64
	enc string
}

// prevEntry is a held value parsed: the latest record, the older ones (as
// held, oldest first) and the key's update stamp.
type prevEntry struct {
	touched uint32
	pruned  bool
	prevRecord
	older string
}

// prevTouched is the held value's update stamp, without parsing its records.
func prevTouched(v string) uint32 { return binary.LittleEndian.Uint32(stringBytes(v)) }

func prevOf(v string) prevEntry {
	p := prevEntry{touched: prevTouched(v), pruned: v[4]&prevPruned != 0}
	rest, last := v[prevHeader:], ""
	for {
		r, next := nextPrevRecord(rest, last)
		if next == "" {
			p.prevRecord, p.older = r, v[prevHeader:len(v)-len(rest)]
			return p
		}
		rest, last = next, r.enc
	}
}

// nextPrevRecord parses the record at the start of s; last is the value of
// the record before it.
func nextPrevRecord(s, last string) (prevRecord, string) {
	b := stringBytes(s)
	n := prevRecordHead + int(binary.LittleEndian.Uint32(b[16:]))
	r := prevRecord{at: int64(binary.LittleEndian.Uint64(b)), id: binary.LittleEndian.Uint64(b[8:]), enc: s[prevRecordHead:n]}
	if r.enc == "" {
		r.enc = last
	}
	return r, s[n:]
}

// olderRecords lists the records before the latest, oldest first.
func (p prevEntry) olderRecords() []prevRecord { return p.appendOlder(nil) }

func (p prevEntry) appendOlder(dst []prevRecord) []prevRecord {
	last := ""
	for rest := p.older; rest != ""; {
		var r prevRecord
		r, rest = nextPrevRecord(rest, last)
		dst = append(dst, r)
		last = r.enc
	}
	return dst
}

// appendRecords appends the older records then the latest, oldest first.
func (p prevEntry) appendRecords(dst []prevRecord) []prevRecord {
	return append(p.appendOlder(dst), p.prevRecord)
}

// is says whether the record came from the event published at at whose
// uuid hashes to id: an event is the same event when both match, as for
// the counts of threshold rules (a uuid reused for another time is another
// event).
func (r prevRecord) is(at int64, id uint64) bool { return r.id == id && r.at == at }

// readBy is the record the event (at, id) read when it was first seen, and
// whether it read one: for an event whose value is in the history, the
// record before it (none before the first value the key ever had); for
// any other event, or the oldest of a pruned history (what it read was
// dropped), the latest.
func (p prevEntry) readBy(at int64, id uint64) (prevRecord, bool) {
	if id == 0 || p.older == "" && !p.is(at, id) {
		return p.prevRecord, true
	}
	var buf [maxPrevHistory + 2]prevRecord
	recs := p.appendRecords(buf[:0])
	for i, r := range recs {
		switch {
		case !r.is(at, id):
			continue
		case i > 0:
			return recs[i-1], true
		case !p.pruned:
			return prevRecord{}, false
		}
		break
	}
	return p.prevRecord, true
}

// put stores the records (oldest first; copied: they and key may point
// into an event's bytes or the value held) for key and reports whether
// the key is new.
func (sh *previousShard) put(key string, recs []prevRecord, pruned bool, touched uint32) bool {
	n, last := prevHeader, ""
	for _, r := range recs {
		if n += prevRecordHead; r.enc != last {
			n += len(r.enc)
		}
		last = r.enc
	}
	b, isNew := sh.values.Put(key, n)
	b = b[:0]
	b = binary.LittleEndian.AppendUint32(b, touched)
	flags := byte(0)
	if pruned {
		flags |= prevPruned
	}
	b = append(b, flags)
	last = ""
	for _, r := range recs {
		enc := r.enc
		if enc == last {
			enc = "" // the same value as the record before
		}
		last = r.enc
		b = binary.LittleEndian.AppendUint64(b, uint64(r.at))
		b = binary.LittleEndian.AppendUint64(b, r.id)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return isNew
}

// lookup returns the value the event (at t, uuid hash id) reads for key:
// the latest remembered one or, when the event is one whose value is in
// the key's history (a re-delivery), the one it read the first time;
// unless that is older than ttl before t. The shard must be locked.
func (sh *previousShard) lookup(key string, t, ttl int64, id uint64) (any, bool) {
	held, ok := sh.values.Get(key)
	if !ok {
		return nil, false
	}
	r, ok := prevOf(held).readBy(t, id)
	if !ok || r.at < t-ttl {
		return nil, false
	}
	d := decoder{b: stringBytes(r.enc), alias: true}
	v := decodeValue(&d, 0)
	if d.end() != nil {
		return nil, false // never: entries are checked as they are restored
	}
	return v, true
}

// remember stores enc, an encoded value (encodeValue) from the event id at
// t, as key's latest, unless a later value is already remembered or this
// event's is held (kept for ttl). The values it replaces stay in the
// history while within keep of t. The shard must be locked.
func (sh *previousShard) remember(key string, t, ttl, keep int64, id uint64, enc []byte) {
	latest := prevRecord{at: t, id: id, enc: bytesView(enc)} // copied by put
	recs := []prevRecord{latest}
	pruned := false
	if held, ok := sh.values.Get(key); ok {
		cur := prevOf(held)
		if t < cur.at {
			return // a later value is remembered
		}
		var buf [maxPrevHistory + 2]prevRecord
		old := cur.appendRecords(buf[:0])
		if id != 0 && hasRecord(old, t, id) {
			return // this event again: its value is held, with what it read
		}
		kept := old[:0]
		for _, r := range old {
			if r.at >= t-keep {
				kept = append(kept, r)
			}
		}
		if len(kept) > maxPrevHistory {
			kept = kept[len(kept)-maxPrevHistory:]
		}
		pruned = cur.pruned || len(kept) < len(old)
		recs = append(kept, latest)
	}
	if sh.put(key, recs, pruned, sh.book.now()) {
		sh.book.keys.Add(1)
	}
	sh.gate.lower(t + ttl + 1) // expirePrevious drops it from then on
	sh.dirty.mark(key)
}

func hasRecord(recs []prevRecord, at int64, id uint64) bool {
	return slices.ContainsFunc(recs, func(r prevRecord) bool { return r.is(at, id) })
}
