package detect

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The compact snapshot (version 5; 4 is read too, and 3, whose entries are
// of format 1), written as a stream: one shard of one kind is encoded
// under its lock at a time, never a copy of the whole state.
//
//	"OKDS" version
//	varint watermark, uvarint journal seq
//	uvarint orgs, per org: str org, varint its mark (watermark_org.go; version 5)
//	per rule:  'R' str id, str fingerprint, uvarint keys per kind (tdpsfa, a sizing hint)
//	per entry: kind, str key, uvarint age, bytes entry (state_codec.go)
//	'E'
//
// str and bytes are uvarint-length-prefixed. An entry's age is how many
// events ago its key was last updated (state_bound.go), so that a restored
// state evicts its least recently updated keys first, as it would have
// (versions before 5 have none: their keys are restored as updated at the
// restore).

const (
	snapshotMagic         = "OKDS"
	binarySnapshotVersion = 5
	recordRule            = 'R'
	recordEnd             = 'E'
	// maxSnapshotString bounds one key or entry read from a snapshot; a
	// longer one is read as far as the file goes, never allocated blind.
	maxSnapshotString = 1 << 30
)

func (e *Engine) writeSnapshot(w io.Writer, journalSeq uint64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := &encoder{b: append([]byte(snapshotMagic), binarySnapshotVersion)}
	enc.varint(e.watermark.Load())
	enc.uvarint(journalSeq)
	marks := e.orgs.all()
	enc.uvarint(uint64(len(marks)))
	for org, mark := range marks {
		enc.str(org)
		enc.varint(mark)
	}
	for _, r := range e.active.Load().rules {
		enc.byte1(recordRule)
		enc.str(r.ID)
		enc.str(r.fingerprint)
		for _, n := range r.state.kindSizes() {
			enc.uvarint(uint64(n))
		}
		if err := r.state.writeEntries(bw, enc); err != nil {
			return fmt.Errorf("encoding state of rule %s: %w", r.ID, err)
		}
	}
	enc.byte1(recordEnd)
	if _, err := bw.Write(enc.b); err != nil {
		return fmt.Errorf("writing state snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing state snapshot: %w", err)
	}
	return nil
}

// kindSizes counts the keys of each kind, in entryKinds order.
func (s *ruleState) kindSizes() [len(entryKinds)]int {
	var n [len(entryKinds)]int
	for i := range stateShards {
		n[0] += lockedLen(&s.threshold[i].mu, s.threshold[i].count)
		n[1] += lockedLen(&s.dedup[i].mu, func() int { return len(s.dedup[i].openings) })
		n[2] += lockedLen(&s.previous[i].mu, func() int { return s.previous[i].values.Len() })
		n[3] += lockedLen(&s.sequence[i].mu, s.sequence[i].count)
		n[4] += lockedLen(&s.firstSeen[i].mu, s.firstSeen[i].count)
		n[5] += lockedLen(&s.absence.shards[i].mu, s.absence.shards[i].count)
	}
	return n
}

func lockedLen(mu interface {
	Lock()
	Unlock()
}, n func() int) int {
	mu.Lock()
	defer mu.Unlock()
	return n()
}

// writeEntries encodes the rule's entries shard by shard into enc, flushing
// enc's bytes to w after each shard.
func (s *ruleState) writeEntries(w io.Writer, enc *encoder) error {
	now := s.book.now()
	flush := func() error {
		_, err := w.Write(enc.b)
		enc.b = enc.b[:0]
		return err
	}
	for i := range stateShards {
		steps := []func() error{
			func() error {
				return writeShard(enc, now, &s.threshold[i], entryThreshold, func(k *countKey) *stateEntry { return &stateEntry{Count: k} })
			},
			func() error {
				sh := &s.dedup[i]
				sh.mu.Lock()
				defer sh.mu.Unlock()
				for k, o := range sh.openings {
					if err := writeEntry(enc, entryDedup, k, now-o.touched, &stateEntry{Times: o.times}); err != nil {
						return err
					}
				}
				return nil
			},
			func() error {
				sh := &s.previous[i]
				sh.mu.Lock()
				defer sh.mu.Unlock()
				for k, v := range sh.values.All() {
					p := prevOf(v)
					if err := writeEntry(enc, entryPrevious, k, now-p.touched, prevStateEntry("", p)); err != nil {
						return err
					}
				}
				return nil
			},
			func() error {
				return writeShard(enc, now, &s.sequence[i], entrySequence, func(k *seqKey) *stateEntry { return &stateEntry{Seq: k} })
			},
			func() error {
				return writeShard(enc, now, &s.firstSeen[i], entryFirstSeen, func(k *firstKey) *stateEntry { return &stateEntry{First: k} })
			},
			func() error {
				return writeShard(enc, now, &s.absence.shards[i].keyShard, entryAbsence, func(k *absKey) *stateEntry { return &stateEntry{Abs: k} })
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeShard[T any, P keyPtr[T]](enc *encoder, now uint32, sh *keyShard[T, P], kind byte, entry func(*T) *stateEntry) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k, v := range sh.keys {
		if err := writeEntry(enc, kind, k, now-P(v).meta().touched, entry(v)); err != nil {
			return err
		}
	}
	for k, v := range sh.frozen.All() { // the body as frozen
		enc.byte1(kind)
		enc.str(k)
		enc.uvarint(uint64(now - frozenTouched(v)))
		enc.bytes(frozenBody(v))
	}
	return nil
}

// writeEntry appends kind, key, age and the entry, its length first.
func writeEntry(enc *encoder, kind byte, key string, age uint32, ent *stateEntry) error {
	enc.byte1(kind)
	enc.str(key)
	enc.uvarint(uint64(age))
	body := encoder{b: enc.scratch[:0]}
	if err := appendEntry(&body, kind, ent); err != nil {
		return err
	}
	enc.bytes(body.b)
	enc.scratch = body.b
	return nil
}

// snapshotReader reads the records of a compact snapshot.
type snapshotReader struct {
	r    *bufio.Reader
	buf  []byte
	size int64 // the snapshot's size, when known (0: unknown)
	// format is that of the snapshot's entries (state_codec.go).
	format  byte
	aged    bool // entries carry their key's age (version 5)
	scratch frozenScratch
	key     []byte // the entry's key, read before its body
}

func (sr *snapshotReader) uvarint() (uint64, error) {
	v, err := binary.ReadUvarint(sr.r)
	if err != nil {
		return 0, fmt.Errorf("state snapshot: %w", noEOF(err))
	}
	return v, nil
}

// chunk reads n bytes into a buffer reused by the next call. Beyond 1 MiB
// the buffer grows only as bytes arrive, so a garbled length fails at the
// end of the file instead of allocating it.
func (sr *snapshotReader) chunk(n uint64) ([]byte, error) {
	if n > maxSnapshotString {
		return nil, fmt.Errorf("state snapshot: a %d-byte record", n)
	}
	if n <= 1<<20 || n <= uint64(cap(sr.buf)) {
		if uint64(cap(sr.buf)) < n {
			sr.buf = make([]byte, n)
		}
		p := sr.buf[:n]
		if _, err := io.ReadFull(sr.r, p); err != nil {
			return nil, fmt.Errorf("state snapshot: %w", noEOF(err))
		}
		return p, nil
	}
	var b bytes.Buffer
	if _, err := io.CopyN(&b, sr.r, int64(n)); err != nil {
		return nil, fmt.Errorf("state snapshot: %w", noEOF(err))
	}
	sr.buf = b.Bytes()
	return sr.buf, nil
}

func (sr *snapshotReader) str() (string, error) {
	n, err := sr.uvarint()
	if err != nil {
		return "", err
	}
	p, err := sr.chunk(n)
	return string(p), err
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (e *Engine) readBinarySnapshot(br *bufio.Reader, size int64) (restored int, journalSeq uint64, err error) {
	sr := &snapshotReader{r: br, size: size}
	head, err := sr.chunk(uint64(len(snapshotMagic) + 1))
	if err != nil {
		return 0, 0, err
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return 0, 0, errors.New("not a state snapshot")
	}
	v := head[len(snapshotMagic)]
	if v != binarySnapshotVersion && v != 4 && v != 3 {
		return 0, 0, fmt.Errorf("state snapshot version %d, want %d (or 4, 3, or JSON 1, 2)", v, binarySnapshotVersion)
	}
	sr.format, sr.aged = entryFormat, v >= 5
	if v == 3 {
		sr.format = 1
	}
	watermark, err := binary.ReadVarint(br)
	if err != nil {
		return 0, 0, fmt.Errorf("state snapshot: %w", noEOF(err))
	}
	if journalSeq, err = sr.uvarint(); err != nil {
		return 0, 0, err
	}
	if sr.aged {
		if err := sr.orgMarks(e.orgs); err != nil {
			return 0, 0, err
		}
	}
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	rules := map[string]activeRule{}
	for _, r := range e.active.Load().rules {
		rules[r.ID] = r
	}
	var cur *ruleState // the rule whose entries follow; nil: skipped
	var restoredRules []activeRule
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return 0, 0, fmt.Errorf("state snapshot: %w", noEOF(err))
		}
		switch {
		case kind == recordEnd:
			for _, r := range restoredRules {
				r.state.absence.restoreDeadlines(r.limits.abs)
			}
			e.restoreWatermark(watermark)
			return len(restoredRules), journalSeq, nil
		case kind == recordRule:
			r, ok, err := sr.rule(rules)
			if err != nil {
				return 0, 0, err
			}
			cur = nil
			if ok {
				cur = r.state
				restoredRules = append(restoredRules, r)
			}
		case bytes.IndexByte([]byte(entryKinds), kind) >= 0:
			if err := sr.entry(kind, cur); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, fmt.Errorf("state snapshot: unknown record %q", kind)
		}
	}
}

// orgMarks reads the orgs' marks into orgs.
func (sr *snapshotReader) orgMarks(orgs *orgMarks) error {
	n, err := sr.uvarint()
	if err != nil {
		return err
	}
	for range n {
		org, err := sr.str()
		if err != nil {
			return err
		}
		mark, err := binary.ReadVarint(sr.r)
		if err != nil {
			return fmt.Errorf("state snapshot: %w", noEOF(err))
		}
		orgs.restoreOrg(org, mark)
	}
	return nil
}

// rule reads a rule record; ok when its rule is active and unchanged
// (then its maps are sized for the keys that follow).
func (sr *snapshotReader) rule(rules map[string]activeRule) (activeRule, bool, error) {
	id, err := sr.str()
	if err != nil {
		return activeRule{}, false, err
	}
	fp, err := sr.str()
	if err != nil {
		return activeRule{}, false, err
	}
	var sizes [len(entryKinds)]uint64
	for i := range sizes {
		if sizes[i], err = sr.uvarint(); err != nil {
			return activeRule{}, false, err
		}
	}
	r, ok := rules[id]
	if !ok || r.fingerprint != fp {
		return activeRule{}, false, nil
	}
	delete(rules, id) // a rule appears once
	r.state.presize(sizes, sr.size)
	return r, true, nil
}

// entry reads an entry into s (nil: skipped).
func (sr *snapshotReader) entry(kind byte, s *ruleState) error {
	n, err := sr.uvarint()
	if err != nil {
		return err
	}
	p, err := sr.chunk(n)
	if err != nil {
		return err
	}
	sr.key = append(sr.key[:0], p...) // the body is read into the same buffer
	var age uint64
	if sr.aged {
		if age, err = sr.uvarint(); err != nil {
			return err
		}
	}
	if n, err = sr.uvarint(); err != nil {
		return err
	}
	body, err := sr.chunk(n)
	if err != nil || s == nil {
		return err
	}
	touched := s.book.now()
	if sr.aged {
		touched -= uint32(min(age, math.MaxUint32))
	}
	if sr.format == entryFormat && freezable(kind) {
		// Kept as read, frozen (state_frozen.go), once checked; the key
		// is copied into the frozen entry.
		key := bytesView(sr.key)
		if err := sr.scratch.check(kind, body); err != nil {
			return fmt.Errorf("state snapshot: entry %q: %w", key, err)
		}
		s.restoreFrozen(kind, key, body, touched)
		return nil
	}
	var key string
	if kind == entryPrevious { // copied with its value into the shard's packedMap
		key = bytesView(sr.key)
	} else {
		key = string(sr.key)
	}
	var ent stateEntry
	if err := decodeEntry(&decoder{b: body, format: sr.format}, kind, &ent); err != nil {
		return fmt.Errorf("state snapshot: entry %q: %w", key, err)
	}
	ent.touched, ent.aged = touched, true
	s.restoreEntry(kind, key, &ent)
	return nil
}

// presize makes the empty maps of a rule about to be restored big enough
// for the keys a snapshot of size bytes announces: a hint, believed only as
// far as the file could hold that many entries (3 bytes at least each), so
// that map growth does not double restore's allocations.
func (s *ruleState) presize(sizes [len(entryKinds)]uint64, size int64) {
	if size <= 0 {
		return
	}
	most := uint64(size / 3)
	per := func(n uint64) int { return int(min(n, most)/stateShards) + 1 }
	for i := range stateShards {
		s.threshold[i].frozen.reserve(per(sizes[0]))
		if len(s.dedup[i].openings) == 0 {
			s.dedup[i].openings = make(map[string]dedupKey, per(sizes[1]))
		}
		s.previous[i].values.reserve(per(sizes[2]))
		s.sequence[i].frozen.reserve(per(sizes[3]))
		s.firstSeen[i].frozen.reserve(per(sizes[4]))
		if len(s.absence.shards[i].keys) == 0 {
			s.absence.shards[i].keys = make(map[string]*absKey, per(sizes[5]))
		}
	}
}
