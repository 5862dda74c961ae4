package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// Changelog and journal values written as JSON before the compact encoding
// are still restored.
func TestChangelogReadsJSONEntries(t *testing.T) {
	rs := compileRules(t, correlationRules...)
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	feedHalf(t, e)
	changes, err := e.takeChanges()
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string][]byte{}
	for _, c := range changes {
		if strings.HasPrefix(string(c.Key), orgMarkPrefix) { // a number, as ever
			entries[string(c.Key)] = c.Value
			continue
		}
		if c.Value[0] != entryFormat {
			t.Fatalf("entry %q not compact: %q", c.Key, c.Value)
		}
		var ent stateEntry
		if err := decodeEntryValue(c.Key[0], c.Value, &ent); err != nil {
			t.Fatal(err)
		}
		ent.Value = ent.value()
		old, err := json.Marshal(&ent) // what entries were before
		if err != nil {
			t.Fatal(err)
		}
		entries[string(c.Key)] = old
	}
	restored := NewEngine(rs, EngineOptions{TrackChanges: true})
	if stale, err := restored.restoreEntries(entries); err != nil || len(stale) != 0 {
		t.Fatalf("stale %v, err %v", stale, err)
	}
	checkSecondHalf(t, restored)
}

// jsonSnapshotV2 writes the engine's state as version 2 snapshots were.
func jsonSnapshotV2(t *testing.T, e *Engine) []byte {
	snap := snapshot{Version: 2, Watermark: e.watermark.Load(), Rules: map[string]*ruleSnapshot{}}
	for _, r := range e.active.Load().rules {
		s := r.state
		rs := &ruleSnapshot{Fingerprint: r.fingerprint, Counts: map[string]*countKey{}, Dedup: map[string][]int64{},
			Previous: map[string]remembered{}, Sequences: map[string]*seqKey{}, FirstSeen: map[string]*firstKey{}, Absences: map[string]*absKey{}}
		for i := range stateShards {
			maps.Copy(rs.Counts, s.threshold[i].all())
			for k, o := range s.dedup[i].openings {
				rs.Dedup[k] = o.times
			}
			for k, held := range s.previous[i].values.All() {
				v := prevOf(held)
				ent := stateEntry{At: v.at, prevEnc: stringBytes(v.enc)}
				rs.Previous[k] = remembered{At: v.at, Value: ent.value()}
			}
			maps.Copy(rs.Sequences, s.sequence[i].all())
			maps.Copy(rs.FirstSeen, s.firstSeen[i].all())
			maps.Copy(rs.Absences, s.absence.shards[i].keys)
		}
		snap.Rules[r.ID] = rs
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotReadsJSONVersion2(t *testing.T) {
	e, _ := newTestEngine(t, append(correlationRules, previousRule)...)
	feedHalf(t, e)
	process(t, e, login(0, "u", "Paris"))
	restarted, _ := newTestEngine(t, append(correlationRules, previousRule)...)
	if n, err := restarted.ReadSnapshot(bytes.NewReader(jsonSnapshotV2(t, e))); err != nil || n != len(correlationRules)+1 {
		t.Fatalf("restored %d rules, err %v", n, err)
	}
	checkSecondHalf(t, restarted)
	if d := detOf(process(t, restarted, login(time.Hour, "u", "Rome")), "P"); d == nil {
		t.Fatal("previous forgotten")
	}
}

// Remembered values of every JSON type survive the compact encoding.
func TestRememberedValueRoundTrip(t *testing.T) {
	v := map[string]any{"s": "x", "n": 1.5, "t": true, "f": false, "z": nil, "l": []any{"a", 2.0, map[string]any{}}}
	ent := &stateEntry{Fingerprint: "fp", At: 42, Value: v}
	got := entryRoundTrip(t, entryPrevious, ent)
	got.Value = got.value()
	want, _ := json.Marshal(ent)
	if have, _ := json.Marshal(&got); !bytes.Equal(have, want) {
		t.Fatalf("got %s, want %s", have, want)
	}
}

// A remembered value's event and history survive the entry encoding; an
// entry written before they existed decodes without them.
func TestRememberedHistoryRoundTrip(t *testing.T) {
	ent := &stateEntry{Fingerprint: "fp", At: 42, prevEnc: []byte{valString, 1, 'x'}, prevID: 7, prevPruned: true,
		prevOlder: []prevRecord{{at: 40, id: 5, enc: string([]byte{valTrue})}, {at: 41, id: 0, enc: string([]byte{valNull})}}}
	got := entryRoundTrip(t, entryPrevious, ent)
	if got.At != 42 || !bytes.Equal(got.prevEnc, ent.prevEnc) || got.prevID != 7 || !got.prevPruned || !reflect.DeepEqual(got.prevOlder, ent.prevOlder) {
		t.Fatalf("got %+v, want %+v", got, ent)
	}
	plain := entryRoundTrip(t, entryPrevious, &stateEntry{Fingerprint: "fp", At: 42, prevEnc: ent.prevEnc})
	if plain.prevID != 0 || plain.prevOlder != nil || plain.prevPruned {
		t.Fatalf("an entry without history: %+v", plain)
	}
}

// entryRoundTrip encodes ent as an entry value of kind and decodes it.
func entryRoundTrip(t *testing.T, kind byte, ent *stateEntry) stateEntry {
	t.Helper()
	b, err := encodeEntryValue(kind, ent)
	if err != nil {
		t.Fatal(err)
	}
	var got stateEntry
	if err := decodeEntryValue(kind, b, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// seedEntries are compact entries of every kind, for the fuzzers.
func seedEntries(t testing.TB) []Change {
	rs := compileRules(t, append(correlationRules, previousRule, dedupRule)...)
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	for _, raw := range [][]byte{
		of(0, "f1", "fail", "ann", nil), spray(0, "s1", "a"), deny(0, "d1"), approve(time.Minute, "a1"),
		loginOn(0, "l1", "mac"), start(0, "st1"), login(0, "u", "Paris"),
		ev(0, map[string]any{"kind": "login", "user": "z"}),
		// A remembered value with its event and history (state_previous.go).
		ev(0, map[string]any{"kind": "login", "user": "h", "city": "Oslo", "uuid": "h1"}),
		ev(time.Minute, map[string]any{"kind": "login", "user": "h", "city": "Rome", "uuid": "h2"}),
	} {
		processIn(t, e, "acme", raw)
	}
	changes, err := e.takeChanges()
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

// Untrusted entries (a changelog topic, a journal on disk) error; they
// never panic or allocate beyond their size.
func FuzzDecodeEntryValue(f *testing.F) {
	for _, c := range seedEntries(f) {
		f.Add(c.Key[0], c.Value)
	}
	f.Fuzz(func(t *testing.T, kind byte, v []byte) {
		var ent stateEntry
		_ = decodeEntryValue(kind, v, &ent)
	})
}

func FuzzReadSnapshot(f *testing.F) {
	srcs := append(correlationRules, previousRule, dedupRule)
	e, _ := newTestEngine(f, srcs...)
	feedHalf(f, e)
	var buf bytes.Buffer
	if err := e.WriteSnapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(snapshotMagic + "\x03"))
	f.Add([]byte(snapshotMagic + "\x04"))
	rs := compileRules(f, srcs...)
	f.Fuzz(func(t *testing.T, b []byte) {
		e := NewEngine(rs, EngineOptions{})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := e.ReadSnapshot(bytes.NewReader(b))
		runtime.ReadMemStats(&after)
		if err == nil {
			// What a restore accepted and kept frozen decodes (a
			// failure would panic when the key is next used).
			for _, r := range e.active.Load().rules {
				for i := range stateShards {
					r.state.threshold[i].all()
					r.state.sequence[i].all()
					r.state.firstSeen[i].all()
				}
			}
		}
		// A fresh rule state and the read buffers cost a fixed amount;
		// beyond that, allocation follows the input's size.
		if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20+64*uint64(len(b)) {
			t.Fatalf("%d bytes of input allocated %d", len(b), n)
		}
	})
}

// restoreRatio fills an engine of the pack-like rules with keys per user,
// and measures a restore's allocations against the snapshot's size.
func restoreRatio(t testing.TB, users int) (size int, ratio float64) {
	srcs := []string{thresholdRule, previousRule, dedupRule, firstSeenRule}
	e := NewEngine(compileRules(t, srcs...), EngineOptions{MaxStateKeys: -1})
	for i := range users {
		u := fmt.Sprint("user", i, "@example.com")
		at := time.Duration(i) * time.Millisecond
		process(t, e, fail(at, u))
		process(t, e, login(at, u, "Paris"))
		process(t, e, of(at, fmt.Sprint("l", i), "login", u, map[string]any{"device": "mac"}))
	}
	var buf bytes.Buffer
	if err := e.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	rs := compileRules(t, srcs...)
	fresh := NewEngine(rs, EngineOptions{MaxStateKeys: -1})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := fresh.ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return buf.Len(), float64(after.TotalAlloc-before.TotalAlloc) / float64(buf.Len())
}

func TestRestoreAllocation(t *testing.T) {
	if testkit.Race {
		t.Skip("allocation bounds are checked without -race, whose runtime allocates for itself")
	}
	size, ratio := restoreRatio(t, 20000)
	t.Logf("snapshot %d bytes, restore allocated %.2f× its size", size, ratio)
	// What a restore allocates is, but for the read buffer, the state it
	// rebuilds: threshold and first_seen keys stay frozen (their bytes and
	// a map slot), remembered values and dedup openings become maps and
	// strings; about 2.6× the snapshot (JSON snapshots allocated 5–16×).
	if ratio > 3.2 {
		t.Fatalf("restore allocated %.2f× the snapshot's size", ratio)
	}
}

// State written before distinct groups numbered their arrivals (snapshot
// version 3, entry format 1) is read: its memos keep their listed values,
// and new events are counted and named on top.
func TestDistinctStateOfFormat1(t *testing.T) {
	rs := compileRules(t, distinctRule)
	snap, err := os.ReadFile(filepath.Join("testdata", "state-format1", "distinct.snapshot"))
	must(t, err)
	entry, err := os.ReadFile(filepath.Join("testdata", "state-format1", "distinct.entry"))
	must(t, err)
	fromSnap := NewEngine(rs, EngineOptions{})
	if n, err := fromSnap.ReadSnapshot(bytes.NewReader(snap)); n != 1 || err != nil {
		t.Fatalf("snapshot: restored %d rules, err %v", n, err)
	}
	fromEntry := NewEngine(rs, EngineOptions{})
	if stale, err := fromEntry.restoreEntries(map[string][]byte{"t\x00DC\x00203.0.113.9": entry}); err != nil || len(stale) != 0 {
		t.Fatalf("entry: stale %v, err %v", stale, err)
	}
	for name, e := range map[string]*Engine{"snapshot": fromSnap, "entry": fromEntry} {
		if d := detOf(process(t, e, spray(2*time.Minute, "3", "c")), "DC"); d == nil || d.Count != 3 || !slices.Equal(d.Values, []string{"a", "b", "c"}) {
			t.Errorf("%s: re-delivered third failure: %+v, want its first tag (3: a b c)", name, d)
		}
		fifth := spray(3*time.Minute, "5", "e")
		d := detOf(process(t, e, fifth), "DC")
		if d == nil || d.Count != 5 || !slices.Equal(d.Values, []string{"a", "b", "c", "d", "e"}) {
			t.Fatalf("%s: a new user on restored state: %+v", name, d)
		}
		if again := detOf(process(t, e, fifth), "DC"); again == nil || !slices.Equal(again.Values, d.Values) {
			t.Errorf("%s: re-delivered new event: %+v, first %+v", name, again, d)
		}
	}
}
