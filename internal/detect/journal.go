package detect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A journal is an append-only file of state commits: each the changes of
// one batch (Change: key, value; nil value deletes) with the engine's
// watermark, framed so that a commit torn by a crash is recognised and
// dropped on replay:
//
//	u64 seq | u64 watermark | u32 payload length | u32 CRC-32 of payload | payload
//	payload: (uvarint key length, key, varint value length (-1: delete), value)*
//
// Commits are fsynced before Commit returns.

const journalHeader = 24

// maxJournalRecord bounds one commit on replay (a garbled length must not
// allocate without limit).
const maxJournalRecord = 1 << 30

type journal struct {
	f *os.File
	w *bufio.Writer
	// size is the length of the whole commits written; torn is set when an
	// append failed part way, and the file is cut back to size before the
	// next one (a commit after torn bytes would never be read back).
	size int64
	torn bool
}

// createJournal starts the journal at path, the one of the commit after the
// last replayed: whatever a file there holds is a commit a crash tore (a
// whole one would have been replayed), so it is truncated, not appended to.
func createJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening state journal: %w", err)
	}
	return &journal{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// repair cuts a torn commit off.
func (j *journal) repair() error {
	if err := j.f.Truncate(j.size); err != nil {
		return fmt.Errorf("cutting a torn commit off the state journal: %w", err)
	}
	if _, err := j.f.Seek(j.size, io.SeekStart); err != nil {
		return fmt.Errorf("cutting a torn commit off the state journal: %w", err)
	}
	j.w.Reset(j.f)
	j.torn = false
	return nil
}

// append writes one commit and syncs it to disk.
func (j *journal) append(seq uint64, watermark int64, changes []Change) error {
	if j.torn {
		if err := j.repair(); err != nil {
			return err
		}
	}
	if err := j.write(seq, watermark, changes); err != nil {
		j.torn = true
		return err
	}
	return nil
}

func (j *journal) write(seq uint64, watermark int64, changes []Change) error {
	payload := encodeChanges(changes)
	var h [journalHeader]byte
	binary.LittleEndian.PutUint64(h[0:], seq)
	binary.LittleEndian.PutUint64(h[8:], uint64(watermark))
	binary.LittleEndian.PutUint32(h[16:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[20:], crc32.ChecksumIEEE(payload))
	if _, err := j.w.Write(h[:]); err != nil {
		return fmt.Errorf("writing state journal: %w", err)
	}
	if _, err := j.w.Write(payload); err != nil {
		return fmt.Errorf("writing state journal: %w", err)
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("writing state journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("syncing state journal: %w", err)
	}
	j.size += journalHeader + int64(len(payload))
	return nil
}

func (j *journal) close() error { return j.f.Close() }

func encodeChanges(changes []Change) []byte {
	var out []byte
	for _, c := range changes {
		out = binary.AppendUvarint(out, uint64(len(c.Key)))
		out = append(out, c.Key...)
		if c.Value == nil {
			out = binary.AppendVarint(out, -1)
			continue
		}
		out = binary.AppendVarint(out, int64(len(c.Value)))
		out = append(out, c.Value...)
	}
	return out
}

func decodeChanges(p []byte) ([]Change, error) {
	var out []Change
	for len(p) > 0 {
		kl, n := binary.Uvarint(p)
		if n <= 0 || uint64(len(p)-n) < kl {
			return nil, errors.New("bad key length")
		}
		p = p[n:]
		c := Change{Key: p[:kl]}
		p = p[kl:]
		vl, n := binary.Varint(p)
		if n <= 0 || vl < -1 || int64(len(p)-n) < vl {
			return nil, errors.New("bad value length")
		}
		p = p[n:]
		if vl >= 0 {
			c.Value = p[:vl]
			p = p[vl:]
		}
		out = append(out, c)
	}
	return out, nil
}

// journalCommit is one replayed commit.
type journalCommit struct {
	seq       uint64
	watermark int64
	changes   []Change
}

// readJournal returns the whole commits of a journal file in order, and
// the offset after the last one: a torn or garbled tail (a crash while
// appending) ends the journal there.
func readJournal(path string) ([]journalCommit, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []journalCommit
	var off int64
	for {
		var h [journalHeader]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return out, off, nil // end, or a torn header
		}
		n := binary.LittleEndian.Uint32(h[16:])
		if n > maxJournalRecord {
			return out, off, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil || crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(h[20:]) {
			return out, off, nil
		}
		changes, err := decodeChanges(payload)
		if err != nil {
			return out, off, nil
		}
		out = append(out, journalCommit{
			seq:       binary.LittleEndian.Uint64(h[0:]),
			watermark: int64(binary.LittleEndian.Uint64(h[8:])),
			changes:   changes,
		})
		off += journalHeader + int64(n)
	}
}
