package detect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// The compact encoding of state entries, used by changelog and journal
// entry values (after a format byte and the rule's fingerprint) and by
// snapshots (snapshot_binary.go). Integers are varints, strings and byte
// strings are length-prefixed, sorted time lists are delta-encoded, event
// identities (hashes) are 8 fixed bytes. Remembered values are tagged
// JSON-native values; an absence's detection, the only nested structure
// written rarely, is JSON inside.
//
// Decoding trusts nothing: every count and length is checked against the
// bytes left (each element takes at least one byte), so a garbled entry
// errors and allocates at most in proportion to its own size.

// entryFormat starts a compact entry value; JSON entries start with '{'.
// Format 1 (before distinct groups numbered their arrivals) is still read.
const entryFormat = 2

var errTruncated = errors.New("truncated state entry")

// maxValueDepth bounds the nesting of a decoded remembered value.
const maxValueDepth = 64

type encoder struct {
	b       []byte
	scratch []byte // writeEntry's body
}

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) u64(v uint64)     { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) byte1(c byte)     { e.b = append(e.b, c) }
func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}
func (e *encoder) boolean(v bool)   { e.byte1(map[bool]byte{false: 0, true: 1}[v]) }
func (e *encoder) times(ts []int64) { e.uvarint(uint64(len(ts))); e.deltas(ts) }
func (e *encoder) deltas(ts []int64) {
	prev := int64(0)
	for _, t := range ts {
		e.varint(t - prev)
		prev = t
	}
}

type decoder struct {
	b   []byte
	err error
	// format is the entry format being read (entryFormat, or 1).
	format byte
	// alias: strings share b's memory instead of copying it (b is an
	// immutable string's bytes: a remembered value being looked up).
	alias bool
	// checkMemos, when set, is where tag memos are decoded to be checked
	// and not kept (reused from entry to entry: a restore checks every
	// entry it keeps frozen).
	checkMemos *[]tagMemo
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) uvarint() uint64 { return readVarint(d, binary.Uvarint) }
func (d *decoder) varint() int64   { return readVarint(d, binary.Varint) }

func readVarint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail(errTruncated)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// count reads a number of elements each taking at least size bytes.
func (d *decoder) count(size int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/size) {
		d.fail(errTruncated)
		return 0
	}
	return int(n)
}

func (d *decoder) raw() []byte {
	n := d.count(1)
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string {
	p := d.raw()
	if d.alias && len(p) > 0 {
		return bytesView(p)
	}
	return string(p)
}
func (d *decoder) bytes() []byte  { return slices.Clone(d.raw()) }
func (d *decoder) boolean() bool  { return d.byte1() != 0 }
func (d *decoder) times() []int64 { return d.deltas(d.count(1), nil) }
func (d *decoder) strs() []string { return d.strsInto(nil) }

// The …Into decoders reuse dst's memory (a scratch value decoded again and
// again, to check entries without keeping them); given nil, they allocate
// exactly what the entry holds, and return nil for an empty list.

func (d *decoder) strsInto(dst []string) []string { return listInto(d, dst, 1, d.str) }
func (d *decoder) u64sInto(dst []uint64) []uint64 { return listInto(d, dst, 8, d.u64) }

// listInto reads a count of elements each taking at least size bytes, each
// with read.
func listInto[T any](d *decoder, dst []T, size int, read func() T) []T {
	n := d.count(size)
	if n == 0 {
		return dst[:0]
	}
	out := grown(dst, n)
	for i := range out {
		out[i] = read()
	}
	return out
}

func (d *decoder) timesInto(dst []int64) []int64 { return d.deltas(d.count(1), dst) }

func (d *decoder) deltas(n int, dst []int64) []int64 {
	if n == 0 || d.err != nil {
		return dst[:0]
	}
	out := grown(dst, n)
	prev := int64(0)
	for i := range out {
		prev += d.varint()
		out[i] = prev
	}
	return out
}

// grown is dst with length n, reusing its memory when it has room.
func grown[T any](dst []T, n int) []T {
	if cap(dst) >= n {
		return dst[:n]
	}
	return make([]T, n)
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(errors.New("trailing bytes in state entry"))
	}
	return d.err
}

