package detect

import (
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// The rule index: at compile time each rule's condition is analysed for
// guards on event.eventType that must hold for it to be true —
// `event.eventType == 'x'`, `event.eventType in ['x', 'y']`,
// `event.eventType.startsWith('p')`, and `exists` over a list of string
// literals of either test (`['p.', 'q.'].exists(p, event.eventType.startsWith(p))`)
// — found in the conjuncts of `&&`, in every branch of `||`, and through
// cel.bind. At run time only the rules
// whose guard admits the event's type are evaluated; rules without a guard
// always run.
//
// Skipping is exact for tags and state: a false guard makes the whole
// condition false whatever its other parts give (CEL's && is false if any
// side is false, errors included), so the skipped rule could not tag the
// event, count it toward a threshold or open an alert. For rules with
// `previous`, the remembering step (`when`) must be guarded too; the rule
// runs when either could hold. What skipping changes is only rule errors on
// events a rule could never tag (a missing field in the previous.key, say):
// they are no longer evaluated, so no longer counted.

// eventGuard is the set of event types a rule can match: exact names and
// prefixes. A nil *eventGuard means "any event".
type eventGuard struct {
	exact    []string
	prefixes []string
}

func (g *eventGuard) admits(t string) bool {
	if slices.Contains(g.exact, t) {
		return true
	}
	for _, p := range g.prefixes {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

func unionGuards(a, b *eventGuard) *eventGuard {
	if a == nil || b == nil {
		return nil
	}
	return &eventGuard{exact: append(slices.Clone(a.exact), b.exact...), prefixes: append(slices.Clone(a.prefixes), b.prefixes...)}
}

// guardOf analyses a checked expression; nil means unguarded.
func guardOf(a *cel.Ast) *eventGuard {
	if a == nil {
		return nil
	}
	return exprGuard(a.NativeRep().Expr())
}

func exprGuard(e ast.Expr) *eventGuard {
	switch e.Kind() {
	case ast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case operators.LogicalAnd:
			// True only if every conjunct is: any guarded conjunct will do.
			for _, a := range args {
				if g := exprGuard(a); g != nil {
					return g
				}
			}
			return nil
		case operators.LogicalOr:
			var g *eventGuard
			for i, a := range args {
				ag := exprGuard(a)
				if ag == nil {
					return nil
				}
				if i == 0 {
					g = ag
				} else {
					g = unionGuards(g, ag)
				}
			}
			return g
		case operators.Equals:
			if len(args) == 2 {
				if isEventType(args[0]) {
					if s, ok := stringLit(args[1]); ok {
						return &eventGuard{exact: []string{s}}
					}
				}
				if isEventType(args[1]) {
					if s, ok := stringLit(args[0]); ok {
						return &eventGuard{exact: []string{s}}
					}
				}
			}
		case operators.In:
			if len(args) == 2 && isEventType(args[0]) && args[1].Kind() == ast.ListKind {
				l := args[1].AsList()
				if len(l.OptionalIndices()) > 0 {
					return nil
				}
				g := &eventGuard{}
				for _, el := range l.Elements() {
					s, ok := stringLit(el)
					if !ok {
						return nil
					}
					g.exact = append(g.exact, s)
				}
				return g
			}
		case "startsWith":
			if c.IsMemberFunction() && len(args) == 1 && isEventType(c.Target()) {
				if s, ok := stringLit(args[0]); ok {
					return &eventGuard{prefixes: []string{s}}
				}
			}
		}
	case ast.ComprehensionKind:
		// cel.bind(v, init, body): no iteration (an empty range), the
		// result is the body.
		c := e.AsComprehension()
		if r := c.IterRange(); r.Kind() == ast.ListKind && len(r.AsList().Elements()) == 0 {
			return exprGuard(c.Result())
		}
		return existsGuard(c)
	}
	return nil
}

// existsGuard recognises `['a', 'b'].exists(p, event.eventType.startsWith(p))`
// (prefixes) and `['a', 'b'].exists(p, event.eventType == p)` (exact
// types): the expansion of the exists macro over a list of string literals,
// whose predicate is one of those tests of the iteration variable. Exists
// is true only if the predicate holds for some element.
func existsGuard(c ast.ComprehensionExpr) *eventGuard {
	if c.HasIterVar2() || c.IterRange().Kind() != ast.ListKind {
		return nil
	}
	l := c.IterRange().AsList()
	if len(l.OptionalIndices()) > 0 {
		return nil
	}
	var lits []string
	for _, el := range l.Elements() {
		s, ok := stringLit(el)
		if !ok {
			return nil
		}
		lits = append(lits, s)
	}
	isIdent := func(e ast.Expr, name string) bool {
		return e.Kind() == ast.IdentKind && e.AsIdent() == name
	}
	init := c.AccuInit()
	if init.Kind() != ast.LiteralKind || init.AsLiteral() != types.False || !isIdent(c.Result(), c.AccuVar()) {
		return nil
	}
	step := c.LoopStep()
	if step.Kind() != ast.CallKind || step.AsCall().FunctionName() != operators.LogicalOr {
		return nil
	}
	sargs := step.AsCall().Args()
	if len(sargs) != 2 || !isIdent(sargs[0], c.AccuVar()) || sargs[1].Kind() != ast.CallKind {
		return nil
	}
	pred := sargs[1].AsCall()
	args := pred.Args()
	switch pred.FunctionName() {
	case "startsWith":
		if pred.IsMemberFunction() && len(args) == 1 && isEventType(pred.Target()) && isIdent(args[0], c.IterVar()) {
			return &eventGuard{prefixes: lits}
		}
	case operators.Equals:
		if len(args) == 2 && (isEventType(args[0]) && isIdent(args[1], c.IterVar()) ||
			isEventType(args[1]) && isIdent(args[0], c.IterVar())) {
			return &eventGuard{exact: lits}
		}
	}
	return nil
}

// isEventType: `event.eventType`, `event['eventType']` or
// `event.?eventType.orValue(<string>)`. (An event whose eventType is absent
// or not a string runs every rule, so the default never matters.)
func isEventType(e ast.Expr) bool {
	var operand ast.Expr
	if e.Kind() == ast.CallKind {
		c := e.AsCall()
		if c.FunctionName() == "orValue" && c.IsMemberFunction() && len(c.Args()) == 1 {
			if _, ok := stringLit(c.Args()[0]); !ok {
				return false
			}
			t := c.Target()
			if t.Kind() != ast.CallKind {
				return false
			}
			opt := t.AsCall()
			if opt.FunctionName() != operators.OptSelect || len(opt.Args()) != 2 {
				return false
			}
			if k, ok := stringLit(opt.Args()[1]); !ok || k != "eventType" {
				return false
			}
			o := opt.Args()[0]
			return o.Kind() == ast.IdentKind && o.AsIdent() == "event"
		}
	}
	switch e.Kind() {
	case ast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() || s.FieldName() != "eventType" {
			return false
		}
		operand = s.Operand()
	case ast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
			return false
		}
		if k, ok := stringLit(c.Args()[1]); !ok || k != "eventType" {
			return false
		}
		operand = c.Args()[0]
	default:
		return false
	}
	return operand.Kind() == ast.IdentKind && operand.AsIdent() == "event"
}

func stringLit(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// ruleGuard is when a compiled rule must run: its condition's guard, and
// for rules that remember, also its `when` (an unguarded or absent `when`
// remembers on any event), and for sequences and absences the guards of
// their steps and of followed_by, which change state on their own.
func ruleGuard(r *compiledRule) *eventGuard {
	g := r.conditionGuard
	if r.Previous != nil {
		if r.prevWhen == nil {
			return nil
		}
		g = unionGuards(g, r.whenGuard)
	}
	for _, x := range r.stateExprs {
		g = unionGuards(g, x.guard)
	}
	return g
}

// ruleIndex maps an event type to the rules (indices into the active set,
// in evaluation order) that can match it.
type ruleIndex struct {
	all      []int
	always   []int            // unguarded rules
	byType   map[string][]int // every exact type some guard names
	prefixed bool             // some guard has a prefix
	guards   []*eventGuard    // per rule
	fields   []ruleFields     // per rule
	cache    sync.Map         // type → []int, for unnamed types with prefixes
	cached   int
	cacheMu  sync.Mutex
}

// maxIndexCache bounds the cache of types resolved through prefixes.
const maxIndexCache = 4096

func newRuleIndex(rules []activeRule, enabled bool) *ruleIndex {
	ix := &ruleIndex{byType: map[string][]int{}, guards: make([]*eventGuard, len(rules)), fields: make([]ruleFields, len(rules))}
	for i, r := range rules {
		ix.all = append(ix.all, i)
		if enabled {
			ix.guards[i] = ruleGuard(r.compiledRule)
			ix.fields[i] = fieldsOf(r.compiledRule)
		}
		g := ix.guards[i]
		if g == nil {
			ix.always = append(ix.always, i)
			continue
		}
		for _, t := range g.exact {
			ix.byType[t] = nil
		}
		if len(g.prefixes) > 0 {
			ix.prefixed = true
		}
	}
	for t := range ix.byType {
		ix.byType[t] = ix.resolve(t)
	}
	return ix
}

// resolve lists the rules that admit type t, in order.
func (ix *ruleIndex) resolve(t string) []int {
	var out []int
	for i, g := range ix.guards {
		if g == nil || g.admits(t) {
			out = append(out, i)
		}
	}
	return out
}

// candidates lists the rules to evaluate on ev. Events without a string
// eventType run every rule.
func (ix *ruleIndex) candidates(ev *event) []int {
	if len(ix.always) == len(ix.all) {
		return ix.all
	}
	t, ok := ev.eventType()
	if !ok {
		return ix.all
	}
	if rs, ok := ix.byType[t]; ok {
		return rs
	}
	if !ix.prefixed {
		return ix.always
	}
	if rs, ok := ix.cache.Load(t); ok {
		return rs.([]int)
	}
	rs := ix.resolve(t)
	ix.cacheMu.Lock()
	if ix.cached < maxIndexCache {
		ix.cache.Store(strings.Clone(t), rs)
		ix.cached++
	}
	ix.cacheMu.Unlock()
	return rs
}
