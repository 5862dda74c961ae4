package okta

import (
	"context"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// inputMetrics are the okta_* series of the input (their help text is in the
// prometheus exporter's help table, internal/impl/prometheus/help.go).
type inputMetrics struct {
	requests       *service.MetricCounter
	events         *service.MetricCounter
	duplicates     *service.MetricCounter
	remaining      *service.MetricGauge
	lag            *service.MetricGauge
	commits        *service.MetricCounter
	commitFailures *service.MetricCounter
	responseErrors *service.MetricCounter // 200s that could not be used, by reason
	unacked        *service.MetricGauge   // pages read and not yet acknowledged downstream
	unackedAge     *service.MetricGauge   // seconds since the oldest of them was read
	clockSkew      *service.MetricGauge   // Okta's Date − the local clock, seconds
	lastSuccess    *service.MetricGauge   // unix seconds of the last 200
}

func newInputMetrics(m *service.Metrics) inputMetrics {
	im := inputMetrics{
		requests:       m.NewCounter("okta_requests_total", "status"),
		events:         m.NewCounter("okta_events_total"),
		duplicates:     m.NewCounter("okta_duplicates_dropped_total"),
		remaining:      m.NewGauge("okta_rate_limit_remaining"),
		lag:            m.NewGauge("okta_lag_seconds"),
		commits:        m.NewCounter("okta_cursor_commits_total"),
		commitFailures: m.NewCounter("okta_checkpoint_errors_total"),
		responseErrors: m.NewCounter("okta_response_errors_total", "reason"),
		clockSkew:      m.NewGauge("okta_clock_skew_seconds"),
		lastSuccess:    m.NewGauge("okta_last_success_timestamp_seconds"),
		unacked:        m.NewGauge("okta_unacked_pages"),
		unackedAge:     m.NewGauge("okta_unacked_oldest_seconds"),
	}
	// Series exist from the start, so increase() and alerts see the first
	// duplicate or failed save (Benthos creates a series at its first Incr).
	for _, c := range []*service.MetricCounter{im.events, im.duplicates, im.commits, im.commitFailures} {
		c.Incr(0)
	}
	return im
}

// stuckAckWarning is how long a page may wait for the output's
// acknowledgement before the input says the output is stuck (and again every
// twice as long while it stays stuck).
const stuckAckWarning = 15 * time.Second

// watchAcks publishes the pages waiting for the output's acknowledgement and
// warns while the oldest waits longer than stuckAckWarning: an output that
// cannot write (Kafka down) holds the cursor back without any request
// failing, and this is where that shows.
func (in *systemLogInput) watchAcks(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var stuckSince, lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		in.refreshLag()
		n, read := in.tracker.oldest()
		age := time.Duration(0)
		if n > 0 {
			age = time.Since(read)
		}
		in.metrics.unacked.Set(int64(n))
		in.metrics.unackedAge.Set(int64(age.Seconds()))
		switch {
		case age >= stuckAckWarning && time.Since(lastWarn) >= 2*stuckAckWarning:
			if stuckSince.IsZero() {
				stuckSince = read
			}
			in.log.Warnf("%d page(s) read from Okta are not acknowledged by the output after %v (the oldest): the output is not accepting events (is Kafka reachable?); the Okta cursor stays at the last acknowledged page and nothing is skipped", n, age.Round(time.Second))
			lastWarn = time.Now()
		case age < stuckAckWarning && !stuckSince.IsZero():
			in.log.Infof("The output acknowledges pages again, after %v", time.Since(stuckSince).Round(time.Second))
			stuckSince, lastWarn = time.Time{}, time.Time{}
		}
	}
}

// refreshLag keeps okta_lag_seconds growing while nothing new is read (an
// outage, a stuck output holding reads back), instead of freezing at the
// last page's value.
func (in *systemLogInput) refreshLag() {
	if n := in.newest.Load(); n != 0 {
		in.metrics.lag.Set(int64(time.Since(time.Unix(0, n)).Seconds()))
	}
}
