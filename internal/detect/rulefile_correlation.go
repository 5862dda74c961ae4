package detect

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// The correlation headers beside threshold and previous: sequence,
// first_seen and absence (rules/README.md has their semantics).

// defaultAbsenceGrace is how long past the end of an absence's window event
// time must move before the absence fires, so that a closing event Okta
// persists a little late still counts.
const defaultAbsenceGrace = 5 * time.Minute

// maxSequenceSteps bounds `after`: each step is a list kept per key.
const maxSequenceSteps = 16

// SequenceSpec tags the condition's event when, within Within before it, the
// After steps happened in that order, per By key.
type SequenceSpec struct {
	By     *exprText
	Within time.Duration
	After  []SequenceStep
}

// SequenceStep is one earlier step: at least Count events for which When
// holds.
type SequenceStep struct {
	When  *exprText
	Count int
}

// FirstSeenSpec tags an event whose Value no event of its Key had within
// History before it, once the key has been seen for Learn.
type FirstSeenSpec struct {
	Key     *exprText
	Value   *exprText
	History time.Duration
	Learn   time.Duration
}

// AbsenceSpec opens an expectation per By key on each event of the
// condition, closed by an event for which FollowedBy holds within Within;
// one still open once its org's event time passes Within+Grace fires.
type AbsenceSpec struct {
	By         *exprText
	Within     time.Duration
	FollowedBy *exprText
	Grace      time.Duration
}

type rawSequence struct {
	By     yaml.Node `yaml:"by"`
	Within string    `yaml:"within"`
	After  []struct {
		When  yaml.Node `yaml:"when"`
		Count *int      `yaml:"count"`
	} `yaml:"after"`
}

type rawFirstSeen struct {
	Key     yaml.Node `yaml:"key"`
	Value   yaml.Node `yaml:"value"`
	History string    `yaml:"history"`
	Learn   string    `yaml:"learn"`
}

type rawAbsence struct {
	By         yaml.Node `yaml:"by"`
	Within     string    `yaml:"within"`
	FollowedBy yaml.Node `yaml:"followed_by"`
	Grace      string    `yaml:"grace"`
}

// fillCorrelation reads sequence, first_seen and absence, and checks that a
// rule has at most one way of counting.
func (r *Rule) fillCorrelation(raw *rawHeader, addErr func(line, col int, format string, args ...any)) {
	if s := raw.Sequence; s != nil {
		r.Sequence = r.sequence(s, addErr)
	}
	if f := raw.FirstSeen; f != nil {
		r.FirstSeen = &FirstSeenSpec{
			Key:     r.scalar(&f.Key, "first_seen.key", addErr),
			Value:   r.scalar(&f.Value, "first_seen.value", addErr),
			History: r.duration(f.History, "first_seen.history", 0, addErr),
			Learn:   r.optionalDuration(f.Learn, "first_seen.learn", addErr),
		}
		if r.FirstSeen.Value == nil {
			addErr(r.lineOfKey("first_seen"), 1, "header: first_seen.value is required")
		}
	}
	if a := raw.Absence; a != nil {
		r.Absence = &AbsenceSpec{
			By:         r.scalar(&a.By, "absence.by", addErr),
			Within:     r.duration(a.Within, "absence.within", 0, addErr),
			FollowedBy: r.scalar(&a.FollowedBy, "absence.followed_by", addErr),
			Grace:      r.duration(a.Grace, "absence.grace", defaultAbsenceGrace, addErr),
		}
		if r.Absence.FollowedBy == nil {
			addErr(r.lineOfKey("absence"), 1, "header: absence.followed_by is required")
		}
	}
	kinds := 0
	for _, set := range []bool{r.Threshold != nil, r.Sequence != nil, r.FirstSeen != nil, r.Absence != nil} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		addErr(r.header.first, 1, "header: threshold, sequence, first_seen and absence are exclusive: a rule has at most one")
	}
}

func (r *Rule) sequence(s *rawSequence, addErr func(line, col int, format string, args ...any)) *SequenceSpec {
	spec := &SequenceSpec{By: r.scalar(&s.By, "sequence.by", addErr), Within: r.duration(s.Within, "sequence.within", 0, addErr)}
	if len(s.After) == 0 || len(s.After) > maxSequenceSteps {
		addErr(r.lineOfKey("sequence"), 1, "header: sequence.after must list 1 to %d earlier steps ({when, count})", maxSequenceSteps)
	}
	for i, st := range s.After {
		key := fmt.Sprintf("sequence.after[%d]", i)
		step := SequenceStep{When: r.scalar(&st.When, key+".when", addErr), Count: 1}
		if step.When == nil {
			addErr(r.lineOfKey("after"), 1, "header: %s.when is required", key)
		}
		if st.Count != nil {
			step.Count = *st.Count
		}
		if step.Count < 1 {
			addErr(r.lineOfKey("count"), 1, "header: %s.count must be at least 1", key)
		}
		spec.After = append(spec.After, step)
	}
	return spec
}

// optionalDuration parses a Go duration that may be absent (zero).
func (r *Rule) optionalDuration(s, key string, addErr func(int, int, string, ...any)) time.Duration {
	if s == "" {
		return 0
	}
	return r.duration(s, key, 0, addErr)
}

// stateful says the rule counts or orders events, so that its alerts open
// at the evidence (see evidenceOpening) rather than at a tagged event.
func (r *Rule) stateful() bool {
	return r.Threshold != nil || r.Sequence != nil || r.FirstSeen != nil || r.Absence != nil
}
