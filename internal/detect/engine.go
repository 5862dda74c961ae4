package detect

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// DefaultMaxLateness is how far behind the newest event time an event may
// arrive and still find the state it needs.
const DefaultMaxLateness = time.Hour

// expireStep is how far event time moves between expiry sweeps. Sweeps
// follow the watermark, never event counts or clocks, so that the state an
// event meets — and so its tags, even for an event later than MaxLateness —
// depends only on the events before it: an engine restored after a crash
// sweeps where an uninterrupted one did.
const expireStep = int64(5 * time.Minute)

// Detection is one matched rule on one event, as written into the event's
// top-level "detections" array.
type Detection struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	AlertID  string `json:"alert_id"`
	Dedup    string `json:"dedup"`
	Count    int    `json:"count,omitempty"`
	Context  any    `json:"context,omitempty"`
	// Values: a distinct count's values (threshold.distinct), sorted, at
	// most 100.
	Values []string `json:"values,omitempty"`
	// Sequence: the uuids of a sequence's events in time order, the
	// condition's event last (at most 100, the latest).
	Sequence []string `json:"sequence,omitempty"`
	// Rule describes the rule that matched, for alerts (not written into
	// the event).
	Rule *RuleInfo `json:"-"`
}

// RuleError is an error of one rule on one event, as Hooks.RuleError gets
// it: with the rule's file and the event's uuid, for a log line an author
// can act on. Its text is the error's own.
type RuleError struct {
	Rule, File, UUID string
	Err              error
}

func (e *RuleError) Error() string { return e.Err.Error() }
func (e *RuleError) Unwrap() error { return e.Err }

// Hooks let the host observe the engine (metrics, logs). Nil hooks are
// skipped. They are called concurrently.
type Hooks struct {
	RuleError func(ruleID string, err error)
	Match     func(ruleID string)
	// Excepted: an exception kept the event from the rule.
	Excepted func(ruleID string)
	// Evicted: n keys of the rule were evicted to keep it within
	// MaxStateKeys; called with 0 when the rule is installed.
	Evicted func(ruleID string, n int)
	// StateKeys: the number of keys of the rule's state changed by delta
	// (reported at each expiry sweep, after evictions and on release).
	StateKeys func(ruleID string, delta int64)
	// Evaluated: the rule was evaluated on an event, taking d (its
	// condition, state and alert fields). Set only to measure rules
	// (`oktadetect rules bench`): it costs two clock reads per rule.
	Evaluated func(ruleID string, d time.Duration)
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	// MaxLateness: state is freed once the newest event time is this much
	// past what an event could still need. 0 means DefaultMaxLateness.
	MaxLateness time.Duration
	Hooks       Hooks
	// Now is the wall clock, which bounds how far an event stamped in the
	// future moves event time on; nil means time.Now.
	Now func() time.Time

	// noIndex evaluates every rule on every event instead of only those
	// whose eventType guard admits it. The tags are the same; only rule
	// errors on events a rule could never tag differ. For tests and
	// benchmarks.
	noIndex bool

	// MaxStateKeys bounds the keys of each rule's state (state_bound.go);
	// 0 means DefaultMaxStateKeys, negative means no bound.
	MaxStateKeys int

	// TrackChanges records the state keys each event changes, for a store
	// that writes changes rather than whole snapshots (StateFile's journal,
	// a partition's changelog).
	TrackChanges bool
}

// activeRule pairs a compiled rule with its state.
type activeRule struct {
	*compiledRule
	state      *ruleState
	exceptions []*compiledException // those naming the rule
}

func exceptionsOf(rs *RuleSet, id string) []*compiledException {
	var out []*compiledException
	for i := range rs.exceptions {
		if matchesRule(id, rs.exceptions[i].rules) {
			out = append(out, &rs.exceptions[i])
		}
	}
	return out
}

// excepted says whether an exception keeps the event from the rule. An
// exception that fails on the event does not apply.
func (r activeRule) excepted(act *activation) bool {
	for _, x := range r.exceptions {
		if ok, err := evalBool(x.when, act); err == nil && ok {
			return true
		}
	}
	return false
}

type activeSet struct {
	rules    []activeRule
	index    *ruleIndex
	lists    ref.Val
	absences []int // the absence rules, which fire on any event's time
}

