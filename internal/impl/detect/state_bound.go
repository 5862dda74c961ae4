package detect

import (
	"errors"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
)

const fieldMaxStateKeys = "max_state_keys"

// evictionLogEvery is how often a rule that keeps evicting is logged again.
const evictionLogEvery = time.Minute

func maxStateKeysField() *service.ConfigField {
	return service.NewIntField(fieldMaxStateKeys).
		Description("The most keys one rule's state holds (threshold groups, dedup keys, remembered values, sequences, first_seen keys and absences together; per partition with `changelog`). Beyond it the keys least recently updated are evicted (a sampled approximation of LRU; the bound itself is exact), counted in `cel_detect_state_evictions_total` and logged at WARN at most once a minute per rule. `cel_detect_state_keys` shows each rule's keys. 0 means no bound. For sizing memory: keys idle for a few thousand events are held in their compact encoding, so a one-event threshold group costs about 100 bytes and the whole pack about 1 KB per user active within its windows, and about 250 bytes per user beyond them: a remembered sign-in and first sightings (`BenchmarkPackStatePerUser`, `BenchmarkPackStatePerUserOverADay`).").
		Default(detect.DefaultMaxStateKeys).
		Advanced()
}

// parseMaxStateKeys reads max_state_keys as EngineOptions.MaxStateKeys
// (where 0 is the default and negative no bound).
func parseMaxStateKeys(conf *service.ParsedConfig) (int, error) {
	n, err := conf.FieldInt(fieldMaxStateKeys)
	switch {
	case err != nil:
		return 0, err
	case n < 0:
		return 0, errNegativeMaxStateKeys
	case n == 0:
		return -1, nil
	}
	return n, nil
}

var errNegativeMaxStateKeys = errors.New("max_state_keys must not be negative (0: no bound)")

// stateBoundHooks count evictions and keys per rule, and log evictions.
func stateBoundHooks(mgr *service.Resources) (evicted func(string, int), keys func(string, int64)) {
	evictions := mgr.Metrics().NewCounter("cel_detect_state_evictions_total", "rule")
	gauge := mgr.Metrics().NewGauge("cel_detect_state_keys", "rule")
	l := &evictionLog{log: mgr.Logger(), last: map[string]time.Time{}, held: map[string]int{}}
	evicted = func(id string, n int) {
		evictions.Incr(int64(n), id)
		if n > 0 {
			l.report(id, n)
		}
	}
	keys = func(id string, d int64) { gauge.Incr(d, id) }
	return evicted, keys
}

// evictionLog logs a rule's evictions at WARN at most once a minute, with
// the number evicted since the last line.
type evictionLog struct {
	log  *service.Logger
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func (l *evictionLog) report(id string, n int) {
	l.mu.Lock()
	now := time.Now()
	l.held[id] += n
	if last, ok := l.last[id]; ok && now.Sub(last) < evictionLogEvery {
		l.mu.Unlock()
		return
	}
	total := l.held[id]
	l.last[id], l.held[id] = now, 0
	l.mu.Unlock()
	l.log.With("rule", id, "evicted", total).
		Warnf("cel_detect: rule %s holds more state keys than max_state_keys: evicted %d keys least recently updated (cel_detect_state_evictions_total counts them); raise max_state_keys or shorten the rule's windows if its detections need them", id, total)
}
