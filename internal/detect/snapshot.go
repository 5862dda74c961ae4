package detect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// snapshotVersion is the last JSON snapshot layout (snapshots are compact
// since version 3, snapshot_binary.go). Versions 1 (before distinct counts,
// sequences, first sightings, absences and uuids: its threshold times
// become groups of events without identity) and 2 are still read.
const snapshotVersion = 2

// snapshot is the JSON state file written before version 3: per rule (id
// and file fingerprint), its state of each kind.
type snapshot struct {
	Version   int                      `json:"version"`
	Watermark int64                    `json:"watermark"`
	Rules     map[string]*ruleSnapshot `json:"rules"`
	// JournalSeq: every journal commit up to this one is in the snapshot
	// (statefile.go); later ones are replayed over it.
	JournalSeq uint64 `json:"journal_seq,omitempty"`
}

type ruleSnapshot struct {
	Fingerprint string                `json:"fingerprint"`
	Threshold   map[string][]int64    `json:"threshold,omitempty"` // version 1's threshold groups
	Counts      map[string]*countKey  `json:"counts,omitempty"`
	Dedup       map[string][]int64    `json:"dedup,omitempty"`
	Previous    map[string]remembered `json:"previous,omitempty"`
	Sequences   map[string]*seqKey    `json:"sequences,omitempty"`
	FirstSeen   map[string]*firstKey  `json:"first_seen,omitempty"`
	Absences    map[string]*absKey    `json:"absences,omitempty"`
}

// WriteSnapshot writes the state of every active rule (snapshot_binary.go).
func (e *Engine) WriteSnapshot(w io.Writer) error { return e.writeSnapshot(w, 0) }

// ReadSnapshot restores state written by WriteSnapshot into the rules that
// are unchanged since (same id and file fingerprint); others start fresh.
// It returns how many rules were restored.
func (e *Engine) ReadSnapshot(r io.Reader) (int, error) {
	n, _, err := e.readSnapshot(r)
	return n, err
}

func (e *Engine) readSnapshot(r io.Reader) (restored int, journalSeq uint64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if first, err := br.Peek(1); err == nil && first[0] != '{' {
		return e.readBinarySnapshot(br, sizeOf(r))
	}
	return e.readJSONSnapshot(br)
}

// sizeOf is the number of bytes r holds, when it says (0: unknown).
func sizeOf(r io.Reader) int64 {
	switch x := r.(type) {
	case interface{ Len() int }:
		return int64(x.Len())
	case *os.File:
		if st, err := x.Stat(); err == nil && st.Mode().IsRegular() {
			return st.Size()
		}
	}
	return 0
}

// readJSONSnapshot reads the JSON snapshots written before the compact
// encoding (versions 1 and 2).
func (e *Engine) readJSONSnapshot(r io.Reader) (restored int, journalSeq uint64, err error) {
	var snap snapshot
	if err := json.NewDecoder(r).Decode(&snap); err != nil {
		return 0, 0, fmt.Errorf("decoding state snapshot: %w", err)
	}
	if snap.Version != snapshotVersion && snap.Version != 1 {
		return 0, 0, fmt.Errorf("state snapshot version %d, want %d (or 1)", snap.Version, snapshotVersion)
	}
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	for _, r := range e.active.Load().rules {
		rs, ok := snap.Rules[r.ID]
		if !ok || rs.Fingerprint != r.fingerprint {
			continue
		}
		r.state.restore(rs)
		r.state.absence.restoreDeadlines(r.limits.abs)
		restored++
	}
	e.restoreWatermark(snap.Watermark)
	return restored, snap.JournalSeq, nil
}

func (s *ruleState) restore(rs *ruleSnapshot) {
	for k, v := range rs.Threshold {
		s.restoreEntry(entryThreshold, k, &stateEntry{Times: v})
	}
	for k, v := range rs.Counts {
		s.restoreEntry(entryThreshold, k, &stateEntry{Count: v})
	}
	for k, v := range rs.Dedup {
		s.restoreEntry(entryDedup, k, &stateEntry{Times: v})
	}
	for k, v := range rs.Previous {
		s.restoreEntry(entryPrevious, k, &stateEntry{At: v.At, Value: v.Value})
	}
	for k, v := range rs.Sequences {
		s.restoreEntry(entrySequence, k, &stateEntry{Seq: v})
	}
	for k, v := range rs.FirstSeen {
		s.restoreEntry(entryFirstSeen, k, &stateEntry{First: v})
	}
	for k, v := range rs.Absences {
		s.restoreEntry(entryAbsence, k, &stateEntry{Abs: v})
	}
}

// SaveSnapshot writes the state to path atomically: a temporary file in the
// same directory, fsynced, renamed over path, and the directory fsynced.
func (e *Engine) SaveSnapshot(path string) error { return e.saveSnapshot(path, 0) }

func (e *Engine) saveSnapshot(path string, journalSeq uint64) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating state snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := e.writeSnapshot(tmp, journalSeq); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing state snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing state snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing state snapshot: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadSnapshot restores state from path. A missing file is not an error.
func (e *Engine) LoadSnapshot(path string) (int, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("opening state snapshot: %w", err)
	}
	defer f.Close()
	return e.ReadSnapshot(f)
}

// PrepareStateDir creates the directory of a state file (0700: detection
// state names users and IPs) and checks that a snapshot can be written
// there, so that a bad path stops the pipeline at start instead of letting
// events flow while every save fails and a restart forgets everything.
func PrepareStateDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state_file %s: cannot create its directory %s: %w; create it or choose a writable path", path, dir, err)
	}
	probe, err := os.CreateTemp(dir, filepath.Base(path)+".probe-*")
	if err != nil {
		return fmt.Errorf("state_file %s: cannot write in its directory %s: %w; make it writable or choose another path", path, dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}
