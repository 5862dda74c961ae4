package detect

import (
	"context"
	"math"
	"slices"
	"sync/atomic"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/decls"
	"github.com/google/cel-go/common/types/ref"
)

// Cost tracking makes every evaluation step report to a tracker, which
// roughly doubles the time of small expressions. Most rule expressions
// cannot reach the cost limit at all: CEL's static estimate of their worst
// cost, with every string, list or map no larger than the largest event
// they could read, is under it. Those get a second program built without
// the tracker, used as long as every event seen so far (whose values are
// all that `event` and `previous` can hold) is within that size. An event
// above it switches every expression back to the tracked program for good,
// so the limit is enforced exactly as before.

// untrackedMaxEvent is the event size (bytes) the estimates assume.
const untrackedMaxEvent = 64 << 10

// eventSizes remembers the largest event an engine has seen: once one is
// above untrackedMaxEvent, that engine's evaluations use the tracked
// programs for good (its state may hold values of that event). Other engines
// sharing the rule set are not affected.
type eventSizes struct{ largest atomic.Int64 }

func (s *eventSizes) note(n int) {
	for {
		cur := s.largest.Load()
		if int64(n) <= cur || s.largest.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// overBound says whether an event larger than the estimates assume was seen.
func (s *eventSizes) overBound() bool { return s.largest.Load() > untrackedMaxEvent }

// `previous` is not bounded by the event: a remembered value can grow from
// event to event (a list that keeps what each event adds). Its estimates
// therefore assume a size of their own, the largest of prevBounds under
// which the expression's worst cost is within the limit, and an evaluation
// uses the untracked program only when the remembered value at hand is no
// larger (prevSize, measured on each lookup: the longest string, list or
// map anywhere in it). The rules that filter a remembered list (device
// tokens per session, password spraying, push fatigue) fit at 64.
var prevBounds = []int{untrackedMaxEvent, 4096, 1024, 256, 64, 16}

// noPrevious is the bound of programs whose environment has no `previous`.
const noPrevious = math.MaxInt

// boundedSizes estimates the size of every value CEL cannot size itself
// (event fields, function results) as at most one event, and `previous`
// and what is selected from it as at most prev.
type boundedSizes struct{ prev uint64 }

func (b boundedSizes) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if p := n.Path(); len(p) > 0 && p[0] == "previous" {
		return &checker.SizeEstimate{Min: 0, Max: b.prev}
	}
	return &checker.SizeEstimate{Min: 0, Max: untrackedMaxEvent}
}

func (boundedSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// boundedProgram evaluates with the untracked program while events are
// small enough, and `previous` too, for its estimate to hold.
// Other methods are the tracked program's.
type boundedProgram struct {
	cel.Program // tracked
	untracked   cel.Program
	prevBound   int // largest prevSize the estimate holds for
}

func (p boundedProgram) pick(vars any) cel.Program {
	a, ok := vars.(*activation)
	if !ok || a.largeEvents {
		return p.Program
	}
	if p.prevBound == noPrevious || a.prevSize <= p.prevBound {
		return p.untracked
	}
	return p.Program
}

func (p boundedProgram) Eval(vars any) (ref.Val, *cel.EvalDetails, error) {
	return p.pick(vars).Eval(vars)
}

func (p boundedProgram) ContextEval(ctx context.Context, vars any) (ref.Val, *cel.EvalDetails, error) {
	return p.pick(vars).ContextEval(ctx, vars)
}

// withoutTracking returns prg, or a boundedProgram when the expression's
// estimated worst cost is within limit.
// noFastAttrs leaves fastEventAttrs (fastattr.go) out of the untracked
// programs, for tests that compare with CEL's own attribute resolution.
func withoutTracking(env *cel.Env, ast *cel.Ast, prg cel.Program, limit uint64, noFastAttrs bool) cel.Program {
	bound := -1
	for _, pb := range prevBounds {
		est, err := env.EstimateCost(ast, boundedSizes{prev: uint64(pb)})
		if err == nil && est.Max <= limit {
			bound = pb
			break
		}
	}
	if bound < 0 {
		return prg
	}
	if !slices.ContainsFunc(env.Variables(), func(v *decls.VariableDecl) bool { return v.Name() == "previous" }) {
		bound = noPrevious
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if !noFastAttrs && !declares(ast, "event") && !declares(ast, "previous") {
		opts = append(opts, cel.CustomDecoratorV2(fastEventAttrs))
	}
	fast, err := env.Program(ast, opts...)
	if err != nil {
		return prg
	}
	return boundedProgram{Program: prg, untracked: fast, prevBound: bound}
}

// declares reports whether a comprehension (or cel.bind) in the expression
// declares a variable of that name.
func declares(a *cel.Ast, name string) bool {
	found := false
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.ComprehensionKind {
			c := e.AsComprehension()
			if c.IterVar() == name || c.IterVar2() == name || c.AccuVar() == name {
				found = true
			}
		}
	}))
	return found
}

// jsonSize is the size CEL gives the largest string (bytes bound its code
// points), list or map anywhere in a remembered value (plain JSON values),
// map keys included; at most limit+1.
func jsonSize(v any, limit int) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		n := len(x)
		for _, e := range x {
			if n > limit {
				break
			}
			n = max(n, jsonSize(e, limit))
		}
		return n
	case map[string]any:
		n := len(x)
		for k, e := range x {
			if n > limit {
				break
			}
			n = max(n, len(k), jsonSize(e, limit))
		}
		return n
	case float64, bool, nil:
		return 0
	}
	return limit + 1 // not a plain JSON value: assume the worst
}
