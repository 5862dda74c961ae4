package detect

import (
	"encoding/json"
	"strings"
)

// Routing: what a repartition step needs to send every event to the state
// its rules use, as Kafka Streams repartitions by a new key before a
// stateful operation.
//
// Each rule keeps its state under a key of its own (a threshold's group_by,
// a remembered value's previous.key, a sequence's by, a first sighting's
// key, an absence's by, and for the other rules the dedup key their alert
// openings are assigned under). One engine seeing every event of the same
// (rule, key) gives that rule's tags whatever else it sees; so a worker that
// is sent, for each rule, every event that could touch the rule's state
// under a key, and evaluates only that rule on it (ProcessRule), tags
// exactly as one process holding all the state does.
//
// Routes decides this without touching state. Most decisions are exact: a
// condition that cannot read `previous` depends on the event alone, so it
// is evaluated and only the events it admits are routed. A rule that
// remembers (`previous`) may match or remember on any event its index
// admits, and its condition reads state, so every such event is routed by
// previous.key. Such a rule's alert openings (its dedup key) and, if it
// also counts or orders, that state are then held with previous.key: exact
// when those keys are functions of previous.key, as in the pack's rules.

// Route says that rule Rule keeps the event's state under Key: the state
// key, scoped by the event's org (scope.go).
type Route struct {
	Rule, Key string
}

// PartitionKey is the record key that brings every event of one (rule,
// key) to the same partition of a repartition topic.
func (r Route) PartitionKey() string { return r.Rule + "\x00" + r.Key }

// Routes lists, for each rule the event could affect, the key its state
// uses. A malformed event has none (every rule would pass it on untagged);
// rule errors leave the rule out, as they leave it untagged.
func (e *Engine) Routes(raw []byte, meta []MetaField) ([]Route, error) {
	routes, _, err := e.RouteEvent(raw, meta)
	return routes, err
}

// WatermarkRule is the rule a repartition topic's watermark records name:
// no rule has it (ids starting with @ are refused), so a worker evaluates
// none on them, and only its event time moves.
const WatermarkRule = "@watermark"

// Watermark is an org's event time, for every partition of a repartition
// topic. A worker's absences fire by the event time of their org that its
// partition has seen (fireAbsences); a partition that receives nothing of
// an org for a while would fire them late, and after other events than one
// process would. So the route step sends each org's time to every partition
// as it enters a new absence tick: a record whose body is this one (the
// event's published time) and whose rule is WatermarkRule, after the
// event's own routes.
type Watermark struct {
	Body []byte // {"published": …}
}

// RouteEvent is Routes, with the watermark to send to every partition when
// the event moves its org's time (as the detecting engine clamps it) into a
// new absence tick. Call it on each org's events in order, as a worker
// would see them.
func (e *Engine) RouteEvent(raw []byte, meta []MetaField) ([]Route, *Watermark, error) {
	pe, err := e.acquire(raw, meta)
	if err != nil {
		return nil, nil, err
	}
	defer releaseEvent(pe)
	ev := &pe.ev
	routes := e.routes(ev)
	return routes, e.watermarkOf(ev), nil
}

// watermarkOf is the watermark ev sends, if it moves its org into a new
// absence tick.
func (e *Engine) watermarkOf(ev *event) *Watermark {
	if ev.timeErr != nil {
		return nil
	}
	at := min(ev.at, e.now().UnixNano()+e.maxLateness)
	if prev := e.routed.raiseFrom(ev.org(), at); tickOf(at) <= tickOf(prev) {
		return nil
	}
	n, _ := ev.root.lookup("published")
	body, err := json.Marshal(struct {
		Published string `json:"published"`
	}{n.str})
	if err != nil {
		return nil
	}
	return &Watermark{Body: body}
}

func (e *Engine) routes(ev *event) []Route {
	set := e.active.Load()
	ev.act.lists = set.lists
	var out []Route
	for _, i := range set.index.candidates(ev) {
		if set.index.excluded(i, ev.root) {
			continue
		}
		r := set.rules[i]
		if key, ok := routeKey(r, ev); ok {
			out = append(out, Route{Rule: r.ID, Key: strings.Clone(ev.scoped(key))})
		}
	}
	return out
}

// routeKey is the key the rule keeps the event's state under, and whether
// evaluating the rule on the event could change or read any state.
// Exceptions are not applied: the rule's worker applies them, and an event
// sent needlessly is only evaluated for nothing.
func routeKey(r activeRule, ev *event) (string, bool) {
	act := &ev.act
	act.previous, act.prevSize = nil, 0
	if (r.Previous != nil || r.stateful()) && ev.timeErr != nil {
		return "", false // the rule fails on it without touching state
	}
	if r.Previous != nil {
		key, err := evalKey(r.prevKey, act, "")
		return key, err == nil
	}
	switch {
	case r.Sequence != nil:
		return sequenceRoute(r, act)
	case r.Absence != nil:
		return absenceRoute(r, act)
	}
	if ok, err := evalBool(r.condition, act); err != nil || !ok {
		return "", false
	}
	var key string
	var err error
	switch {
	case r.Threshold != nil:
		key, err = evalKey(r.groupBy, act, "")
	case r.FirstSeen != nil:
		key, err = evalKey(r.firstKey, act, "")
	default:
		key, err = dedupKeyOf(r, act)
	}
	return key, err == nil
}

// dedupKeyOf is the key a single-event rule's alert openings are assigned
// under (alert.go): dedup.key, by default the title.
func dedupKeyOf(r activeRule, act *activation) (string, error) {
	title, err := r.title.render(act)
	if err != nil {
		return "", err
	}
	return evalKey(r.dedupKey, act, title)
}

// sequenceRoute: a sequence records the event when its condition or any
// step's `when` holds.
func sequenceRoute(r activeRule, act *activation) (string, bool) {
	held, err := evalBool(r.condition, act)
	held = held && err == nil
	for _, prg := range r.seqSteps {
		if held {
			break
		}
		ok, err := evalBool(prg, act)
		held = ok && err == nil
	}
	if !held {
		return "", false
	}
	key, err := evalKey(r.seqBy, act, "")
	return key, err == nil
}

// absenceRoute: an absence opens an expectation when its condition holds
// and closes them when followed_by does.
func absenceRoute(r activeRule, act *activation) (string, bool) {
	opens, err := evalBool(r.condition, act)
	held := opens && err == nil
	if !held {
		closes, err := evalBool(r.followedBy, act)
		held = closes && err == nil
	}
	if !held {
		return "", false
	}
	key, err := evalKey(r.absenceBy, act, "")
	return key, err == nil
}
