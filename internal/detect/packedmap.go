package detect

import (
	"encoding/binary"
	"hash/maphash"
	"iter"
	"math/bits"
	"math/rand/v2"
)

// packedMap maps string keys to string values held in byte arenas: the
// frozen keys of a shard and the remembered values (state_frozen.go,
// state_previous.go). A million users leave millions of such entries,
// most of them idle; in a Go map each costs a slot of two string headers
// (about 50 bytes with the map's spare room), its bytes rounded up to an
// allocation size class, and the garbage collector's scan of both. Here an
// entry costs its bytes, packed one after another in chunks, and an
// 8-byte slot; the chunks hold no pointers, so the collector never scans
// them.
//
// Written bytes are never written again: Get's views of a key or value
// stay valid however the map changes later (a replaced or deleted
// record's chunk lives on while a view refers to it). Compaction copies
// the live records into new chunks when more than half of the bytes are
// dead.
//
// A packedMap is not safe for concurrent use (its shard's lock guards it).
type packedMap struct {
	// slots is an open-addressing table (linear probing) of tag<<40 | ref:
	// tag is the key hash's top 24 bits with the highest set, ref is the
	// record's chunk<<16 | offset. 0 is an empty slot, tombstone a
	// deleted one.
	slots  []uint64
	chunks [][]byte
	fill   int // the chunk records are appended to
	live   int // keys held
	used   int // slots not empty: keys and tombstones
	bytes  int // bytes of all records written to chunks
	dead   int // bytes of records replaced or deleted
}

const (
	tombstone = 1
	// Chunks grow from packedFirstChunk to packedMaxChunk bytes (a map of a
	// few keys wastes little); a record larger than packedMaxChunk/4 gets
	// a chunk of its own. Offsets are 16 bits, so a shared chunk is at
	// most 64 KiB.
	packedFirstChunk = 256
	packedMaxChunk   = 32 << 10
)

var packedSeed = maphash.MakeSeed()

const refBits = 40

func packedTag(key string) (tag uint64, h uint64) {
	h = maphash.String(packedSeed, key)
	return (h | 1<<63) &^ (1<<refBits - 1), h
}

func refOf(slot uint64) uint64 { return slot & (1<<refBits - 1) }

// Len is the number of keys.
func (m *packedMap) Len() int { return m.live }

// record returns the key and value of the record at ref.
func (m *packedMap) record(chunks [][]byte, ref uint64) (key, val string) {
	b := chunks[ref>>16][ref&0xffff:]
	kn, n := binary.Uvarint(b)
	b = b[n:]
	key, b = bytesView(b[:kn]), b[kn:]
	vn, n := binary.Uvarint(b)
	return key, bytesView(b[n : n+int(vn)])
}

// find returns the slot index holding key, or -1.
func (m *packedMap) find(key string) int {
	if m.live == 0 {
		return -1
	}
	tag, h := packedTag(key)
	mask := len(m.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := m.slots[i]
		switch {
		case s == 0:
			return -1
		case s&^(1<<refBits-1) == tag:
			if k, _ := m.record(m.chunks, refOf(s)); k == key {
				return i
			}
		}
	}
}

// Get returns key's value, a view of the map's bytes.
func (m *packedMap) Get(key string) (string, bool) {
	i := m.find(key)
	if i < 0 {
		return "", false
	}
	_, v := m.record(m.chunks, refOf(m.slots[i]))
	return v, true
}

// Delete removes key and reports whether it was held. It may be called
// while ranging over the map.
func (m *packedMap) Delete(key string) bool {
	i := m.find(key)
	if i < 0 {
		return false
	}
	m.dead += m.recordLen(refOf(m.slots[i]))
	m.slots[i] = tombstone
	m.live--
	return true
}

func (m *packedMap) recordLen(ref uint64) int {
	k, v := m.record(m.chunks, ref)
	return uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
}

func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