// appendEntry encodes the state of one entry of kind (the body, without
// fingerprint).
func appendEntry(e *encoder, kind byte, ent *stateEntry) error {
	switch kind {
	case entryThreshold:
		encodeCount(e, ent.Count)
	case entryDedup:
		e.times(ent.Times)
	case entryPrevious:
		// The time and the value; then, when known, the uuid hash of its
		// event and the value it replaced (entries written before them end
		// after the value).
		e.varint(ent.At)
		if ent.prevEnc == nil {
			return encodeValue(e, ent.Value, 0)
		}
		e.b = append(e.b, ent.prevEnc...)
		if ent.prevID == 0 && len(ent.prevOlder) == 0 && !ent.prevPruned {
			return nil
		}
		e.uvarint(ent.prevID)
		flags := byte(0)
		if ent.prevPruned {
			flags |= prevPruned
		}
		e.byte1(flags)
		e.uvarint(uint64(len(ent.prevOlder)))
		for _, r := range ent.prevOlder {
			e.varint(r.at)
			e.uvarint(r.id)
			e.b = append(e.b, r.enc...)
		}
	case entrySequence:
		encodeSeq(e, ent.Seq)
	case entryFirstSeen:
		encodeFirst(e, ent.First)
	case entryAbsence:
		return encodeAbs(e, ent.Abs)
	default:
		return fmt.Errorf("unknown state entry kind %q", kind)
	}
	return nil
}

// decodePrevHistory reads a remembered value's event and the values it
// replaced (appendEntry).
func decodePrevHistory(d *decoder, ent *stateEntry) {
	ent.prevID = d.uvarint()
	ent.prevPruned = d.byte1()&prevPruned != 0
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each record takes bytes: a bound before allocating
		d.fail(errors.New("remembered value: history longer than its entry"))
		return
	}
	for range n {
		r := prevRecord{at: d.varint(), id: d.uvarint()}
		r.enc = bytesView(valueSpan(d))
		if d.err != nil {
			return
		}
		ent.prevOlder = append(ent.prevOlder, r)
	}
}

// decodeEntry decodes a body written by appendEntry.
func decodeEntry(d *decoder, kind byte, ent *stateEntry) error {
	switch kind {
	case entryThreshold:
		ent.Count = decodeCount(d)
	case entryDedup:
		ent.Times = d.times()
	case entryPrevious:
		ent.At = d.varint()
		ent.prevEnc = valueSpan(d)
		if len(d.b) > 0 { // the event and history (entries written before them end here)
			decodePrevHistory(d, ent)
		}
	case entrySequence:
		ent.Seq = decodeSeq(d)
	case entryFirstSeen:
		ent.First = decodeFirst(d)
	case entryAbsence:
		ent.Abs = decodeAbs(d)
	default:
		return fmt.Errorf("unknown state entry kind %q", kind)
	}
	return d.end()
}

// encodeEntryValue is a changelog or journal value: format, fingerprint, body.
func encodeEntryValue(kind byte, ent *stateEntry) ([]byte, error) {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(entryFormat)
	e.str(ent.Fingerprint)
	if err := appendEntry(&e, kind, ent); err != nil {
		return nil, err
	}
	return e.b, nil
}

// decodeEntryValue reads a changelog or journal value: compact, or JSON as
// written before.
func decodeEntryValue(kind byte, v []byte, ent *stateEntry) error {
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, ent)
	}
	d := decoder{b: v}
	if d.format = d.byte1(); d.err == nil && d.format != entryFormat && d.format != 1 {
		return fmt.Errorf("state entry format %d, want %d (or 1)", d.format, entryFormat)
	}
	ent.Fingerprint = d.str()
	return decodeEntry(&d, kind, ent)
}

// encodeTags writes the memos; a memo's values that are among vals (a
// distinct count's values, which its memos list again and again) are
// written as their index + 1, others as 0 and the string, so that they
// take a byte or two and are shared again when decoded.
func encodeTags(e *encoder, tags tagMemos, vals []string) {
	var index map[string]int
	e.uvarint(uint64(tags.Len()))
	for memo := range tags.all() {
		m := &memo
		e.u64(m.id)
		e.varint(m.At)
		e.varint(int64(m.Count))
		values := m.values()
		e.varint(m.Opening - m.At)
		if index == nil && len(values) > 0 && len(vals) > 0 {
			index = make(map[string]int, len(vals))
			for j, v := range vals {
				if _, ok := index[v]; !ok {
					index[v] = j + 1
				}
			}
		}
		e.uvarint(uint64(len(values)))
		for _, v := range values {
			if j := index[v]; j > 0 {
				e.uvarint(uint64(j))
			} else {
				e.uvarint(0)
				e.str(v)
			}
		}
		e.strs(m.sequence())
		e.uvarint(m.Seen)
		if m.Seen != 0 {
			e.varint(m.At - m.From)
			e.varint(m.To - m.At)
		}
	}
}

