package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/meta"
)

// checkpoint is what the input stores in the checkpoint cache: the next link to
// request, and the uuids of the last acknowledged page so events returned again
// after a resume are not passed on twice.
type checkpoint struct {
	Version int      `json:"v"`
	Seq     uint64   `json:"seq,omitempty"` // commit number: the newest of the slots wins
	Next    string   `json:"next"`
	UUIDs   []string `json:"uuids,omitempty"`
}

// checkpointSlots are the cache keys commits alternate between. A cache may
// not write atomically (Benthos' file cache truncates, then writes), so a
// crash mid-write can leave one key torn; the other still holds the commit
// before it, and the input resumes from that one page earlier.
func checkpointSlots(key string) [2]string {
	return [2]string{key, key + ".alt"}
}

const checkpointVersion = 1

func encodeCheckpoint(c checkpoint) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding checkpoint: %w", err)
	}
	return b, nil
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("stored checkpoint is not valid JSON: %w", err)
	}
	if c.Version != checkpointVersion {
		return c, fmt.Errorf("stored checkpoint has version %d, want %d", c.Version, checkpointVersion)
	}
	if c.Next == "" {
		return c, fmt.Errorf("stored checkpoint has no next link")
	}
	return c, nil
}

// loadCheckpoint reads both slots and returns the newest readable cursor;
// found is false when there is none.
func (in *systemLogInput) loadCheckpoint(ctx context.Context) (checkpoint, bool, error) {
	if in.cfg.checkpointCache == "" {
		return checkpoint{}, false, nil
	}
	var (
		best              checkpoint
		found, unreadable int
	)
	for _, key := range checkpointSlots(in.cfg.checkpointKey) {
		raw, err := in.getCheckpoint(ctx, key)
		if errors.Is(err, service.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return checkpoint{}, false, fmt.Errorf("reading the cursor %q from checkpoint_cache %q: %w", key, in.cfg.checkpointCache, err)
		}
		cp, err := decodeCheckpoint(raw)
		if err != nil {
			// A write torn by a crash: the other slot holds the commit before.
			unreadable++
			in.log.Warnf("Ignoring the unreadable cursor %q in checkpoint_cache %q: %v", key, in.cfg.checkpointCache, err)
			continue
		}
		if err := in.client.CheckLink(cp.Next); err != nil {
			return checkpoint{}, false, fmt.Errorf("cursor %q in checkpoint_cache %q belongs to another org: %w (use another checkpoint_key per org)", key, in.cfg.checkpointCache, err)
		}
		if found == 0 || cp.Seq > best.Seq {
			best = cp
		}
		found++
	}
	if found == 0 && unreadable > 0 {
		return checkpoint{}, false, fmt.Errorf("no readable cursor under %q in checkpoint_cache %q (delete it to start again from initial_lookback)", in.cfg.checkpointKey, in.cfg.checkpointCache)
	}
	in.cursorSeq = best.Seq
	return best, found > 0, nil
}

func (in *systemLogInput) getCheckpoint(ctx context.Context, key string) ([]byte, error) {
	var (
		raw    []byte
		getErr error
	)
	err := in.res.AccessCache(ctx, in.cfg.checkpointCache, func(c service.Cache) {
		raw, getErr = c.Get(ctx, key)
	})
	if err == nil {
		err = getErr
	}
	return raw, err
}

// Metadata that carries the page's cursor to an output able to commit it
// together with the events (kafka_producer with transactional_id): the
// checkpoint JSON exactly as checkpoint_cache would store it, and the key it is
// stored under. Only the last message of a page carries them, so a cursor
// travels with, and is committed no earlier than, every event of its page.
func (in *systemLogInput) tagCursor(msg *service.Message, cp checkpoint) {
	raw, err := encodeCheckpoint(cp)
	if err != nil {
		in.log.Errorf("Cannot encode the Okta cursor for the page: %v", err)
		return
	}
	msg.MetaSetMut(meta.OktaCursor, string(raw))
	msg.MetaSetMut(meta.OktaCursorKey, in.cfg.checkpointKey)
}

// ackPage records a page's acknowledgement and stores the cursor once every
// earlier page is acknowledged too. A nack leaves the page pending: the
// AutoRetryNacks wrapper delivers it again, and the cursor never passes it.
func (in *systemLogInput) ackPage(ctx context.Context, seq uint64, err error) error {
	if err != nil {
		return nil
	}
	return in.tracker.ack(seq, func(cp checkpoint) error { return in.storeCheckpoint(ctx, cp) })
}

// storeCheckpoint writes the cursor. Failing to write it is loud every time:
// the pipeline keeps running, but a restart would read events again.
func (in *systemLogInput) storeCheckpoint(ctx context.Context, cp checkpoint) error {
	if in.cfg.checkpointCache == "" {
		in.metrics.commits.Incr(1)
		return nil
	}
	key, err := in.writeCheckpoint(ctx, cp)
	if err != nil {
		in.metrics.commitFailures.Incr(1)
		in.log.Errorf("Cannot save the Okta cursor to checkpoint_cache %q key %q: %v (events keep flowing, but a restart would read them again; check the cache, e.g. that a file cache's directory exists and is writable)", in.cfg.checkpointCache, key, err)
		return fmt.Errorf("saving the Okta cursor: %w", err)
	}
	in.metrics.commits.Incr(1)
	return nil
}

// writeCheckpoint writes cp as the next commit, into the slot the commit
// number picks, and returns that slot's key.
func (in *systemLogInput) writeCheckpoint(ctx context.Context, cp checkpoint) (string, error) {
	cp.Seq = in.cursorSeq + 1
	key := checkpointSlots(in.cfg.checkpointKey)[cp.Seq%2]
	raw, err := encodeCheckpoint(cp)
	if err != nil {
		return key, err
	}
	var setErr error
	err = in.res.AccessCache(ctx, in.cfg.checkpointCache, func(c service.Cache) {
		setErr = c.Set(ctx, key, raw, nil)
	})
	if err == nil {
		err = setErr
	}
	if err != nil {
		return key, err
	}
	in.cursorSeq = cp.Seq
	return key, nil
}