// Engine evaluates a rule set on JSON events. It is safe for concurrent use.
type Engine struct {
	active      atomic.Pointer[activeSet]
	swapMu      sync.Mutex
	hooks       Hooks
	maxLateness int64
	orgs        *orgMarks    // each org's event time, for sweeping (watermark_org.go)
	routed      *orgMarks    // each org's event time as routed (RouteEvent's watermarks), not state
	watermark   atomic.Int64 // newest event time seen
	events      atomic.Uint64
	freezeAfter uint64     // events between freezing passes, and the idleness frozen (state_frozen.go)
	sweepAll    bool       // tests: sweeps visit every shard, whatever its gate (sweepGate)
	sweepMu     sync.Mutex // one sweep at a time (sweepKind)
	noIndex     bool       // evaluate every rule on every event (tests)
	track       bool       // record changed state keys (partitioned state)
	maxKeys     int64
	now         func() time.Time
	sizes       eventSizes
}

// NewEngine starts an engine with fresh state.
func NewEngine(rs *RuleSet, opts EngineOptions) *Engine {
	e := &Engine{hooks: opts.Hooks, maxLateness: int64(opts.MaxLateness), noIndex: opts.noIndex, track: opts.TrackChanges, now: opts.Now, orgs: newOrgMarks(), routed: newOrgMarks(), freezeAfter: freezeEvery}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxLateness == 0 {
		e.maxLateness = int64(DefaultMaxLateness)
	}
	switch e.maxKeys = int64(opts.MaxStateKeys); {
	case e.maxKeys == 0:
		e.maxKeys = DefaultMaxStateKeys
	case e.maxKeys < 0:
		e.maxKeys = 0
	}
	e.watermark.Store(minTime)
	e.Swap(rs)
	return e
}

const minTime = -1 << 63

// Swap installs a new rule set atomically. Rules whose file is unchanged
// keep their state; others start fresh.
func (e *Engine) Swap(rs *RuleSet) {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	old := map[string]*ruleState{}
	cur := e.active.Load()
	if cur != nil {
		for _, r := range cur.rules {
			old[r.ID+"\x00"+r.fingerprint] = r.state
		}
	}
	next := &activeSet{}
	for _, r := range rs.rules {
		st, ok := old[r.ID+"\x00"+r.fingerprint]
		if !ok {
			st = newRuleState(e.track, &e.events, e.maxKeys)
		}
		// Series exist from the start (evictions at 0, the key gauge at
		// its level), so dashboards and alerts see every rule at once.
		if e.hooks.Evicted != nil {
			e.hooks.Evicted(r.ID, 0)
		}
		if e.hooks.StateKeys != nil {
			e.hooks.StateKeys(r.ID, 0)
		}
		if r.Absence != nil {
			next.absences = append(next.absences, len(next.rules))
		}
		next.rules = append(next.rules, activeRule{compiledRule: r, state: st, exceptions: exceptionsOf(rs, r.ID)})
	}
	next.lists = rs.lists
	next.index = newRuleIndex(next.rules, !e.noIndex)
	e.active.Store(next)
	if cur != nil {
		e.releaseDropped(cur, next)
	}
}

// RuleIDs lists the active rule ids.
func (e *Engine) RuleIDs() []string {
	cur := e.active.Load()
	ids := make([]string, len(cur.rules))
	for i, r := range cur.rules {
		ids[i] = r.ID
	}
	return ids
}

// Result of evaluating one event.
type Result struct {
	// Out is the event to emit: the input bytes themselves when nothing
	// matched, otherwise the event with "detections" added.
	Out        []byte
	Detections []Detection
	// Deferred are absences this event's time made due (see Deferred): new
	// messages to emit after Out.
	Deferred []Deferred
}

// Deferred is the output of an absence: the event that opened the
// expectation (with the metadata it came with), carrying the absence's
// detection, emitted once event time has passed its window and grace. It
// is an alert only: the event itself was emitted when it arrived.
type Deferred struct {
	Out        []byte
	Meta       []MetaField
	Detections []Detection
}

// Process evaluates every rule on one JSON event. A malformed event is
// returned unchanged with an error; rule errors go to Hooks.RuleError.
//
// Only the rules whose eventType guard admits the event run (see index.go);
// the others could not tag it.
func (e *Engine) Process(raw []byte) (Result, error) {
	return e.ProcessWithMeta(raw, nil)
}

