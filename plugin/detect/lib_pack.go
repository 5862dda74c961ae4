package detect

import (
	"encoding/json"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// oktaLibrary holds helpers for the quirks of Okta System Log events that
// several rules of the pack share:
//
//   - okta.behaviors(event) -> map(string, string): Okta's behaviour
//     verdicts ("New Device" -> "POSITIVE", …). Okta writes them as
//     debugContext.debugData.behaviors, a string "{New IP=POSITIVE, …}"
//     (sometimes already split into a list of "name=VERDICT" strings or a
//     map), or, in orgs with logOnlySecurityData, as
//     debugData.logOnlySecurityData.behaviors (an object, or the same
//     object serialised as a JSON string). The first non-empty source wins;
//     no behaviours gives an empty map, never an error.
//   - okta.risk(event) -> string: the risk level ("LOW", "MEDIUM", "HIGH")
//     from debugData.risk ("{level=HIGH}" or "{reasons=…, level=HIGH}") or
//     logOnlySecurityData.risk.level; "" when absent.
func oktaLibrary() cel.EnvOption {
	return cel.Lib(oktaLib{})
}

type oktaLib struct{}

func (oktaLib) LibraryName() string { return "oktadetect.okta" }

func (oktaLib) CompileOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("okta.behaviors",
			cel.Overload("okta_behaviors_dyn", []*cel.Type{cel.DynType}, cel.MapType(cel.StringType, cel.StringType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.DefaultTypeAdapter.NativeToValue(oktaBehaviors(debugData(v)))
				}))),
		cel.Function("okta.risk",
			cel.Overload("okta_risk_dyn", []*cel.Type{cel.DynType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.String(oktaRisk(debugData(v)))
				}))),
	}
}

func (oktaLib) ProgramOptions() []cel.ProgramOption { return nil }

// debugData returns event.debugContext.debugData as a map (nil if absent
// or not an object).
func debugData(v ref.Val) map[string]any {
	if o, ok := v.(*jsonObject); ok {
		// The parsed event: walk to debugData and convert only it, not
		// the whole event (the same result: lookups take the last of
		// duplicate keys, as the conversion does).
		dc, ok := o.lookup("debugContext")
		if !ok || dc.kind != jObject {
			return nil
		}
		dd, ok := o.doc.objs[dc.idx].lookup("debugData")
		if !ok || dd.kind != jObject {
			return nil
		}
		return o.doc.objs[dd.idx].native()
	}
	native, err := toJSONNative(v)
	if err != nil {
		return nil
	}
	ev, _ := native.(map[string]any)
	dc, _ := ev["debugContext"].(map[string]any)
	dd, _ := dc["debugData"].(map[string]any)
	return dd
}

// logOnly returns debugData.logOnlySecurityData as an object, decoding it
// when it is a JSON string.
func logOnly(dd map[string]any) map[string]any {
	switch l := dd["logOnlySecurityData"].(type) {
	case map[string]any:
		return l
	case string:
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			return m
		}
	}
	return nil
}

func oktaBehaviors(dd map[string]any) map[string]string {
	out := map[string]string{}
	addPair := func(s string) {
		name, verdict, ok := strings.Cut(s, "=")
		if name = strings.TrimSpace(name); ok && name != "" {
			out[name] = strings.TrimSpace(verdict)
		}
	}
	switch b := dd["behaviors"].(type) {
	case string:
		for _, p := range splitBraced(b) {
			addPair(p)
		}
	case []any:
		for _, p := range b {
			if s, ok := p.(string); ok {
				addPair(s)
			}
		}
	case map[string]any:
		for k, val := range b {
			if s, ok := val.(string); ok {
				out[strings.TrimSpace(k)] = strings.TrimSpace(s)
			} else {
				addPair(k) // {"New IP=POSITIVE": null}
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	if b, ok := logOnly(dd)["behaviors"].(map[string]any); ok {
		for k, val := range b {
			if s, ok := val.(string); ok {
				out[k] = s
			}
		}
	}
	return out
}

func oktaRisk(dd map[string]any) string {
	if r, ok := dd["risk"].(string); ok {
		for _, p := range splitBraced(r) {
			if k, v, ok := strings.Cut(p, "="); ok && strings.TrimSpace(k) == "level" {
				return strings.TrimSpace(v)
			}
		}
	}
	if r, ok := logOnly(dd)["risk"].(map[string]any); ok {
		if l, ok := r["level"].(string); ok {
			return l
		}
	}
	return ""
}

// splitBraced splits Okta's Java-map rendering "{a=b, c=d}" into "a=b",
// "c=d". Values holding ", " inside brackets (reasons=[x, y]) stay whole.
func splitBraced(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[', '{', '(':
			depth++
		case ']', '}', ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}
