package detect

import (
	"slices"
	"sort"
)

// sequenceShard holds the sequences of its keys.
type sequenceShard = keyShard[seqKey, *seqKey]

// seqKey is one `by` key of a sequence rule: per earlier step, its events
// in time order; the events of the condition (finals) with whether their
// sequence completed; and the first tags of tagged events.
type seqKey struct {
	keyMeta
	Steps  [][]seqEvent `json:"s"`
	Finals []seqFinal   `json:"f,omitempty"`
	Tags   tagMemos     `json:"m,omitempty"`
}

type seqEvent struct {
	At   int64  `json:"t"`
	ID   uint64 `json:"i,omitempty"`
	UUID string `json:"u,omitempty"`
}

type seqFinal struct {
	seqEvent
	Done bool `json:"d,omitempty"` // its sequence completed: tagged on it or on a late step
}

// seqObservation is one event of a sequence rule: which earlier steps'
// `when` held (bit i: step i) and whether the condition did.
type seqObservation struct {
	ev    seqEvent // UUID copied
	steps uint32
	final bool
}

// seqLimits are a sequence rule's numbers, in event-time nanoseconds.
type seqLimits struct {
	counts         []int
	within, period int64
}

// observeSequence records the event and returns the evidence of the
// sequence it completes: its own (as the condition's event), or else, for
// a late step, that of the earliest condition event it completes. A
// re-delivered event gets its first evidence and changes nothing.
func (s *ruleState) observeSequence(key string, o seqObservation, lim seqLimits) *evidence {
	sh := &s.sequence[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := sh.get(key, o.ev.At, func(name string) *seqKey { return &seqKey{keyMeta: keyMeta{name: name}} })
	k.normalize(len(lim.counts))
	if o.ev.ID != 0 && k.holds(o) {
		return k.Tags.get(o.ev.At, o.ev.ID).evidence()
	}
	sh.dirty.mark(k.name)
	for i := range k.Steps {
		if o.steps&(1<<i) != 0 {
			k.Steps[i] = insertSeqEvent(k.Steps[i], o.ev)
		}
	}
	var found *evidence
	if o.final {
		f := k.insertFinal(o.ev)
		if found = k.complete(f, lim); found != nil {
			k.Finals[f].Done = true
		}
	}
	if o.steps != 0 {
		// A late step may complete condition events after it.
		for f := sort.Search(len(k.Finals), func(i int) bool { return k.Finals[i].At > o.ev.At }); f < len(k.Finals) && k.Finals[f].At < o.ev.At+lim.within; f++ {
			if k.Finals[f].Done {
				continue
			}
			if ev := k.complete(f, lim); ev != nil {
				k.Finals[f].Done = true
				if found == nil {
					found = ev
				}
			}
		}
	}
	k.Tags = withTag(k.Tags, o.ev.ID, o.ev.At, found)
	return found
}

func (k *seqKey) normalize(steps int) {
	for len(k.Steps) < steps {
		k.Steps = append(k.Steps, nil)
	}
}

// holds reports whether the event is recorded already (re-delivered).
func (k *seqKey) holds(o seqObservation) bool {
	has := func(list []seqEvent) bool {
		for i := sort.Search(len(list), func(i int) bool { return list[i].At >= o.ev.At }); i < len(list) && list[i].At == o.ev.At; i++ {
			if list[i].ID == o.ev.ID {
				return true
			}
		}
		return false
	}
	if o.final {
		for i := sort.Search(len(k.Finals), func(i int) bool { return k.Finals[i].At >= o.ev.At }); i < len(k.Finals) && k.Finals[i].At == o.ev.At; i++ {
			if k.Finals[i].ID == o.ev.ID {
				return true
			}
		}
	}
	for i, list := range k.Steps {
		if o.steps&(1<<i) != 0 && has(list) {
			return true
		}
	}
	return false
}

func insertSeqEvent(list []seqEvent, e seqEvent) []seqEvent {
	i := sort.Search(len(list), func(i int) bool { return list[i].At > e.At })
	return slices.Insert(list, i, e)
}

func (k *seqKey) insertFinal(e seqEvent) int {
	i := sort.Search(len(k.Finals), func(i int) bool { return k.Finals[i].At > e.At })
	k.Finals = slices.Insert(k.Finals, i, seqFinal{seqEvent: e})
	return i
}

// complete checks the sequence ending at condition event f: each step in
// order, at least its count of events, each step's events published after
// every event of the step before, all after f's time minus within and
// before f's time. Taking the earliest events of each step leaves the most
// room to the next, so this finds a sequence whenever one exists. The
// evidence lists, per step, its events from the end of the step before to
// the start of the next (so every denial of a run shows, not only the
// first two), then f.
func (k *seqKey) complete(f int, lim seqLimits) *evidence {
	final := k.Finals[f].seqEvent
	bound := final.At - lim.within
	spans := make([][2]int, len(lim.counts))
	for i, n := range lim.counts {
		list := k.Steps[i]
		j := sort.Search(len(list), func(x int) bool { return list[x].At > bound })
		last := j + n - 1
		if last >= len(list) || list[last].At >= final.At {
			return nil
		}
		spans[i] = [2]int{j, last}
		bound = list[last].At
	}
	var uuids []string
	for i, sp := range spans {
		end := final.At
		if i+1 < len(spans) {
			end = k.Steps[i+1][spans[i+1][0]].At
		}
		list := k.Steps[i]
		for x := sp[0]; x < len(list) && list[x].At < end; x++ {
			if list[x].UUID != "" {
				uuids = append(uuids, list[x].UUID)
			}
		}
	}
	if final.UUID != "" {
		uuids = append(uuids, final.UUID)
	}
	if len(uuids) > maxListedValues {
		uuids = uuids[len(uuids)-maxListedValues:]
	}
	return &evidence{opening: bucketStart(final.At, lim.period), sequence: uuids}
}

// dropOld removes step events at or before stepCutoff (no condition event
// still to come can use them) and condition events before finalCutoff (no
// step event still to come can complete them), with their tags.
func (k *seqKey) dropOld(stepCutoff, finalCutoff int64) (changed, empty bool) {
	for i, list := range k.Steps {
		if n := sort.Search(len(list), func(x int) bool { return list[x].At > stepCutoff }); n > 0 {
			k.Steps[i] = slices.Clone(list[n:])
			changed = true
		}
	}
	if n := sort.Search(len(k.Finals), func(x int) bool { return k.Finals[x].At >= finalCutoff }); n > 0 {
		k.Finals = slices.Clone(k.Finals[n:])
		changed = true
	}
	before := k.Tags.Len()
	k.Tags.dropThrough(stepCutoff)
	changed = changed || k.Tags.Len() != before
	empty = len(k.Finals) == 0 && len(k.Tags) == 0
	for _, list := range k.Steps {
		empty = empty && len(list) == 0
	}
	return changed, empty
}

func (k *seqKey) clone() *seqKey {
	c := &seqKey{keyMeta: k.keyMeta, Finals: slices.Clone(k.Finals), Tags: k.Tags.clone()}
	for _, list := range k.Steps {
		c.Steps = append(c.Steps, slices.Clone(list))
	}
	return c
}

func expireSequences(sh *sequenceShard, h horizons, keep retention) {
	sh.expire(h, keep, func(name string, k *seqKey) (bool, bool) {
		horizon := h.of(name)
		return k.dropOld(horizon-keep.within, horizon)
	})
}