// tagValues reads the values encodeTags wrote.
func tagValues(d *decoder, vals []string) []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		switch j := d.uvarint(); {
		case j == 0:
			out[i] = d.str()
		case j <= uint64(len(vals)):
			out[i] = vals[j-1]
		default:
			d.fail(errors.New("tag value index out of range"))
			return nil
		}
	}
	return out
}

func decodeTags(d *decoder, vals []string) tagMemos {
	n := d.count(12)
	if n == 0 {
		return nil
	}
	var tags []tagMemo
	if d.checkMemos != nil {
		tags = grown(*d.checkMemos, n)
		clear(tags)
	} else {
		tags = make([]tagMemo, n)
	}
	for i := range tags {
		m := &tags[i]
		m.id, m.At = d.u64(), d.varint()
		m.Count = int32(d.varint())
		m.Opening = m.At + d.varint()
		m.setLists(tagValues(d, vals), d.strs())
		if d.format < 2 {
			continue
		}
		if m.Seen = d.uvarint(); m.Seen != 0 {
			m.From = m.At - d.varint()
			m.To = m.At + d.varint()
		}
	}
	if d.checkMemos != nil {
		*d.checkMemos = tags
		return nil
	}
	if d.err != nil {
		return nil
	}
	// Format 1 kept them in arrival order; garbled ones any.
	return packMemos(sortMemos(tags))
}

// countKey: times; identities (0: none kept) and values (0: none) as
// parallel lists; tags.
func encodeCount(e *encoder, k *countKey) {
	e.times(k.At)
	e.uvarint(uint64(len(k.IDs)))
	for _, id := range k.IDs {
		e.u64(id)
	}
	e.strs(k.Vals)
	e.uvarint(k.Arrivals)
	e.uvarint(uint64(len(k.Arrived)))
	for _, a := range k.Arrived {
		e.uvarint(k.Arrivals - a) // recent arrivals take a byte
	}
	encodeTags(e, k.Tags, k.Vals)
}

func decodeCount(d *decoder) *countKey {
	k := &countKey{}
	decodeCountInto(d, k)
	return k
}

func decodeCountInto(d *decoder, k *countKey) {
	k.At = d.timesInto(k.At)
	k.IDs = d.u64sInto(k.IDs)
	k.Vals = d.strsInto(k.Vals)
	k.Arrivals, k.Arrived = 0, k.Arrived[:0]
	if d.format >= 2 {
		k.Arrivals = d.uvarint()
		if n := d.count(1); n > 0 {
			k.Arrived = grown(k.Arrived, n)
			for i := range k.Arrived {
				if back := d.uvarint(); back < k.Arrivals {
					k.Arrived[i] = k.Arrivals - back
				} else {
					d.fail(errors.New("arrival number out of range"))
				}
			}
		}
	}
	k.Tags = decodeTags(d, k.Vals)
}

func encodeSeqEvents(e *encoder, evs []seqEvent) {
	e.uvarint(uint64(len(evs)))
	prev := int64(0)
	for _, x := range evs {
		e.varint(x.At - prev)
		prev = x.At
		e.u64(x.ID)
		e.str(x.UUID)
	}
}

func decodeSeqEvents(d *decoder, dst []seqEvent) []seqEvent {
	n := d.count(10)
	if n == 0 {
		return dst[:0]
	}
	out := grown(dst, n)
	prev := int64(0)
	for i := range out {
		prev += d.varint()
		out[i] = seqEvent{At: prev, ID: d.u64(), UUID: d.str()}
	}
	return out
}

func encodeSeq(e *encoder, k *seqKey) {
	e.uvarint(uint64(len(k.Steps)))
	for _, st := range k.Steps {
		encodeSeqEvents(e, st)
	}
	finals := make([]seqEvent, len(k.Finals))
	done := make([]bool, len(k.Finals))
	for i, f := range k.Finals {
		finals[i], done[i] = f.seqEvent, f.Done
	}
	encodeSeqEvents(e, finals)
	for _, x := range done {
		e.boolean(x)
	}
	encodeTags(e, k.Tags, nil)
}

func decodeSeq(d *decoder) *seqKey {
	k := &seqKey{}
	decodeSeqInto(d, k, nil)
	return k
}

