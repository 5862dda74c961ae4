package detect

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The evaluation of the rules that count or order events: threshold (and
// distinct counts), sequence, first_seen and absence. Their state lives in
// ruleState (state_*.go), their semantics are in rules/README.md.

// ruleLimits are a rule's numbers in event-time nanoseconds, computed once
// at compile time.
type ruleLimits struct {
	count countLimits
	seq   seqLimits
	first firstLimits
	abs   absLimits
}

func limitsOf(r *Rule) ruleLimits {
	var l ruleLimits
	period := int64(r.Dedup.Period)
	if t := r.Threshold; t != nil {
		l.count = countLimits{count: t.Count, window: int64(t.Window), period: period}
	}
	if s := r.Sequence; s != nil {
		l.seq = seqLimits{within: int64(s.Within), period: period}
		for _, st := range s.After {
			l.seq.counts = append(l.seq.counts, st.Count)
		}
	}
	if f := r.FirstSeen; f != nil {
		l.first = firstLimits{history: int64(f.History), learn: int64(f.Learn), period: period}
	}
	if a := r.Absence; a != nil {
		l.abs = absLimits{within: int64(a.Within), grace: int64(a.Grace)}
	}
	return l
}

// evalThreshold counts a matching event in its group; the evidence is nil
// while no window holds enough.
func (e *Engine) evalThreshold(r activeRule, ev *event, act *activation) (*evidence, error) {
	group, err := evalKey(r.groupBy, act, "")
	if err != nil {
		return nil, fmt.Errorf("threshold.group_by: %w", err)
	}
	o := countObservation{at: ev.at, id: ev.eventID()}
	if r.distinct != nil {
		v, _, err := r.distinct.Eval(act)
		if err != nil {
			return nil, fmt.Errorf("threshold.distinct: %w", err)
		}
		o.value, o.distinct = strings.Clone(valueString(v)), true
	}
	return r.state.observe(ev.scoped(group), o, r.limits.count), nil
}

// evalFirstSeen records a matching event's value under its key.
func (e *Engine) evalFirstSeen(r activeRule, ev *event, act *activation) (*evidence, error) {
	key, err := evalKey(r.firstKey, act, "")
	if err != nil {
		return nil, fmt.Errorf("first_seen.key: %w", err)
	}
	v, _, err := r.firstValue.Eval(act)
	if err != nil {
		return nil, fmt.Errorf("first_seen.value: %w", err)
	}
	return r.state.observeFirst(ev.scoped(key), valueString(v), ev.at, ev.eventID(), r.limits.first), nil
}

// evalSequence records the event as the steps whose `when` holds and, if
// the condition does, as a last step; it is tagged when it completes a
// sequence. Errors of one expression do not stop the others.
func (e *Engine) evalSequence(r activeRule, ev *event, act *activation, matched bool, condErr error) (*Detection, error) {
	errs := []error{condErr}
	matched = matched && condErr == nil
	var steps uint32
	for i, prg := range r.seqSteps {
		held, err := evalBool(prg, act)
		if err != nil {
			errs = append(errs, fmt.Errorf("sequence.after[%d].when: %w", i, err))
		} else if held {
			steps |= 1 << i
		}
	}
	if !matched && steps == 0 {
		return nil, errors.Join(errs...)
	}
	key, err := evalKey(r.seqBy, act, "")
	if err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("sequence.by: %w", err))...)
	}
	o := seqObservation{ev: seqEvent{At: ev.at, ID: ev.eventID(), UUID: strings.Clone(ev.uuidOf())}, steps: steps, final: matched}
	evd := r.state.observeSequence(ev.scoped(key), o, r.limits.seq)
	if evd == nil {
		return nil, errors.Join(errs...)
	}
	return e.alert(r, ev, act, evd)
}

// evalAbsence closes the expectations the event closes and opens one when
// the condition holds. It never tags the event: an expectation left open
// fires later (fireAbsences).
func (e *Engine) evalAbsence(r activeRule, ev *event, act *activation, matched bool, condErr error) error {
	errs := []error{condErr}
	matched = matched && condErr == nil
	closes, err := evalBool(r.followedBy, act)
	if err != nil {
		errs = append(errs, fmt.Errorf("absence.followed_by: %w", err))
	}
	if !matched && !closes {
		return errors.Join(errs...)
	}
	key, err := evalKey(r.absenceBy, act, "")
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("absence.by: %w", err))...)
	}
	key = ev.scoped(key)
	if closes {
		r.state.absence.close(key, ev.at, r.limits.abs)
	}
	if matched {
		d, err := e.alert(r, ev, act, &evidence{opening: bucketStart(ev.at, int64(r.Dedup.Period))})
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		r.state.absence.open(key, expectation{At: ev.at, ID: ev.eventID(), Raw: bytes.Clone(ev.raw), Meta: slices.Clone(ev.meta), Det: d}, r.limits.abs)
	}
	return errors.Join(errs...)
}

// absenceTick: absences fire at whole minutes of event time. An expectation
// fires once its org's event time has reached the first whole minute after
// its within+grace, so it fires after the event that first moves the org's
// time into a new minute. A scaled-out worker is sent each org's time as
// it enters a new minute (RouteEvent's watermarks), and so fires each
// absence after the same event of the org as one process does, whatever
// else its partition receives.
const absenceTick = int64(time.Minute)

// tickOf is the start of the absence tick t falls in.
func tickOf(t int64) int64 {
	if t == minTime {
		return minTime
	}
	return floorDiv(t, absenceTick) * absenceTick
}

// fireAbsences emits the absences that event time has made due: open
// expectations whose within+grace ended before the tick their org's event
// time is in (the watermark's, for unscoped ones). Only ev's org can have
// moved.
func (e *Engine) fireAbsences(set *activeSet, ev *event) []Deferred {
	var out []Deferred
	org := ev.org()
	for _, i := range set.absences {
		r := set.rules[i]
		due := r.state.absence.fire("", tickOf(e.watermark.Load()), r.limits.abs)
		if org != "" {
			due = append(due, r.state.absence.fire(org, tickOf(e.orgs.mark(org)), r.limits.abs)...)
		}
		for _, x := range due {
			// The rule as it is now: a detection restored from state has
			// none (RuleInfo is not stored).
			det := *x.Det
			det.Rule = r.info
			dets := []Detection{det}
			raw, err := withDetections(x.Raw, dets)
			if err != nil {
				if e.hooks.RuleError != nil {
					e.hooks.RuleError(r.ID, fmt.Errorf("absence: %w", err))
				}
				continue
			}
			out = append(out, Deferred{Out: raw, Meta: x.Meta, Detections: dets})
			if e.hooks.Match != nil {
				e.hooks.Match(r.ID)
			}
		}
	}
	return out
}
