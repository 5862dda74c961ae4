package detect

import (
	"errors"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
)

// ruleErrorEvery is how often a rule that keeps failing is logged again.
const ruleErrorEvery = time.Minute

// ruleErrorLog logs rule errors at WARN: each rule's first error, then at
// most one per rule per minute with the number left out meanwhile, so that
// a rule broken by a typo is never silent and never floods the log.
type ruleErrorLog struct {
	log *service.Logger
	now func() time.Time

	mu    sync.Mutex
	rules map[string]*ruleErrorState
}

type ruleErrorState struct {
	last       time.Time
	suppressed int
}

func newRuleErrorLog(log *service.Logger, now func() time.Time) *ruleErrorLog {
	return &ruleErrorLog{log: log, now: now, rules: map[string]*ruleErrorState{}}
}

// report logs err of rule id, or counts it when the rule was logged within
// the last minute.
func (l *ruleErrorLog) report(id string, err error) {
	suppressed, ok := l.admit(id)
	if !ok {
		return
	}
	file, uuid := "", ""
	var re *detect.RuleError
	if errors.As(err, &re) {
		file, uuid = re.File, re.UUID
	}
	l.log.With("rule", id, "file", file, "uuid", uuid, "errors_not_logged", suppressed).
		Warnf("cel_detect: rule %s (%s) failed on event %s: %v; the event passes on without this rule's tag (cel_detect_rule_errors_total counts every failure; fix the rule and check it with `oktadetect rules test`)", id, file, uuid, err)
}

// admit says whether to log now, and how many errors were held back since
// the last line.
func (l *ruleErrorLog) admit(id string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st, seen := l.rules[id]
	if !seen {
		l.rules[id] = &ruleErrorState{last: now}
		return 0, true
	}
	if now.Sub(st.last) < ruleErrorEvery {
		st.suppressed++
		return 0, false
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return n, true
}
