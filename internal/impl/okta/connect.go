package okta

import (
	"context"
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/okta"
)

// cursorRetry spaces attempts to save the first cursor to a cache that
// refuses it: each attempt is logged, and a fix (a directory created) is
// picked up without a restart.
const cursorRetry = 5 * time.Second

// start reads the stored cursor, or starts a polling request from
// initial_lookback when there is none. It is the only place the cursor is
// read. A new cursor is written at once, so a cache that cannot store it
// stops the input before any event flows, not at the first commit.
func (in *systemLogInput) start(ctx context.Context) error {
	cp, found, err := in.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	switch {
	case found:
		in.next = cp.Next
		for _, u := range cp.UUIDs {
			in.seen.add(u)
		}
		in.log.Infof("Resuming the System Log of %s from the stored cursor", in.cfg.org.Host)
	case in.cfg.checkpointCache == "":
		in.next = in.pollingURL()
		in.log.Warnf("okta_system_log has no checkpoint_cache: the cursor is kept in memory only, and a restart reads again from initial_lookback (%v)", in.cfg.initialLookback)
	default:
		next := in.pollingURL()
		in.log.Warnf("No stored cursor under %q in checkpoint_cache %q: reading the System Log of %s from initial_lookback (%v) ago (expected on the first start only; otherwise the cursor was lost and events of that span are read again)", in.cfg.checkpointKey, in.cfg.checkpointCache, in.cfg.org.Host, in.cfg.initialLookback)
		if key, err := in.writeCheckpoint(ctx, checkpoint{Version: checkpointVersion, Next: next}); err != nil {
			return service.NewErrBackOff(fmt.Errorf("cannot save the Okta cursor to checkpoint_cache %q key %q: %w; the input reads nothing until the cursor can be saved (for a file cache, create its directory and make it writable by this process)", in.cfg.checkpointCache, key, err), cursorRetry)
		}
		in.next = next
	}
	in.tickStart = in.clock.Now()
	in.loaded = true
	watchCtx, cancel := context.WithCancel(context.Background())
	in.stopWatch = cancel
	go in.watchAcks(watchCtx, time.Second)
	return nil
}

// pollingURL is the first request when there is no cursor: events since
// initial_lookback ago.
func (in *systemLogInput) pollingURL() string {
	return in.client.PollingURL(okta.Query{
		Since:  in.clock.Now().Add(-in.cfg.initialLookback),
		Limit:  in.cfg.limit,
		Filter: in.cfg.filter,
		Q:      in.cfg.q,
	})
}

// probe requests the current link. On an answer the input is connected and
// the page is kept for ReadBatch; when the org cannot be read it is not, and
// Benthos is told how long to wait before the next probe.
func (in *systemLogInput) probe(ctx context.Context) error {
	if in.down != nil && !in.downReported && in.down.Kind == okta.FailConfig {
		// ReadBatch's failure: report it (Benthos logs Connect errors)
		// and let Benthos wait out the retry delay.
		in.downReported = true
		d := in.budget.Delay(in.clock.Now())
		return service.NewErrBackOff(fmt.Errorf("%w; retrying in %v", in.down, d.Round(time.Second)), d)
	}
	if err := in.waitTurn(ctx); err != nil {
		return err
	}
	p, err := in.fetch(ctx)
	if err != nil {
		down, reportErr := in.onFailure(err)
		if reportErr != nil {
			return reportErr
		}
		if down != nil {
			in.down, in.downReported = down, true
			d := in.budget.Delay(in.clock.Now())
			return service.NewErrBackOff(fmt.Errorf("%w; retrying in %v", down, d.Round(time.Millisecond)), d)
		}
		// Okta answered (a 5xx, a 429, an unusable 200): the org is
		// there; ReadBatch retries after the wait onFailure set.
	} else {
		in.probed = p
	}
	if in.down != nil {
		in.log.Infof("The System Log of %s can be read again", in.cfg.org.Host)
	}
	in.down, in.downReported = nil, false
	in.connected = true
	return nil
}

// goDown marks the input not connected after ReadBatch's request failed
// with down. A host that did not answer is logged here (Connect probes again
// quietly after the backoff); a refusal is reported by Connect.
func (in *systemLogInput) goDown(down *okta.RequestError) {
	in.connected = false
	in.down, in.downReported = down, false
	if down.Kind != okta.FailConfig {
		in.downReported = true
		in.log.Warnf("%v; the input is not ready until the org answers; retrying the same link in %v", down, in.budget.Delay(in.clock.Now()).Round(time.Millisecond))
	}
}