// ProcessWithMeta is Process with metadata the rules read as
// `event.oktadetect.<name>` (see metaview.go); the output bytes do not
// include it.
func (e *Engine) ProcessWithMeta(raw []byte, meta []MetaField) (Result, error) {
	return e.process(raw, meta, "")
}

// ProcessRule is ProcessWithMeta for the one rule id only (routes.go): the
// event's other rules are neither evaluated nor shown it.
func (e *Engine) ProcessRule(id string, raw []byte, meta []MetaField) (Result, error) {
	return e.process(raw, meta, id)
}

// process evaluates the event's candidate rules, or only the rule named
// only when it is not empty.
func (e *Engine) process(raw []byte, meta []MetaField, only string) (Result, error) {
	pe, err := e.acquire(raw, meta)
	if err != nil {
		return Result{Out: raw}, err
	}
	defer releaseEvent(pe)
	ev := &pe.ev
	e.advance(ev)
	set := e.active.Load()
	ev.act.lists = set.lists
	var dets []Detection
	for _, i := range set.index.candidates(ev) {
		if only != "" && set.rules[i].ID != only || set.index.excluded(i, ev.root) {
			continue
		}
		r := set.rules[i]
		if len(r.exceptions) > 0 && r.excepted(&ev.act) {
			if e.hooks.Excepted != nil {
				e.hooks.Excepted(r.ID)
			}
			continue
		}
		var began time.Time
		if e.hooks.Evaluated != nil {
			began = time.Now()
		}
		d, err := e.evalRule(r, ev)
		if e.hooks.Evaluated != nil {
			e.hooks.Evaluated(r.ID, time.Since(began))
		}
		if n := r.state.enforceBound(); n > 0 {
			e.reportEvictions(r, n)
		}
		if err != nil {
			if e.hooks.RuleError != nil {
				e.hooks.RuleError(r.ID, &RuleError{Rule: r.ID, File: r.Path, UUID: strings.Clone(ev.uuidOf()), Err: err})
			}
			continue
		}
		if d != nil {
			dets = append(dets, *d)
			if e.hooks.Match != nil {
				e.hooks.Match(r.ID)
			}
		}
	}
	deferred := e.fireAbsences(set, ev)
	if len(dets) == 0 {
		return Result{Out: raw, Deferred: deferred}, nil
	}
	out, err := addDetections(raw, ev.root, len(meta) > 0, dets)
	if err != nil {
		return Result{Out: raw, Deferred: deferred}, err
	}
	return Result{Out: out, Detections: dets, Deferred: deferred}, nil
}

// acquire decodes the event, with the metadata view when meta is given.
func (e *Engine) acquire(raw []byte, meta []MetaField) (*pooledEvent, error) {
	e.sizes.note(len(raw))
	pe, err := acquireEvent(raw)
	if err != nil {
		return nil, err
	}
	pe.ev.act.largeEvents = e.sizes.overBound()
	if len(meta) > 0 {
		pe.doc.addMetaView(meta)
		pe.ev.setDoc(raw, &pe.doc)
		pe.ev.meta = meta
	}
	return pe, nil
}

// event is one decoded event, with the activation all its rules share.
type event struct {
	raw     []byte
	root    *jsonObject // the event as a CEL map
	at      int64       // published, Unix ns
	timeErr error       // why published is unusable, if it is
	act     activation
	meta    []MetaField // the metadata view's fields (absences keep them)

	// Looked up when a rule first needs them (scope.go).
	orgName, uuid     string
	orgDone, uuidDone bool
}

// decodeEvent decodes the JSON once (jsondoc_parse.go): numbers are doubles, the
// CEL double, as in CEL's own JSON mapping and encoding/json's `any`, so
// `lat > 50.0` and `n == 3` hold whether the JSON says 50 or 50.5, 3 or 3.0.
func decodeEvent(raw []byte) (*event, error) {
	doc, err := parseEvent(raw)
	if err != nil {
		return nil, err
	}
	ev := &event{}
	ev.setDoc(raw, doc)
	return ev, nil
}

// eventType is the event's eventType, if it is a string.
func (ev *event) eventType() (string, bool) {
	n, ok := ev.root.lookup("eventType")
	if !ok || n.kind != jString {
		return "", false
	}
	return n.str, true
}