// Put makes key's value n bytes, returned for the caller to fill before
// any other call on the map, and reports whether key is new (else its
// value is replaced). Put must not be called while ranging over the map.
func (m *packedMap) Put(key string, n int) (val []byte, isNew bool) {
	m.tidy(1)
	size := uvarintLen(len(key)) + len(key) + uvarintLen(n) + n
	ref, b := m.alloc(size)
	b = binary.AppendUvarint(b[:0], uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(n))
	val = b[len(b) : len(b)+n : len(b)+n]

	tag, h := packedTag(key)
	mask := len(m.slots) - 1
	free := -1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := m.slots[i]
		switch {
		case s == tombstone:
			if free < 0 {
				free = i
			}
			continue
		case s == 0:
			if free < 0 {
				free = i
				m.used++
			}
			m.slots[free] = tag | ref
			m.live++
			return val, true
		case s&^(1<<refBits-1) == tag:
			if k, _ := m.record(m.chunks, refOf(s)); k == key {
				m.dead += m.recordLen(refOf(s))
				m.slots[i] = tag | ref
				return val, false
			}
		}
	}
}

// alloc reserves size bytes in the chunks.
func (m *packedMap) alloc(size int) (ref uint64, b []byte) {
	m.bytes += size
	if size > packedMaxChunk/4 { // a chunk of its own
		m.chunks = append(m.chunks, make([]byte, size))
		return uint64(len(m.chunks)-1) << 16, m.chunks[len(m.chunks)-1]
	}
	if len(m.chunks) == 0 || cap(m.chunks[m.fill])-len(m.chunks[m.fill]) < size {
		// Chunks of half the live bytes grow with a growing map and, once
		// it churns (values replaced, compacted when half are dead), leave
		// little unused.
		live := m.bytes - m.dead
		next := max(min(max(live/2, packedFirstChunk), packedMaxChunk), size)
		m.chunks = append(m.chunks, make([]byte, 0, next))
		m.fill = len(m.chunks) - 1
	}
	c := m.chunks[m.fill]
	off := len(c)
	m.chunks[m.fill] = c[:off+size]
	return uint64(m.fill)<<16 | uint64(off), c[off : off+size]
}

// tidy makes room for more keys: it grows the table (or clears its
// tombstones) and compacts the chunks when over half their bytes are
// dead. It must not be called while ranging over the map.
func (m *packedMap) tidy(more int) {
	if m.live == 0 {
		if m.used > 0 || len(m.chunks) > 0 {
			*m = packedMap{} // all deleted: free everything
		}
		if more == 0 {
			return
		}
	}
	if len(m.slots) == 0 {
		m.slots = make([]uint64, 8)
	}
	compact := m.dead > m.bytes/2 && m.dead >= 4<<10
	if (m.used+more)*4 <= len(m.slots)*3 && !compact {
		return
	}
	size := 8 // at most half full after a rebuild, which shrinks a table emptied by expiry
	for (m.live+more)*2 > size {
		size *= 2
	}
	old, oldChunks := m.slots, m.chunks
	m.slots, m.used = make([]uint64, size), 0
	if compact {
		m.chunks, m.fill, m.bytes, m.dead = nil, 0, 0, 0
	}
	mask := size - 1
	for _, s := range old {
		if s <= tombstone {
			continue
		}
		ref := refOf(s)
		if compact {
			k, v := m.record(oldChunks, ref)
			var b []byte
			ref, b = m.alloc(uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v))
			b = binary.AppendUvarint(b[:0], uint64(len(k)))
			b = append(b, k...)
			b = binary.AppendUvarint(b, uint64(len(v)))
			copy(b[len(b):len(b)+len(v)], v)
		}
		k, _ := m.record(m.chunks, ref)
		_, h := packedTag(k)
		i := int(h) & mask
		for m.slots[i] != 0 {
			i = (i + 1) & mask
		}
		m.slots[i] = s&^(1<<refBits-1) | ref
		m.used++
	}
}

// All ranges over the keys and values, from a random place (as Go's maps
// do; eviction samples rely on it). The loop may Delete, not Put.
func (m *packedMap) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		if m.live == 0 {
			return
		}
		slots, chunks := m.slots, m.chunks
		start := rand.IntN(len(slots))
		for j := range slots {
			s := slots[(start+j)&(len(slots)-1)]
			if s <= tombstone {
				continue
			}
			if !yield(m.record(chunks, refOf(s))) {
				return
			}
		}
	}
}

// reserve sizes an empty map's table for n keys (a hint: restores know
// how many keys they will add).
func (m *packedMap) reserve(n int) {
	if m.used > 0 || n <= 0 {
		return
	}
	size := 8
	for size*3 < n*4 {
		size *= 2
	}
	m.slots = make([]uint64, size)
}