// decodeSeqInto decodes into k; finals is scratch for the final events.
func decodeSeqInto(d *decoder, k *seqKey, finals []seqEvent) []seqEvent {
	k.Steps = k.Steps[:0]
	if n := d.count(1); n > 0 {
		k.Steps = grown(k.Steps, n)
		for i := range k.Steps {
			k.Steps[i] = decodeSeqEvents(d, k.Steps[i])
		}
	}
	k.Finals = k.Finals[:0]
	if finals = decodeSeqEvents(d, finals); len(finals) > 0 {
		k.Finals = grown(k.Finals, len(finals))
		for i := range finals {
			k.Finals[i] = seqFinal{seqEvent: finals[i], Done: d.boolean()}
		}
	}
	k.Tags = decodeTags(d, nil)
	return finals
}

func encodeFirst(e *encoder, k *firstKey) {
	e.varint(k.First)
	e.uvarint(uint64(len(k.Values)))
	for _, sv := range k.Values {
		e.str(sv.Value)
		e.times(sv.Times)
	}
	e.uvarint(uint64(len(k.Recent)))
	for _, r := range k.Recent {
		e.varint(r.At)
		e.u64(r.ID)
	}
	e.uvarint(uint64(len(k.Pending)))
	for _, p := range k.Pending {
		e.varint(p.At)
		e.str(p.Value)
	}
	encodeTags(e, k.Tags, nil)
}

func decodeFirst(d *decoder) *firstKey {
	k := &firstKey{}
	decodeFirstInto(d, k)
	return k
}

func decodeFirstInto(d *decoder, k *firstKey) {
	k.First = d.varint()
	k.Values = k.Values[:0]
	if n := d.count(2); n > 0 {
		k.Values = grown(k.Values, n)
		for i := range k.Values {
			sv := &k.Values[i]
			sv.Value, sv.Times = d.str(), d.timesInto(sv.Times)
		}
		// Sorted by value, as find needs (an untrusted entry may not be).
		if !slices.IsSortedFunc(k.Values, func(a, b seenValue) int { return strings.Compare(a.Value, b.Value) }) {
			d.fail(errors.New("first_seen values out of order"))
		}
	}
	k.Recent = k.Recent[:0]
	if n := d.count(9); n > 0 {
		k.Recent = grown(k.Recent, n)
		for i := range k.Recent {
			k.Recent[i] = idAt{At: d.varint(), ID: d.u64()}
		}
	}
	k.Pending = k.Pending[:0]
	if n := d.count(2); n > 0 {
		k.Pending = grown(k.Pending, n)
		for i := range k.Pending {
			k.Pending[i] = pendingFirst{At: d.varint(), Value: d.str()}
		}
	}
	k.Tags = decodeTags(d, nil)
}

func encodeAbs(e *encoder, k *absKey) error {
	e.uvarint(uint64(len(k.Open)))
	for _, x := range k.Open {
		e.varint(x.At)
		e.u64(x.ID)
		e.uvarint(uint64(x.State))
		e.bytes(x.Raw)
		e.uvarint(uint64(len(x.Meta)))
		for _, m := range x.Meta {
			e.str(m.Name)
			e.str(m.Value)
		}
		var det []byte
		if x.Det != nil {
			var err error
			if det, err = json.Marshal(x.Det); err != nil {
				return fmt.Errorf("encoding an absence's detection: %w", err)
			}
		}
		e.bytes(det)
	}
	e.times(k.Closers)
	return nil
}

func decodeAbs(d *decoder) *absKey {
	k := &absKey{}
	if n := d.count(13); n > 0 {
		k.Open = make([]expectation, n)
		for i := range k.Open {
			x := &k.Open[i]
			x.At, x.ID, x.State = d.varint(), d.u64(), int(d.uvarint())
			if raw := d.bytes(); len(raw) > 0 {
				x.Raw = raw
			}
			if m := d.count(2); m > 0 {
				x.Meta = make([]MetaField, m)
				for j := range x.Meta {
					x.Meta[j] = MetaField{Name: d.str(), Value: d.str()}
				}
			}
			if det := d.raw(); len(det) > 0 && d.err == nil {
				x.Det = &Detection{}
				if err := json.Unmarshal(det, x.Det); err != nil {
					d.fail(fmt.Errorf("an absence's detection: %w", err))
				}
			}
		}
	}
	k.Closers = d.times()
	return k
}

// value is the entry's remembered value, decoded.
func (ent *stateEntry) value() any {
	if ent.prevEnc == nil {
		return ent.Value
	}
	return decodeValue(&decoder{b: ent.prevEnc}, 0)
}

// stringBytes views s as bytes, for reading only.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// bytesView is b viewed as a string, without a copy: for bytes never
// written again, or read only within a call that copies what it keeps.
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