func publishedTime(obj *jsonObject) (int64, error) {
	n, ok := obj.lookup("published")
	if !ok || n.kind != jString {
		return 0, errors.New("event has no string field published")
	}
	t, err := time.Parse(time.RFC3339Nano, n.str)
	if err != nil {
		return 0, fmt.Errorf("event published %q is not RFC 3339", n.str)
	}
	return t.UnixNano(), nil
}

// advance moves the watermark and now and then frees expired state.
//
// The watermark only decides what state is freed, so it is bounded by the
// wall clock plus MaxLateness: one event stamped far in the future (a broken
// clock, a corrupt record) must not free everyone's state. Evaluation still
// uses the event's own time.
func (e *Engine) advance(ev *event) {
	// The clock of key recency (state_bound.go), which also says when idle
	// keys are frozen (state_frozen.go).
	if e.events.Add(1)%e.freezeAfter == 0 {
		e.freezeIdle()
	}
	if ev.timeErr != nil {
		return
	}
	at := min(ev.at, e.now().UnixNano()+e.maxLateness)
	if org := ev.org(); org != "" {
		e.orgs.raise(org, at)
	}
	if from, to, moved := e.setWatermark(at); moved && from != minTime && stepOf(from) != stepOf(to) {
		e.expire(sweepSpan{from: stepOf(from), to: stepOf(to)})
	}
}

// sweepSpan is the steps the watermark moved across, from one sweep to the
// next. State kept for long is swept every few steps, not every one
// (sweepEvery).
type sweepSpan struct {
	from, to int64
	all      bool // every kind of state, whatever its cadence
}

// sweepEvery is the steps between sweeps of state kept for retention d:
// about a twelfth of d, so that a key is freed at most that late after it
// is due (a group of a 24-hour window within two hours, one of 10 minutes
// at the next step) and a sweep does not visit every long-lived key at
// every step. It depends only on d, and the steps are those of event time:
// a restored engine sweeps each kind where an uninterrupted one did.
func sweepEvery(d int64) int64 { return max(1, d/12/expireStep) }

