package oktasim

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// record is one persisted event. The raw bytes are served verbatim so a
// client sees exactly what was persisted, including PersistRaw oddities.
type record struct {
	seq       int // 1-based position in persistence order
	raw       json.RawMessage
	doc       map[string]any // decoded once, for filter
	lower     string         // lower-cased raw, for q
	published time.Time
	persisted time.Time
}

// store is the org's System Log: an append-only list in persistence order.
type store struct {
	mu   sync.RWMutex
	recs []*record
}

// eventHead is what the simulator needs from any event.
type eventHead struct {
	UUID      string `json:"uuid"`
	Published string `json:"published"`
}

func newRecord(raw json.RawMessage) (*record, error) {
	var head eventHead
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("decoding event: %w", err)
	}
	if head.UUID == "" {
		return nil, errors.New("event has no uuid")
	}
	pub, err := time.Parse(time.RFC3339Nano, head.Published)
	if err != nil {
		return nil, fmt.Errorf("event %s: published: %w", head.UUID, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("event %s: %w", head.UUID, err)
	}
	return &record{
		raw:       append(json.RawMessage(nil), raw...),
		doc:       doc,
		lower:     strings.ToLower(string(raw)),
		published: pub.UTC(),
	}, nil
}

// append persists recs in order at simulator time now.
//
// Okta's persistence time never precedes publication and grows with
// persistence order. An event published before the log's tail is a late
// event: it is persisted now. Otherwise the event stands for live or
// historical traffic and is persisted when it was published (capped at
// now), so a backlog of old events looks like history, not like a burst.
func (s *store) append(now time.Time, recs ...*record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		var tail time.Time
		if n := len(s.recs); n > 0 {
			tail = s.recs[n-1].persisted
		}
		at := r.published
		if at.Before(tail) || at.After(now) {
			at = now
		}
		if at.Before(tail) {
			at = tail
		}
		r.persisted = at
		r.seq = len(s.recs) + 1
		s.recs = append(s.recs, r)
	}
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs)
}

// cursor is the decoded after parameter: the sort key (milliseconds) and
// persistence position of the last event of the previous page. Rendered like
// Okta's own cursors, e.g. 1714675441520_1.
type cursor struct {
	ms  int64
	seq int
}

func (c cursor) String() string { return strconv.FormatInt(c.ms, 10) + "_" + strconv.Itoa(c.seq) }

func parseCursor(s string) (cursor, error) {
	msPart, seqPart, ok := strings.Cut(s, "_")
	if !ok {
		return cursor{}, errors.New("malformed cursor")
	}
	ms, err := strconv.ParseInt(msPart, 10, 64)
	if err != nil {
		return cursor{}, fmt.Errorf("malformed cursor time: %w", err)
	}
	seq, err := strconv.Atoi(seqPart)
	if err != nil || seq < 1 {
		return cursor{}, errors.New("malformed cursor position")
	}
	return cursor{ms: ms, seq: seq}, nil
}

// query is a validated /api/v1/logs request.
type query struct {
	polling    bool
	descending bool
	since      time.Time
	until      time.Time // bounded requests only
	after      *cursor
	limit      int
	filter     filterExpr // nil matches everything
	keywords   []string   // lower-cased
}

func (q *query) match(r *record) bool {
	for _, k := range q.keywords {
		if !strings.Contains(r.lower, k) {
			return false
		}
	}
	return q.filter == nil || q.filter.eval(r.doc)
}

// page is one response's worth of events and, when the client should go on,
// the cursor for the next link.
type page struct {
	recs []*record
	next *cursor
}

var errBadCursor = errors.New("cursor does not name a persisted event")

// page runs q against the log.
func (s *store) page(q *query) (page, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if q.polling {
		return s.pollPage(q)
	}
	return s.boundedPage(q)
}

// pollPage walks persistence order from the cursor: since bounds persistence
// time, so late events (published long ago, persisted now) still reach a
// client that follows its next links.
func (s *store) pollPage(q *query) (page, error) {
	start := 0
	if q.after != nil {
		if q.after.seq > len(s.recs) || s.recs[q.after.seq-1].persisted.UnixMilli() != q.after.ms {
			return page{}, errBadCursor
		}
		start = q.after.seq
	}
	var p page
	for _, r := range s.recs[start:] {
		if len(p.recs) == q.limit {
			break
		}
		if r.persisted.Before(q.since) || !q.match(r) {
			continue
		}
		p.recs = append(p.recs, r)
	}
	// Polling always links on; an empty page re-issues the same request.
	if n := len(p.recs); n > 0 {
		p.next = &cursor{ms: p.recs[n-1].persisted.UnixMilli(), seq: p.recs[n-1].seq}
	} else {
		p.next = q.after
	}
	return p, nil
}

// boundedPage sorts the events published in [since, until) by published
// time and links on only while more remain.
func (s *store) boundedPage(q *query) (page, error) {
	if q.after != nil && (q.after.seq > len(s.recs) || s.recs[q.after.seq-1].published.UnixMilli() != q.after.ms) {
		return page{}, errBadCursor
	}
	var all []*record
	for _, r := range s.recs {
		if r.published.Before(q.since) || !r.published.Before(q.until) || !q.match(r) {
			continue
		}
		if q.after != nil && !q.beyond(r) {
			continue
		}
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return q.less(all[i], all[j]) })
	var p page
	p.recs = all[:min(q.limit, len(all))]
	if len(all) > q.limit {
		last := p.recs[len(p.recs)-1]
		p.next = &cursor{ms: last.published.UnixMilli(), seq: last.seq}
	}
	return p, nil
}

// less orders bounded results by published (milliseconds, as the cursor
// carries), ties by persistence order.
func (q *query) less(a, b *record) bool {
	am, bm := a.published.UnixMilli(), b.published.UnixMilli()
	if am != bm {
		return (am < bm) != q.descending
	}
	return (a.seq < b.seq) != q.descending
}

// beyond reports whether r sorts after the cursor.
func (q *query) beyond(r *record) bool {
	c := &record{seq: q.after.seq, published: time.UnixMilli(q.after.ms)}
	return q.less(c, r)
}
