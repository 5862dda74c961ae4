package detect

import (
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
	restored int64 // the watermark a restore brought: where an org's mark starts
}

func newOrgMarks() *orgMarks { return &orgMarks{marks: map[string]int64{}, restored: minTime} }

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
	m.marks[org] = max(cur, at)
}

// restore notes the watermark restored state was written at. Org marks are
// not stored: an org's mark starts there, which is exact for one org (its
// mark is the watermark) and may sweep a lagging org's state early after a
// restore of many orgs' state.
func (m *orgMarks) restore(w int64) {
	m.mu.Lock()
	m.restored = max(m.restored, w)
	m.mu.Unlock()
}

// horizons is what a sweep may free, per key.
func (m *orgMarks) horizons(watermark, lateness int64) horizons {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := horizons{global: watermark - lateness, lateness: lateness}
	if len(m.marks) > 0 {
		h.orgs = make(map[string]int64, len(m.marks))
		for org, w := range m.marks {
			h.orgs[org] = w
		}
	}
	return h
}

// horizons gives each key the horizon of its org (scope.go): no event at or
// after it can still need state older than it allows.
type horizons struct {
	global   int64            // unscoped keys
	orgs     map[string]int64 // org → mark
	lateness int64
}

func (h horizons) of(key string) int64 {
	if len(key) > 1 && key[0] == 0 {
		if i := strings.IndexByte(key[1:], 0); i >= 0 {
			w, ok := h.orgs[key[1:1+i]]
			if !ok {
				return minTime // no event of the org since the start: keep all
			}
			return w - h.lateness
		}
	}
	return h.global
}
