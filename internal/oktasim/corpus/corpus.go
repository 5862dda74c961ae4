// Package corpus builds the realistic event sets the benchmarks share:
// events from the Okta simulator's generator (ordinary traffic of every
// kind, with the attack scenarios mixed in), as the JSON Okta sends.
package corpus

import (
	"fmt"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
)

// Start is the simulated time the corpus begins at.
var Start = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// Events returns n events: ordinary traffic one second apart, and every
// 1,000 events the "full" scenario's attacks (brute force, admin grant, API
// tokens, impossible travel, MFA reset, push bombing, …). The output depends
// only on n.
func Events(n int) [][]byte {
	s := NewStream(Start)
	out := make([][]byte, 0, n)
	for range n {
		out = append(out, s.Next())
	}
	return out
}

// SpreadEvents is Events with, in every block, attacks whose events belong
// to many actors: a password spray (one failed sign-in for each of 6
// accounts from one address) and a brute force by IP (one failure for each
// of 24 accounts from another), from addresses new in each block. Rules
// keyed by the source address see them only when all of one address's
// events meet, whatever actor each belongs to: what the scale-out tests
// need. The output depends only on n.
func SpreadEvents(n int) [][]byte {
	s := NewStream(Start)
	s.spread = true
	out := make([][]byte, 0, n)
	for range n {
		out = append(out, s.Next())
	}
	return out
}

// Span is how much simulated time n events of a Stream cover, at most.
func Span(n int) time.Duration {
	blocks := time.Duration(n/1000 + 1)
	return blocks * (1000*time.Second + oktasim.TrafficDuration)
}

// Stream yields the same events as Events, one at a time and without
// holding them, from any start: for backlogs larger than memory should hold.
type Stream struct {
	g      *oktasim.Generator
	at     time.Time
	buf    [][]byte
	spread bool // add attacks spread over many actors (SpreadEvents)
	block  int
}

// NewStream starts the corpus sequence at start (Events uses Start).
func NewStream(start time.Time) *Stream {
	return &Stream{g: oktasim.NewGenerator(42), at: start}
}

// Next returns the next event's JSON.
func (s *Stream) Next() []byte {
	if len(s.buf) == 0 {
		s.fill()
	}
	e := s.buf[0]
	s.buf[0] = nil
	s.buf = s.buf[1:]
	return e
}

// fill generates one block: 1,000 ordinary events, then the scenario's
// attacks of its first two minutes.
func (s *Stream) fill() {
	buf := s.buf[:0]
	for _, e := range s.g.Backlog(1000, s.at, time.Second) {
		buf = append(buf, e.JSON())
	}
	s.at = s.at.Add(1000 * time.Second)
	tl, _ := oktasim.Scenario("full", s.g, s.at)
	for _, t := range tl {
		if t.Offset > time.Minute*2 {
			break
		}
		buf = append(buf, t.Event.JSON())
	}
	if s.spread {
		buf = s.spreadAttacks(buf)
	}
	s.block++
	s.at = s.at.Add(oktasim.TrafficDuration)
	s.buf = buf
}

// Bytes is the total size of events.
func Bytes(events [][]byte) int {
	n := 0
	for _, e := range events {
		n += len(e)
	}
	return n
}

// spreadAttacks appends the block's password spray and brute force by IP:
// each account fails once, from the block's attacking addresses.
func (s *Stream) spreadAttacks(buf [][]byte) [][]byte {
	at := s.at.Add(90 * time.Second)
	spray := fmt.Sprintf("198.51.100.%d", 1+s.block%250)
	for i := range 6 {
		user := fmt.Sprintf("spray%d.%d@%s", s.block, i, oktasim.OrgDomain)
		for _, e := range s.g.BruteForce(user, spray, at.Add(time.Duration(i)*20*time.Second), 1) {
			buf = append(buf, e.JSON())
		}
	}
	brute := fmt.Sprintf("203.0.113.%d", 1+s.block%250)
	for i := range 24 {
		user := fmt.Sprintf("guess%d@%s", i, oktasim.OrgDomain)
		for _, e := range s.g.BruteForce(user, brute, at.Add(time.Duration(i)*10*time.Second), 1) {
			buf = append(buf, e.JSON())
		}
	}
	return buf
}
