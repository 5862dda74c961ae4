package detect

import (
	"maps"
	"strings"
	"sync"
)

// Each org's own event time decides when its state is swept. One engine
// serves many orgs (many-orgs-to-kafka.yaml; a repartition partition at
// scale) whose events progress at their own pace — an org whose poller is
// catching up a backlog runs hours behind the others — and sweeping one
// org's keys by another org's progress would drop what its next events
// still need, and make the tags depend on how the orgs' events interleave.

// orgMarks are the newest event time of each org (clamped like the
// watermark).
type orgMarks struct {
	mu       sync.RWMutex
	marks    map[string]int64
	restored int64               // the watermark a restore brought: where an unknown org's mark starts
	changed  map[string]struct{} // orgs raised since the changes were last taken
}

func newOrgMarks() *orgMarks {
	return &orgMarks{marks: map[string]int64{}, restored: minTime, changed: map[string]struct{}{}}
}

// raiseFrom is raise, returning org's mark before (minTime for an org
// not seen before), so that only one of concurrent callers sees a move.
func (m *orgMarks) raiseFrom(org string, at int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.marks[org]
	switch {
	case !ok:
		m.marks[strings.Clone(org)] = at // org may be a view of the event's bytes
		return minTime
	case at > cur:
		m.marks[org] = at
	}
	return cur
}

// raise moves org's mark forward to at.
func (m *orgMarks) raise(org string, at int64) {
	m.mu.RLock()
	cur, ok := m.marks[org]
	m.mu.RUnlock()
	if ok && at <= cur {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok = m.marks[org]; !ok {
		cur = m.restored
	}
	if at > cur {
		m.marks[org] = at
		m.changed[org] = struct{}{}
	} else if !ok {
		m.marks[org] = cur
	}
}

// restore notes the watermark restored state was written at: the mark of
// an org the state does not name starts there.
func (m *orgMarks) restore(w int64) {
	m.mu.Lock()
	m.restored = max(m.restored, w)
	m.mu.Unlock()
}

// restoreOrg restores the mark of org that state (a snapshot, a changelog
// record) kept, so that a lagging org is swept by its own time after a
// restart, not by the orgs ahead of it.
func (m *orgMarks) restoreOrg(org string, mark int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.marks[org]; !ok {
		m.marks[strings.Clone(org)] = mark // org may be a view of a log record's bytes
	} else if mark > cur {
		m.marks[org] = mark
	}
}

// mark is org's mark, or minTime when no event of org was seen.
func (m *orgMarks) mark(org string) int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if w, ok := m.marks[org]; ok {
		return w
	}
	return minTime
}

// all returns every org's mark.
func (m *orgMarks) all() map[string]int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.marks)
}

// takeChanged returns the marks of the orgs raised since the last call.
func (m *orgMarks) takeChanged() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.changed) == 0 {
		return nil
	}
	out := make(map[string]int64, len(m.changed))
	for org := range m.changed {
		out[org] = m.marks[org]
	}
	clear(m.changed)
	return out
}

// horizons is what a sweep may free, per key.
func (m *orgMarks) horizons(watermark, lateness int64) horizons {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := horizons{global: watermark - lateness, lateness: lateness}
	h.top = h.global
	if len(m.marks) > 0 {
		h.orgs = make(map[string]int64, len(m.marks))
		for org, w := range m.marks {
			h.orgs[org] = w
			h.top = max(h.top, w-lateness)
		}
	}
	return h
}

// horizons gives each key the horizon of its org (scope.go): no event at or
// after it can still need state older than it allows.
type horizons struct {
	global   int64            // unscoped keys
	top      int64            // the latest horizon of any key
	orgs     map[string]int64 // org → mark
	lateness int64
}

func (h horizons) of(key string) int64 {
	if org, ok := scopedOrg(key); ok {
		w, ok := h.orgs[org]
		if !ok {
			return minTime // no event of the org since the start: keep all
		}
		return w - h.lateness
	}
	return h.global
}
