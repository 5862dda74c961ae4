package detect

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestTagMemosMatchSortedSlice puts memos mostly in time order, some out
// of it, some again (replacing), and drops prefixes, checking the packed
// memos against a sorted slice after every step: every memo found whole,
// absent ones not found, the order, the length; a clone taken midway
// keeps what it held while the original changes; and the codec round
// trip gives the same memos.
func TestTagMemosMatchSortedSlice(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 11))
		var packed tagMemos
		var want []tagMemo
		var clone tagMemos
		var cloneWant []tagMemo
		at := int64(1_700_000_000_000_000_000)
		for step := range 3000 {
			switch op := rng.IntN(20); {
			case op < 14: // a new memo, late now and then
				at += int64(rng.IntN(3)) * 1e9
				t0 := at
				if rng.IntN(4) == 0 {
					t0 -= int64(rng.IntN(200)) * 1e9
				}
				m := randomMemo(rng, t0, rng.Uint64()|1)
				packed.put(m)
				want = putSorted(want, m)
			case op < 17 && len(want) > 0: // the same event again, a new memo
				old := want[rng.IntN(len(want))]
				m := randomMemo(rng, old.At, old.id)
				packed.put(m)
				want = putSorted(want, m)
			case op < 18 && len(want) > 0:
				cut := want[rng.IntN(len(want))].At - int64(rng.IntN(2))
				if rng.IntN(2) == 0 {
					packed.dropThrough(cut)
					want = slices.DeleteFunc(want, func(m tagMemo) bool { return m.At <= cut })
				} else {
					packed.dropBefore(cut)
					want = slices.DeleteFunc(want, func(m tagMemo) bool { return m.At < cut })
				}
			case op == 19:
				clone, cloneWant = packed.clone(), slices.Clone(want)
			}
			where := fmt.Sprintf("seed %d step %d", seed, step)
			checkMemos(t, where, packed, want)
			if step%50 == 0 {
				checkMemos(t, where+" (clone)", clone, cloneWant)
				var e encoder
				encodeTags(&e, packed, nil)
				d := decoder{b: e.b, format: entryFormat}
				checkMemos(t, where+" (decoded)", decodeTags(&d, nil), want)
			}
		}
		if packed.Len() > 0 && len(packed) > (packed.Len()+maxMemoBlock-1)/maxMemoBlock*2+1 {
			t.Errorf("seed %d: %d memos in %d blocks", seed, packed.Len(), len(packed))
		}
	}
}

func randomMemo(rng *rand.Rand, at int64, id uint64) tagMemo {
	m := tagMemo{id: id, At: at, Count: int32(rng.IntN(1000)), Opening: at - int64(rng.IntN(600))*1e9}
	if rng.IntN(2) == 0 {
		m.Seen = rng.Uint64N(1 << 40)
		m.From, m.To = at-int64(rng.IntN(600))*1e9, at+int64(rng.IntN(3))*1e9
	}
	if rng.IntN(10) == 0 {
		m.setLists([]string{"a", fmt.Sprint(rng.IntN(9))}, nil)
	}
	if rng.IntN(10) == 0 {
		m.setLists(nil, []string{"uuid-1", "uuid-2"})
	}
	return m
}

func putSorted(ms []tagMemo, m tagMemo) []tagMemo {
	i, found := slices.BinarySearchFunc(ms, memoKey{m.At, m.id}, func(x tagMemo, k memoKey) int { return memoKey{x.At, x.id}.compare(k) })
	if found {
		ms[i] = m
		return ms
	}
	return slices.Insert(ms, i, m)
}

func checkMemos(t *testing.T, where string, packed tagMemos, want []tagMemo) {
	t.Helper()
	if packed.Len() != len(want) {
		t.Fatalf("%s: %d memos, want %d", where, packed.Len(), len(want))
	}
	got := slices.Collect(packed.all())
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: memos differ:\n got %+v\nwant %+v", where, got, want)
	}
	for i := range want {
		m := packed.get(want[i].At, want[i].id)
		if m == nil || !reflect.DeepEqual(*m, want[i]) {
			t.Fatalf("%s: get(%d, %d) = %+v, want %+v", where, want[i].At, want[i].id, m, want[i])
		}
		if packed.get(want[i].At, want[i].id^2) != nil && !slices.ContainsFunc(want, func(x tagMemo) bool { return x.At == want[i].At && x.id == want[i].id^2 }) {
			t.Fatalf("%s: get found a memo never put", where)
		}
	}
	if at, ok := packed.firstAt(); ok != (len(want) > 0) || ok && at != want[0].At {
		t.Fatalf("%s: firstAt = %d, %v", where, at, ok)
	}
}
