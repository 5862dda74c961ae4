package detect

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// StateFile keeps an engine's state in files that are never behind the
// events the engine has passed on: a snapshot, written every so often, and
// a journal of the changes of every batch since, appended and fsynced
// before the batch moves on (Commit). A crash at any instant therefore
// loses no counted event whose batch left the processor: the input's
// cursor only moves past a batch once it was acknowledged downstream, so
// what is re-read after a restart is at most what the state already holds
// or what was never committed — and an event counted twice is counted once
// by uuid.
//
// Files: <path> (the snapshot, replaced atomically) and <path>.journal.<n>,
// n the sequence number of its first commit. A snapshot records the last
// commit it holds; restoring replays only later commits, in order, and a
// commit torn by a crash ends its journal.
type StateFile struct {
	path   string
	engine *Engine

	mu  sync.Mutex // commits and journal rotation
	seq uint64     // the last commit
	cur *journal
	// unwritten are changes taken for a commit that failed: the next commit
	// writes them first (a key's later value after its earlier one).
	unwritten []Change
}

// OpenStateFile restores the engine's state from path and its journals,
// and opens a new journal. The engine must track changes
// (EngineOptions.TrackChanges). It returns how many rules the snapshot
// restored and how many journal commits were replayed over it.
func OpenStateFile(path string, e *Engine) (f *StateFile, restored, replayed int, err error) {
	if !e.track {
		return nil, 0, 0, errors.New("state file: the engine does not track changes (EngineOptions.TrackChanges)")
	}
	f = &StateFile{path: path, engine: e}
	var snapSeq uint64
	if r, err := os.Open(path); err == nil {
		restored, snapSeq, err = e.readSnapshot(r)
		r.Close()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("state snapshot %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, 0, fmt.Errorf("opening state snapshot: %w", err)
	}
	f.seq = snapSeq
	if replayed, err = f.replay(snapSeq); err != nil {
		return nil, 0, 0, err
	}
	if _, err := e.takeChanges(); err != nil { // restoring marked nothing; start clean
		return nil, 0, 0, err
	}
	if f.cur, err = createJournal(f.journalPath(f.seq + 1)); err != nil {
		return nil, 0, 0, err
	}
	return f, restored, replayed, nil
}

func (f *StateFile) journalPath(first uint64) string {
	return f.path + ".journal." + strconv.FormatUint(first, 10)
}

// journals lists the journal files, oldest first.
func (f *StateFile) journals() ([]string, error) {
	matches, err := filepath.Glob(f.path + ".journal.*")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(matches, func(a, b string) int { return cmp.Compare(journalFirst(a), journalFirst(b)) })
	return matches, nil
}

// journalFirst is the sequence number of a journal's first commit, from its
// name (<path>.journal.<n>).
func journalFirst(path string) uint64 {
	n, _ := strconv.ParseUint(path[strings.LastIndexByte(path, '.')+1:], 10, 64)
	return n
}

// replay applies the commits after snapSeq, in order.
func (f *StateFile) replay(snapSeq uint64) (int, error) {
	paths, err := f.journals()
	if err != nil {
		return 0, err
	}
	latest := map[string][]byte{}
	watermark := int64(minTime)
	replayed := 0
	for _, p := range paths {
		commits, _, err := readJournal(p)
		if err != nil {
			return 0, fmt.Errorf("reading state journal %s: %w", p, err)
		}
		for _, c := range commits {
			if c.seq <= snapSeq {
				continue
			}
			for _, ch := range c.changes {
				latest[string(ch.Key)] = ch.Value
			}
			watermark = max(watermark, c.watermark)
			f.seq = max(f.seq, c.seq)
			replayed++
		}
	}
	if _, err := f.engine.restoreEntries(latest); err != nil {
		return 0, fmt.Errorf("replaying state journal: %w", err)
	}
	f.engine.restoreWatermark(watermark)
	return replayed, nil
}

// Commit appends the state changes since the last commit to the journal
// and syncs it. Call it after a batch is evaluated and before it moves on.
func (f *StateFile) Commit() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	changes, err := f.engine.takeChanges()
	if err != nil {
		return err
	}
	changes = append(f.unwritten, changes...)
	f.unwritten = nil
	if len(changes) == 0 {
		return nil
	}
	if err := f.cur.append(f.seq+1, f.engine.watermark.Load(), changes); err != nil {
		f.unwritten = changes
		return err
	}
	f.seq++
	return nil
}

// Snapshot writes the whole state and drops the journals it covers. Batches
// may be evaluated and committed meanwhile: their commits go to a new
// journal, replayed over this snapshot if need be.
func (f *StateFile) Snapshot() error {
	f.mu.Lock()
	covered := f.seq
	old := f.cur
	next, err := createJournal(f.journalPath(covered + 1))
	if err == nil {
		f.cur = next
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if err := old.close(); err != nil {
		return fmt.Errorf("closing state journal: %w", err)
	}
	if err := f.engine.saveSnapshot(f.path, covered); err != nil {
		return err
	}
	return f.dropJournalsUpTo(covered)
}

// dropJournalsUpTo removes the journals whose commits are all at or before
// seq (every journal but the one after it).
func (f *StateFile) dropJournalsUpTo(seq uint64) error {
	paths, err := f.journals()
	if err != nil {
		return err
	}
	keep := f.journalPath(seq + 1)
	for _, p := range paths {
		if p == keep {
			continue
		}
		if journalFirst(p) > seq+1 {
			continue // a journal started after this snapshot's rotation
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing state journal: %w", err)
		}
	}
	return nil
}

// Close commits what is left, writes a last snapshot and closes the journal.
func (f *StateFile) Close() error {
	err := f.Commit()
	if err == nil {
		err = f.Snapshot()
	}
	return errors.Join(err, f.cur.close())
}
