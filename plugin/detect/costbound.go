package detect

import (
	"context"
	"sync/atomic"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
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

// largestEvent is the size of the largest event any engine has seen.
var largestEvent atomic.Int64

func noteEventSize(n int) {
	for {
		cur := largestEvent.Load()
		if int64(n) <= cur || largestEvent.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// boundedSizes estimates the size of every value CEL cannot size itself
// (event fields, previous, function results) as at most one event.
type boundedSizes struct{}

func (boundedSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: untrackedMaxEvent}
}

func (boundedSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// boundedProgram evaluates with the untracked program while events are
// small enough for its estimate to hold.
// Other methods are the tracked program's.
type boundedProgram struct {
	cel.Program // tracked
	untracked   cel.Program
}

func (p boundedProgram) pick() cel.Program {
	if largestEvent.Load() <= untrackedMaxEvent {
		return p.untracked
	}
	return p.Program
}

func (p boundedProgram) Eval(vars any) (ref.Val, *cel.EvalDetails, error) {
	return p.pick().Eval(vars)
}

func (p boundedProgram) ContextEval(ctx context.Context, vars any) (ref.Val, *cel.EvalDetails, error) {
	return p.pick().ContextEval(ctx, vars)
}

// withoutTracking returns prg, or a boundedProgram when the expression's
// estimated worst cost is within limit.
func withoutTracking(env *cel.Env, ast *cel.Ast, prg cel.Program, limit uint64) cel.Program {
	est, err := env.EstimateCost(ast, boundedSizes{})
	if err != nil || est.Max > limit {
		return prg
	}
	fast, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return prg
	}
	return boundedProgram{Program: prg, untracked: fast}
}
