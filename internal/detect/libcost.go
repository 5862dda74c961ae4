package detect

import (
	"math"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// Every custom function is charged to cost_limit by the size of its input,
// in CEL's units (CEL charges 0.1 per byte for scanning a string): without
// a cost CEL counts a call as 1, however large its arguments. The charge is
// the same in CEL's static estimate (which decides whether a rule can run
// untracked, untracked.go) and at run time. CEL adds a call's cost after
// the call returns, so each function is also bounded by construction: the
// charge makes a small cost_limit stop an expression that calls it on huge
// inputs, the bound keeps one call from running long meanwhile.

// funcCost prices one overload: from the sizes of its arguments (bytes of
// a string, bytes of the event for an event argument).
type funcCost struct {
	overload string
	cost     func(sizes []uint64) uint64
}

var funcCosts = []funcCost{
	{"geo_distance_km_dyn", func([]uint64) uint64 { return 10 }}, // four numbers: constant work
	{"json_decode_string", func(s []uint64) uint64 { return 1 + s[0] }},
	{"strings_similarity_string_string", func(s []uint64) uint64 { return similarityCost(s[0], s[1]) }},
}

// similarityCost: reading both strings, plus the edit-distance table, at
// most similarityMaxRunes squared (see boundedDistance), at 1/8 per cell.
func similarityCost(a, b uint64) uint64 {
	cells := min(a, similarityMaxRunes) * min(b, similarityMaxRunes)
	return satAdd(1+cells/8, satAdd(a, b)/10)
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// pricedLibrary is a host library that prices its own functions (oktalib
// does): overload id -> cost from argument sizes, measured as for ours.
type pricedLibrary interface {
	FunctionCosts() map[string]func(argSizes []uint64) uint64
}

// costsOf lists our functions' costs and those of the host's libraries.
func costsOf(libs []cel.Library) []funcCost {
	out := slices.Clone(funcCosts)
	for _, l := range libs {
		p, ok := l.(pricedLibrary)
		if !ok {
			continue
		}
		for id, cost := range p.FunctionCosts() {
			out = append(out, funcCost{overload: id, cost: cost})
		}
	}
	slices.SortFunc(out, func(a, b funcCost) int { return strings.Compare(a.overload, b.overload) })
	return out
}

func costLibrary(libs []cel.Library) cel.EnvOption { return cel.Lib(costLib{costs: costsOf(libs)}) }

type costLib struct{ costs []funcCost }

func (costLib) LibraryName() string { return "oktadetect.costs" }

func (l costLib) CompileOptions() []cel.EnvOption {
	var opts []checker.CostOption
	for _, fc := range l.costs {
		opts = append(opts, checker.OverloadCostEstimate(fc.overload, estimateOf(fc)))
	}
	return []cel.EnvOption{cel.CostEstimatorOptions(opts...)}
}

// ProgramOptions take effect in programs that track cost (cost_limit).
func (l costLib) ProgramOptions() []cel.ProgramOption {
	var opts []interpreter.CostTrackerOption
	for _, fc := range l.costs {
		opts = append(opts, interpreter.OverloadCostTracker(fc.overload, actualOf(fc)))
	}
	return []cel.ProgramOption{cel.CostTrackerOptions(opts...)}
}

func estimateOf(fc funcCost) checker.FunctionEstimator {
	return func(est checker.CostEstimator, _ *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
		lo, hi := make([]uint64, len(args)), make([]uint64, len(args))
		for i, a := range args {
			s := argSize(est, a)
			lo[i], hi[i] = s.Min, s.Max
		}
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: fc.cost(lo), Max: fc.cost(hi)}}
	}
}

func argSize(est checker.CostEstimator, n checker.AstNode) checker.SizeEstimate {
	if s := n.ComputedSize(); s != nil {
		return *s
	}
	if est != nil {
		if s := est.EstimateSize(n); s != nil {
			return *s
		}
	}
	return checker.UnknownSizeEstimate()
}

func actualOf(fc funcCost) interpreter.FunctionTracker {
	return func(args []ref.Val, _ ref.Val) *uint64 {
		sizes := make([]uint64, len(args))
		for i, a := range args {
			sizes[i] = valSize(a)
		}
		c := fc.cost(sizes)
		return &c
	}
}

// valSize is the size a function works through: a string's bytes, a parsed
// event's bytes, else the element count CEL reports (a map or list built by
// the expression, whose construction was charged already).
func valSize(v ref.Val) uint64 {
	switch x := v.(type) {
	case types.String:
		return uint64(len(x))
	case *jsonObject:
		return uint64(len(x.doc.buf))
	case traits.Sizer:
		if n, ok := x.Size().(types.Int); ok && n > 0 {
			return uint64(n)
		}
	}
	return 1
}
