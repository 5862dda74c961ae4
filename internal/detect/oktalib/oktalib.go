// Package oktalib is the okta.* CEL library of oktadetect's rules: helpers
// for the quirks of Okta System Log events that several rules share. It is a
// versioned cel.Library in the style of cel-go's ext packages, and reads the
// event only through CEL's value traits, so it works on any CEL map (the
// engine's zero-copy documents, or a plain decoded map in tests).
//
// Functions (version 1):
//
//	okta.behaviors(event) -> map(string, string)
//
// Okta's behaviour verdicts ("New Device" -> "POSITIVE", …). Okta writes them
// as debugContext.debugData.behaviors, a string "{New IP=POSITIVE, …}"
// (sometimes already split into a list of "name=VERDICT" strings, or a map),
// or, in orgs with logOnlySecurityData, as debugData.logOnlySecurityData.behaviors
// (an object, or the same object serialised as a JSON string). The first
// non-empty source wins; no behaviours gives an empty map, never an error.
//
//	okta.risk(event) -> string
//
// The risk level ("LOW", "MEDIUM", "HIGH") from debugData.risk ("{level=HIGH}"
// or "{reasons=…, level=HIGH}") or logOnlySecurityData.risk.level; "" when
// absent.
//
// Both are priced by input size through FunctionCosts, which the host
// charges to the rule's cost limit.
package oktalib

import (
	"reflect"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// LatestVersion is the newest version of the library.
const LatestVersion = 1

// Overload ids, for cost options and reading plans.
const (
	overloadBehaviors = "okta_behaviors_dyn"
	overloadRisk      = "okta_risk_dyn"
)

// Option configures the library.
type Option func(*library)

// Version pins the library's version, as cel-go's ext libraries do, so that
// a rule set written against version N keeps its meaning.
func Version(v uint32) Option { return func(l *library) { l.version = v } }

// Okta returns the library, at LatestVersion unless Version says otherwise.
func Okta(opts ...Option) cel.Library {
	l := &library{version: LatestVersion}
	for _, o := range opts {
		o(l)
	}
	return l
}

type library struct{ version uint32 }

// LibraryName names the library and its version, so that environments built
// with different versions are told apart.
func (l *library) LibraryName() string { return "oktadetect.okta" }

// CompileOptions declares the functions and their cost estimates.
func (l *library) CompileOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("okta.behaviors",
			cel.Overload(overloadBehaviors, []*cel.Type{cel.DynType}, cel.MapType(cel.StringType, cel.StringType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.DefaultTypeAdapter.NativeToValue(behaviors(debugData(v)))
				}))),
		cel.Function("okta.risk",
			cel.Overload(overloadRisk, []*cel.Type{cel.DynType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.String(risk(debugData(v)))
				}))),
	}
}

// ProgramOptions: none; the functions have no program-level state.
func (l *library) ProgramOptions() []cel.ProgramOption { return nil }

// FunctionCosts prices each overload by the sizes of its arguments (for the
// event argument, its encoded size): the functions convert debugData, which
// is at most the event. The host charges these to the rule's cost limit, in
// CEL's static estimate and at run time (internal/detect does).
func (l *library) FunctionCosts() map[string]func(argSizes []uint64) uint64 {
	byEvent := func(s []uint64) uint64 { return 1 + s[0]/10 }
	return map[string]func([]uint64) uint64{overloadBehaviors: byEvent, overloadRisk: byEvent}
}

// debugDataVal walks event.debugContext.debugData through CEL's map traits.
func debugDataVal(event ref.Val) (ref.Val, bool) {
	m, ok := event.(traits.Mapper)
	if !ok {
		return nil, false
	}
	dc, ok := m.Find(types.String("debugContext"))
	if !ok {
		return nil, false
	}
	dcm, ok := dc.(traits.Mapper)
	if !ok {
		return nil, false
	}
	dd, ok := dcm.Find(types.String("debugData"))
	if !ok {
		return nil, false
	}
	if _, ok := dd.(traits.Mapper); !ok {
		return nil, false
	}
	return dd, true
}

// debugData returns the members of event.debugContext.debugData the
// functions read (behaviors, risk, logOnlySecurityData) as a Go map, nil if
// debugData is absent or not an object. Only those members are converted,
// not the whole object (it carries request URIs, hashes, …).
func debugData(event ref.Val) map[string]any {
	dd, ok := debugDataVal(event)
	if !ok {
		return nil
	}
	m := dd.(traits.Mapper)
	out := map[string]any{}
	for _, k := range readMembers {
		v, ok := m.Find(types.String(k))
		if !ok {
			continue
		}
		if native, ok := plain(v); ok {
			out[k] = native
		}
	}
	return out
}

// readMembers are the debugData members the functions read.
var readMembers = []string{"behaviors", "risk", "logOnlySecurityData"}

var (
	mapType  = reflect.TypeFor[map[string]any]()
	listType = reflect.TypeFor[[]any]()
)

// plain converts a JSON value read through CEL to its Go form: a string, a
// map or a list (what the parsers take; anything else is ignored).
func plain(v ref.Val) (any, bool) {
	var t reflect.Type
	switch v.(type) {
	case types.String:
		return string(v.(types.String)), true
	case traits.Mapper:
		t = mapType
	case traits.Lister:
		t = listType
	default:
		return nil, false
	}
	native, err := v.ConvertToNative(t)
	return native, err == nil
}