// crosses reports whether state kept for retention d is swept: the
// watermark crossed a multiple of its cadence.
func (s sweepSpan) crosses(d int64) bool {
	every := sweepEvery(d)
	return s.all || floorDiv(s.from, every) != floorDiv(s.to, every)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// stepOf is the expiry step a time falls in (floored, for times before
// 1970 too).
func stepOf(t int64) int64 {
	q := t / expireStep
	if t%expireStep < 0 {
		q--
	}
	return q
}

// Expire frees state that no event within MaxLateness of the newest event
// time can need, of every kind of state. It runs on its own as event time
// moves (advance).
func (e *Engine) Expire() { e.expire(sweepSpan{all: true}) }

func (e *Engine) expire(span sweepSpan) {
	e.sweepMu.Lock()
	defer e.sweepMu.Unlock()
	w := e.watermark.Load()
	if w == minTime {
		return
	}
	h := e.orgs.horizons(w, e.maxLateness)
	if e.sweepAll {
		h.top = math.MaxInt64
	}
	for _, r := range e.active.Load().rules {
		r.state.expire(h, r.retention(), span)
		e.reportKeys(r)
	}
}

func (r *compiledRule) retention() retention {
	keep := retention{period: int64(r.Dedup.Period)}
	if r.Threshold != nil {
		keep.window = int64(r.Threshold.Window)
	}
	if r.Previous != nil {
		keep.ttl = int64(r.Previous.TTL)
	}
	if r.Sequence != nil {
		keep.within = int64(r.Sequence.Within)
	}
	if r.FirstSeen != nil {
		keep.history = int64(r.FirstSeen.History)
		keep.learns = r.FirstSeen.Learn > 0
	}
	return keep
}

// noLists is `lists` when the set has none.
var noLists = listsValue(nil)

// activation binds `event` and, for rules that remember, `previous`.
type activation struct {
	event    ref.Val
	previous ref.Val
	prevSize int     // jsonSize of previous (untracked.go)
	lists    ref.Val // Tuning.Lists, as `lists`
	// largeEvents: the engine has seen an event larger than the untracked
	// programs' estimates assume (untracked.go).
	largeEvents bool
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.event, true
	case "previous":
		if a.previous == nil {
			return types.NullValue, true
		}
		return a.previous, true
	case "lists":
		if a.lists == nil {
			return noLists, true
		}
		return a.lists, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// evalRule runs one rule: previous lookup, condition, remembering, then
// the rule's way of counting (eval_state.go), then the alert fields.
func (e *Engine) evalRule(r activeRule, ev *event) (*Detection, error) {
	act := &ev.act
	act.previous, act.prevSize = nil, 0
	if r.Previous != nil || r.stateful() {
		if ev.timeErr != nil {
			return nil, ev.timeErr
		}
	}
	matched, err := e.condition(r, ev, act)
	switch {
	case r.Sequence != nil:
		return e.evalSequence(r, ev, act, matched, err)
	case r.Absence != nil:
		return nil, e.evalAbsence(r, ev, act, matched, err)
	}
	if err != nil || !matched {
		return nil, err
	}
	var evd *evidence
	switch {
	case r.Threshold != nil:
		evd, err = e.evalThreshold(r, ev, act)
	case r.FirstSeen != nil:
		evd, err = e.evalFirstSeen(r, ev, act)
	default:
		return e.alert(r, ev, act, nil)
	}
	if err != nil || evd == nil {
		return nil, err
	}
	return e.alert(r, ev, act, evd)
}

// condition evaluates the condition; for rules with `previous`, it does the
// lookup before and the remembering after, under the key's lock.
func (e *Engine) condition(r activeRule, ev *event, act *activation) (bool, error) {
	if r.Previous == nil {
		return evalBool(r.condition, act)
	}
	key, err := evalKey(r.prevKey, act, "")
	if err != nil {
		return false, fmt.Errorf("previous.key: %w", err)
	}
	key, id := ev.stateKey(key), ev.eventID()
	sh := r.state.lockPrevious(key)
	defer sh.mu.Unlock()
	if v, ok := sh.lookup(key, ev.at, int64(r.Previous.TTL), id); ok {
		act.previous = types.DefaultTypeAdapter.NativeToValue(v)
		act.prevSize = jsonSize(v, untrackedMaxEvent)
	}
	matched, condErr := evalBool(r.condition, act)
	if err := e.rememberLocked(r, sh, key, id, ev, act); err != nil {
		return false, errors.Join(condErr, err)
	}
	return matched, condErr
}

// rememberLocked stores this event's value (id: its uuid hash) when `when`
// holds (default: the condition's own inputs are irrelevant; every event is
// remembered).
func (e *Engine) rememberLocked(r activeRule, sh *previousShard, key string, id uint64, ev *event, act *activation) error {
	if r.prevWhen != nil {
		when, err := evalBool(r.prevWhen, act)
		if err != nil {
			return fmt.Errorf("previous.when: %w", err)
		}
		if !when {
			return nil
		}
	}
	// The document's scratch buffer, not a local array: the encoder's
	// methods would move one to the heap on every call. remember copies.
	doc := ev.root.doc
	enc := encoder{b: doc.scratch[:0]}
	defer func() {
		if cap(enc.b) <= maxScratch { // a rare huge value is not kept pooled
			doc.scratch = enc.b[:0]
		}
	}()
	if r.prevValue != nil {
		v, _, err := r.prevValue.Eval(act)
		if err != nil {
			return fmt.Errorf("previous.value: %w", err)
		}
		if err := encodeRemembered(&enc, v); err != nil {
			return fmt.Errorf("previous.value: %w", err)
		}
	} else if err := encodeValue(&enc, ev.root.native(), 0); err != nil {
		return fmt.Errorf("previous.value: %w", err)
	}
	sh.remember(key, ev.at, int64(r.Previous.TTL), e.maxLateness, id, enc.b)
	return nil
}

func evalBool(prg cel.Program, act *activation) (bool, error) {
	v, _, err := prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression gave %s, not bool", v.Type().TypeName())
	}
	return bool(b), nil
}

// evalKey renders a key expression; nil prg means the default.
func evalKey(prg cel.Program, act *activation, def string) (string, error) {
	if prg == nil {
		return def, nil
	}
	v, _, err := prg.Eval(act)
	if err != nil {
		return "", err
	}
	return valueString(v), nil
}
