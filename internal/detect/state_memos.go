package detect

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"iter"
	"math"
	"slices"
	"sort"
	"strings"
)

// tagMemos are the first tags of a key's tagged events, sorted by time and
// identity, packed: a group under attack tags thousands of events, and a
// tagMemo struct is 64 bytes where its encoding is about 16 (an 8-byte
// identity and small deltas). The memos are held in blocks of at most
// maxMemoBlock, each encoded in a byte slice; a block's first and last
// memo are kept beside it for binary search and for appending in time
// order, which is how most memos arrive. Inserting out of order re-encodes
// one block.
type tagMemos []memoBlock

const maxMemoBlock = 32

type memoKey struct {
	at int64
	id uint64
}

func (a memoKey) compare(b memoKey) int {
	if c := cmp.Compare(a.at, b.at); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// memoBlock is up to maxMemoBlock memos, encoded (appendMemo) with times
// relative to the first memo's.
type memoBlock struct {
	first, last memoKey
	n           int32
	b           []byte
}

// Len is the number of memos.
func (t tagMemos) Len() int {
	n := 0
	for i := range t {
		n += int(t[i].n)
	}
	return n
}

// firstAt is the time of the earliest memo.
func (t tagMemos) firstAt() (int64, bool) {
	if len(t) == 0 {
		return 0, false
	}
	return t[0].first.at, true
}

// appendMemo encodes m (base: its block's first time): identity, then
// varints, then the lists.
func appendMemo(b []byte, base int64, m *tagMemo) []byte {
	b = binary.LittleEndian.AppendUint64(b, m.id)
	b = binary.AppendUvarint(b, uint64(m.At-base))
	b = binary.AppendVarint(b, int64(m.Count))
	b = binary.AppendVarint(b, m.At-m.Opening)
	b = binary.AppendUvarint(b, m.Seen)
	if m.Seen != 0 {
		b = binary.AppendVarint(b, m.At-m.From)
		b = binary.AppendVarint(b, m.To-m.At)
	}
	for _, list := range [2][]string{m.values(), m.sequence()} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// memoReader decodes a block's memos in order. The block encoded them
// itself, so the varints are well formed.
type memoReader struct {
	b    []byte
	base int64
}

func (r *memoReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	r.b = r.b[n:]
	return v
}

func (r *memoReader) varint() int64 {
	v, n := binary.Varint(r.b)
	r.b = r.b[n:]
	return v
}

// key reads the next memo's identity and time, leaving the rest.
func (r *memoReader) key() memoKey {
	id := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return memoKey{at: r.base + int64(r.uvarint()), id: id}
}

// rest reads the memo after its key (nil m: skips it).
func (r *memoReader) rest(k memoKey, m *tagMemo) {
	count, opening, seen := r.varint(), r.varint(), r.uvarint()
	var from, to int64
	if seen != 0 {
		from, to = r.varint(), r.varint()
	}
	var lists [2][]string
	for i := range lists {
		n := r.uvarint()
		for range n {
			l := r.uvarint()
			if m != nil {
				lists[i] = append(lists[i], strings.Clone(bytesView(r.b[:l])))
			}
			r.b = r.b[l:]
		}
	}
	if m == nil {
		return
	}
	*m = tagMemo{id: k.id, At: k.at, Count: int32(count), Opening: k.at - opening, Seen: seen}
	if seen != 0 {
		m.From, m.To = k.at-from, k.at+to
	}
	m.setLists(lists[0], lists[1])
}

// decode appends the block's memos to dst.
func (blk *memoBlock) decode(dst []tagMemo) []tagMemo {
	r := memoReader{b: blk.b, base: blk.first.at}
	for range blk.n {
		var m tagMemo
		r.rest(r.key(), &m)
		dst = append(dst, m)
	}
	return dst
}

// encodeBlock packs sorted memos (at most maxMemoBlock) into a block.
func encodeBlock(ms []tagMemo) memoBlock {
	blk := memoBlock{first: memoKey{ms[0].At, ms[0].id}, last: memoKey{ms[len(ms)-1].At, ms[len(ms)-1].id}, n: int32(len(ms))}
	var b []byte
	for i := range ms {
		b = appendMemo(b, blk.first.at, &ms[i])
	}
	blk.b = slices.Clip(b)
	return blk
}

// packMemos packs sorted memos into blocks.
func packMemos(ms []tagMemo) tagMemos {
	var t tagMemos
	for len(ms) > 0 {
		n := min(len(ms), maxMemoBlock)
		t = append(t, encodeBlock(ms[:n]))
		ms = ms[n:]
	}
	return t
}

// block returns the index of the block that holds k or would: the first
// whose last memo is not before k (len(t) when k is after all).
func (t tagMemos) block(k memoKey) int {
	return sort.Search(len(t), func(i int) bool { return t[i].last.compare(k) >= 0 })
}

// get returns the memo of the event (at, id), decoded, or nil.
func (t tagMemos) get(at int64, id uint64) *tagMemo {
	k := memoKey{at, id}
	i := t.block(k)
	if i == len(t) || t[i].first.compare(k) > 0 {
		return nil
	}
	r := memoReader{b: t[i].b, base: t[i].first.at}
	for range t[i].n {
		got := r.key()
		if got == k {
			var m tagMemo
			r.rest(got, &m)
			return &m
		}
		r.rest(got, nil)
	}
	return nil
}

// put stores m, replacing the memo of the same event.
func (t *tagMemos) put(m tagMemo) {
	k := memoKey{m.At, m.id}
	i := t.block(k)
	if i == len(*t) {
		if i > 0 && (*t)[i-1].n < maxMemoBlock { // after all: append
			blk := &(*t)[i-1]
			blk.b = appendMemo(blk.b, blk.first.at, &m)
			blk.last, blk.n = k, blk.n+1
			return
		}
		*t = append(*t, encodeBlock([]tagMemo{m}))
		return
	}
	ms := (*t)[i].decode(make([]tagMemo, 0, maxMemoBlock+1))
	j, found := slices.BinarySearchFunc(ms, k, func(x tagMemo, k memoKey) int { return memoKey{x.At, x.id}.compare(k) })
	if found {
		ms[j] = m
	} else {
		ms = slices.Insert(ms, j, m)
	}
	if len(ms) <= maxMemoBlock {
		(*t)[i] = encodeBlock(ms)
		return
	}
	half := len(ms) / 2
	(*t)[i] = encodeBlock(ms[:half])
	*t = slices.Insert(*t, i+1, encodeBlock(ms[half:]))
}

// dropThrough removes the memos of events at or before cutoff.
func (t *tagMemos) dropThrough(cutoff int64) {
	n := sort.Search(len(*t), func(i int) bool { return (*t)[i].last.at > cutoff })
	if n > 0 {
		*t = slices.Delete(*t, 0, n)
	}
	if len(*t) == 0 {
		*t = nil
		return
	}
	if (*t)[0].first.at > cutoff {
		return
	}
	ms := (*t)[0].decode(nil)
	keep := sort.Search(len(ms), func(i int) bool { return ms[i].At > cutoff })
	(*t)[0] = encodeBlock(ms[keep:])
}

// dropBefore removes the memos of events before horizon.
func (t *tagMemos) dropBefore(horizon int64) {
	if horizon != math.MinInt64 {
		t.dropThrough(horizon - 1)
	}
}

// all yields the memos in order, decoded.
func (t tagMemos) all() iter.Seq[tagMemo] {
	return func(yield func(tagMemo) bool) {
		for i := range t {
			r := memoReader{b: t[i].b, base: t[i].first.at}
			for range t[i].n {
				var m tagMemo
				r.rest(r.key(), &m)
				if !yield(m) {
					return
				}
			}
		}
	}
}

// clone copies the blocks (their bytes are never written again but by
// appends, which a clone's own appends must not share).
func (t tagMemos) clone() tagMemos {
	if t == nil {
		return nil
	}
	c := slices.Clone(t)
	for i := range c {
		c[i].b = slices.Clip(c[i].b)
	}
	return c
}

// sortMemos orders memos read from storage that did not keep them sorted
// and keeps one memo of an event (garbled storage may hold two).
func sortMemos(ms []tagMemo) []tagMemo {
	order := func(a, b tagMemo) int { return memoKey{a.At, a.id}.compare(memoKey{b.At, b.id}) }
	if !slices.IsSortedFunc(ms, order) {
		slices.SortStableFunc(ms, order)
	}
	return slices.CompactFunc(ms, func(a, b tagMemo) bool { return a.At == b.At && a.id == b.id })
}

// MarshalJSON and UnmarshalJSON keep the JSON of snapshots and entries
// written before (an object by id).
func (t tagMemos) MarshalJSON() ([]byte, error) {
	m := make(map[uint64]*tagMemo, t.Len())
	for x := range t.all() {
		m[x.id] = &x
	}
	return json.Marshal(m)
}

func (t *tagMemos) UnmarshalJSON(b []byte) error {
	var m map[uint64]*tagMemo
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var ms []tagMemo
	for id, x := range m {
		if x != nil {
			x.id = id
			ms = append(ms, *x)
		}
	}
	*t = packMemos(sortMemos(ms))
	return nil
}

// withTag records how the event (at, id) was tagged, unless it has no
// uuid (id 0) or was not tagged.
func withTag(tags tagMemos, id uint64, at int64, ev *evidence) tagMemos {
	if id == 0 || ev == nil {
		return tags
	}
	m := tagMemo{id: id, At: at, Count: int32(min(ev.count, math.MaxInt32)), Opening: ev.opening}
	m.setLists(ev.values, ev.sequence)
	tags.put(m)
	return tags
}
