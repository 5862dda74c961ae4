package detect

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPackedMapMatchesMap runs random puts, replacements, deletes (some
// while ranging) and big values against a Go map, checking every key,
// the length and a full range after each step; and that views taken
// before later changes still read what they read.
func TestPackedMapMatchesMap(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var m packedMap
		want := map[string]string{}
		type view struct{ k, v, wantV string }
		var views []view
		keys := 50 + int(seed)*400
		bigEvery := []int{200, 20, 5}[seed%3] // records with chunks of their own
		for step := range 6000 {
			k := fmt.Sprintf("k%d", rng.IntN(keys))
			switch op := rng.IntN(10); {
			case op < 5:
				n := rng.IntN(40)
				if rng.IntN(bigEvery) == 0 {
					n = packedMaxChunk/4 + rng.IntN(packedMaxChunk) // a chunk of its own
				}
				v := strings.Repeat(string(rune('a'+step%26)), n)
				m.Set(k, v)
				want[k] = v
			case op < 7:
				_, had := want[k]
				if got := m.Delete(k); got != had {
					t.Fatalf("seed %d step %d: Delete(%q) = %v, want %v", seed, step, k, got, had)
				}
				delete(want, k)
			case op < 8: // delete a third while ranging
				for k := range m.Keys() {
					if rng.IntN(3) == 0 {
						m.Delete(k)
						delete(want, k)
					}
				}
			default:
				if v, ok := m.Get(k); ok {
					views = append(views, view{k, v, want[k]})
				}
			}
			if m.Len() != len(want) {
				t.Fatalf("seed %d step %d: Len %d, want %d", seed, step, m.Len(), len(want))
			}
			if step%97 == 0 {
				checkPacked(t, &m, want)
			}
		}
		checkPacked(t, &m, want)
		for _, v := range views {
			if v.v != v.wantV {
				t.Fatalf("seed %d: a view of %q changed to %q, was %q", seed, v.k, v.v, v.wantV)
			}
		}
		for k := range want {
			m.Delete(k)
		}
		m.tidy(0)
		if len(m.chunks) != 0 || len(m.slots) != 0 {
			t.Fatalf("seed %d: emptied map keeps %d chunks, %d slots", seed, len(m.chunks), len(m.slots))
		}
	}
}

func checkPacked(t *testing.T, m *packedMap, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := m.Get(k); !ok || got != v {
			t.Fatalf("Get(%q) = %d bytes, %v; want %d bytes", k, len(got), ok, len(v))
		}
	}
	seen := map[string]bool{}
	for k, v := range m.All() {
		if seen[k] {
			t.Fatalf("All yields %q twice", k)
		}
		seen[k] = true
		if want[k] != v {
			t.Fatalf("All yields %q with %d bytes, want %d", k, len(v), len(want[k]))
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("All yields %d keys, want %d", len(seen), len(want))
	}
	if _, ok := m.Get("absent"); ok {
		t.Fatal("Get of an absent key found it")
	}
}

// TestPackedMapCompacts: replacing values over and over keeps the bytes
// held near the live ones.
func TestPackedMapCompacts(t *testing.T) {
	var m packedMap
	for i := range 100_000 {
		m.Set(fmt.Sprintf("user%d", i%100), strings.Repeat("x", 50))
	}
	held := 0
	for _, c := range m.chunks {
		held += cap(c)
	}
	if live := 100 * 60; held > 4*live+(16<<10) {
		t.Fatalf("chunks hold %d bytes for %d live", held, live)
	}
	if len(m.slots) > 512 {
		t.Fatalf("%d slots for 100 keys", len(m.slots))
	}
}

// FuzzPackedMap drives puts (small, large and chunk-sized values),
// deletes, deletes while ranging and tidies from the input's bytes,
// checking the map against a Go map after each.
func FuzzPackedMap(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0x13, 0x93, 0x53, 0xd3, 0x23, 0x41, 0x42, 0x43, 0x44, 0x93})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var m packedMap
		want := map[string]string{}
		for i, op := range ops {
			k := fmt.Sprintf("k%d", op&0x0f)
			switch op >> 4 {
			case 0, 1, 2, 3, 4, 5:
				n := int(op>>4) * 7
				if op>>4 == 5 {
					n = packedMaxChunk/4 + i // a chunk of its own
				}
				v := strings.Repeat(string(rune('a'+i%26)), n)
				m.Set(k, v)
				want[k] = v
			case 6, 7, 8, 9:
				m.Delete(k)
				delete(want, k)
			case 10:
				for k := range m.Keys() {
					m.Delete(k)
					delete(want, k)
				}
			default:
				m.tidy(int(op & 3))
			}
			checkPacked(t, &m, want)
		}
	})
}

// TestPackedMapShrinks: a table most of whose keys are deleted is rebuilt
// smaller once the dead bytes are compacted.
func TestPackedMapShrinks(t *testing.T) {
	var m packedMap
	for i := range 20_000 {
		m.Set(fmt.Sprintf("user%d", i), strings.Repeat("x", 40))
	}
	big := len(m.slots)
	for i := range 19_990 {
		m.Delete(fmt.Sprintf("user%d", i))
	}
	m.Set("one more", "x")
	if len(m.slots) >= big/100 {
		t.Fatalf("%d slots for %d keys (%d at the peak)", len(m.slots), m.Len(), big)
	}
	checkPacked(t, &m, func() map[string]string {
		want := map[string]string{"one more": "x"}
		for i := 19_990; i < 20_000; i++ {
			want[fmt.Sprintf("user%d", i)] = strings.Repeat("x", 40)
		}
		return want
	}())
}

// Keys ranges over the keys (see All).
func (m *packedMap) Keys() iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range m.All() {
			if !yield(k) {
				return
			}
		}
	}
}

// Set stores val for key (a copy).
func (m *packedMap) Set(key, val string) {
	b, _ := m.Put(key, len(val))
	copy(b, val)
}
