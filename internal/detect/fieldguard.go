package detect

import (
	"slices"
	"strconv"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// A fieldGuard is a conjunct of a rule's condition (or of previous.when)
// that tests one field of the event against string or bool literals:
// `event.a.b == 'x'`, `event.?a.?b.orValue('d') != 'x'`, `P in ['x', 'y']`,
// `event.?a.?p.orValue(false) in [true, 'true']`.
// Among the candidates the index gives, a rule is skipped when such a
// conjunct is certainly false for the event (for rules that remember: the
// condition's and when's), for the same reason as the index: a false
// conjunct makes the whole && false, whatever its other parts give.
// "Certainly" means: the field is a string or a bool (or absent behind `?.`
// with its orValue default) that the test rejects, or another JSON value
// (null, a number, an object, a list), which no string or bool literal
// equals; anything else (absent without `?`, not an object on the way)
// leaves the rule to CEL.
// Values are compared as scalar keys (scalarLit, keyIs): a string never
// equals a bool, as in CEL.
type fieldGuard struct {
	// present, when set, makes this a presence test instead: at least one
	// of these fields must exist (`has(event.a.b) || event.?c.?d.hasValue()`).
	present []presence

	path  []string
	def   *string  // key of the value when absent (an optional chain's orValue); nil: undecided
	in    []string // == or in: the value must be one of these
	notIn []string // !=: the value must not be this
}

// scalarLit is the key of a string or bool literal: "s" + the string,
// "true" or "false", so that a string never equals a bool (keyIs).
func scalarLit(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	switch v := e.AsLiteral().(type) {
	case types.String:
		return "s" + string(v), true
	case types.Bool:
		return strconv.FormatBool(bool(v)), true
	}
	return "", false
}

// excludes reports whether the test is certainly false on root.
func (g *fieldGuard) excludes(root *jsonObject) bool {
	if g.present != nil {
		for _, p := range g.present {
			if !p.certainlyAbsent(root) {
				return false
			}
		}
		return true
	}
	obj := root
	var n jnode
	for i, k := range g.path {
		var ok bool
		if n, ok = obj.lookup(k); !ok {
			if g.def == nil {
				return false
			}
			if g.in != nil {
				return !slices.Contains(g.in, *g.def)
			}
			return slices.Contains(g.notIn, *g.def)
		}
		if i < len(g.path)-1 {
			if n.kind != jObject {
				return false
			}
			obj = &obj.doc.objs[n.idx]
		}
	}
	if n.kind != jString && n.kind != jTrue && n.kind != jFalse {
		// null, a number, an object or a list equals no string or bool in
		// CEL (heterogeneous equality: false, not an error), so `==` and
		// `in` are certainly false and `!=` certainly true. Okta writes
		// null for absent values (outcome.reason of a success), so this
		// skips most rules that look for a failure reason.
		return g.in != nil
	}
	if g.in != nil {
		return !slices.ContainsFunc(g.in, func(key string) bool { return keyIs(key, n) })
	}
	return slices.ContainsFunc(g.notIn, func(key string) bool { return keyIs(key, n) })
}

// keyIs says whether a scalar key names the value of n, without building
// n's key (this runs for every candidate rule of every event).
func keyIs(key string, n jnode) bool {
	switch n.kind {
	case jString:
		return len(key) == len(n.str)+1 && key[0] == 's' && key[1:] == n.str
	case jTrue:
		return key == "true"
	case jFalse:
		return key == "false"
	}
	return false
}

// fieldGuardsOf lists the field tests among the conjuncts of a checked
// expression (through && and cel.bind bodies).
func fieldGuardsOf(a *cel.Ast) []fieldGuard {
	if a == nil {
		return nil
	}
	var out []fieldGuard
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		switch e.Kind() {
		case ast.CallKind:
			c := e.AsCall()
			args := c.Args()
			switch c.FunctionName() {
			case operators.LogicalAnd:
				for _, a := range args {
					walk(a)
				}
			case operators.Equals, operators.NotEquals:
				if len(args) != 2 {
					return
				}
				p, lit := args[0], args[1]
				if _, ok := scalarLit(p); ok {
					p, lit = lit, p
				}
				s, ok := scalarLit(lit)
				if !ok {
					return
				}
				if g, ok := fieldPath(p); ok {
					if c.FunctionName() == operators.Equals {
						g.in = []string{s}
					} else {
						g.notIn = []string{s}
					}
					out = append(out, g)
				}
			case operators.LogicalOr:
				// A disjunction of presence tests: false when none of
				// the fields exists.
				var ps []presence
				for _, a := range args {
					p, ok := presenceOf(a)
					if !ok {
						return
					}
					ps = append(ps, p)
				}
				out = append(out, fieldGuard{present: ps})
			case "hasValue":
				if p, ok := presenceOf(e); ok {
					out = append(out, fieldGuard{present: []presence{p}})
				}
			case operators.In:
				if len(args) != 2 || args[1].Kind() != ast.ListKind || len(args[1].AsList().OptionalIndices()) > 0 {
					return
				}
				g, ok := fieldPath(args[0])
				if !ok {
					return
				}
				g.in = []string{}
				for _, el := range args[1].AsList().Elements() {
					s, ok := scalarLit(el)
					if !ok {
						return
					}
					g.in = append(g.in, s)
				}
				out = append(out, g)
			}
		case ast.SelectKind:
			if p, ok := presenceOf(e); ok {
				out = append(out, fieldGuard{present: []presence{p}})
			}
		case ast.ComprehensionKind:
			// cel.bind: the body's conjuncts. (A bound variable may shadow
			// event: then event is not the event and nothing is taken.)
			c := e.AsComprehension()
			if r := c.IterRange(); r.Kind() == ast.ListKind && len(r.AsList().Elements()) == 0 && c.AccuVar() != "event" {
				walk(c.Result())
			}
		}
	}
	walk(a.NativeRep().Expr())
	return out
}

// fieldPath recognises `event.a.b` (plain selects) and
// `event.?a.?b.orValue('d')` (optional selects throughout, a string
// default). eventType alone is the index's business.
func fieldPath(e ast.Expr) (fieldGuard, bool) {
	var g fieldGuard
	optional := false
	if e.Kind() == ast.CallKind {
		c := e.AsCall()
		if c.FunctionName() != "orValue" || !c.IsMemberFunction() || len(c.Args()) != 1 {
			return g, false
		}
		d, ok := scalarLit(c.Args()[0])
		if !ok {
			return g, false
		}
		g.def, optional, e = &d, true, c.Target()
	}
	for {
		switch e.Kind() {
		case ast.SelectKind:
			s := e.AsSelect()
			if optional || s.IsTestOnly() {
				return g, false
			}
			g.path = append(g.path, s.FieldName())
			e = s.Operand()
			continue
		case ast.CallKind:
			c := e.AsCall()
			if !optional || c.FunctionName() != operators.OptSelect || len(c.Args()) != 2 {
				return g, false
			}
			k, ok := stringLit(c.Args()[1])
			if !ok {
				return g, false
			}
			g.path = append(g.path, k)
			e = c.Args()[0]
			continue
		case ast.IdentKind:
			if e.AsIdent() != "event" || len(g.path) == 0 {
				return g, false
			}
			slices.Reverse(g.path)
			if len(g.path) == 1 && g.path[0] == "eventType" {
				return g, false
			}
			return g, true
		}
		return g, false
	}
}

// excluded reports whether a field guard shows that rule i cannot match
// the event nor change its state otherwise (remember it, count it as a
// sequence step, close an absence).
func (ix *ruleIndex) excluded(i int, root *jsonObject) bool {
	fg := &ix.fields[i]
	if !fg.enabled || !anyExcludes(fg.cond, root) {
		return false
	}
	for _, o := range fg.others {
		if !anyExcludes(o, root) {
			return false
		}
	}
	return true
}

func anyExcludes(gs []fieldGuard, root *jsonObject) bool {
	for i := range gs {
		if gs[i].excludes(root) {
			return true
		}
	}
	return false
}

// ruleFields are one rule's field guards.
type ruleFields struct {
	enabled bool
	cond    []fieldGuard
	// others: the field guards of the rule's other state-changing
	// expressions (previous.when, sequence steps, followed_by); an empty
	// one is never excluded.
	others [][]fieldGuard
}

func fieldsOf(r *compiledRule) ruleFields {
	f := ruleFields{cond: r.conditionFields, enabled: len(r.conditionFields) > 0 && (r.Previous == nil || r.prevWhen != nil)}
	if r.Previous != nil {
		f.others = append(f.others, r.whenFields)
	}
	for _, x := range r.stateExprs {
		f.others = append(f.others, x.fields)
	}
	return f
}

// presence is a test that a field exists: `event.?a.?b.hasValue()`
// (optional: a missing object on the way is absence too) or `has(event.a.b)`
// (a missing object on the way is an error in CEL, so undecided).
type presence struct {
	path     []string
	optional bool
}

// certainlyAbsent: the test is certainly false on root, without error. A
// value that is not an object on the way leaves it undecided.
func (p presence) certainlyAbsent(root *jsonObject) bool {
	obj := root
	for i, k := range p.path {
		n, ok := obj.lookup(k)
		if !ok {
			return i == len(p.path)-1 || p.optional
		}
		if i == len(p.path)-1 {
			return false
		}
		if n.kind != jObject {
			return false
		}
		obj = &obj.doc.objs[n.idx]
	}
	return false
}

// presenceOf recognises `event.?a.?b.hasValue()` and `has(event.a.b)`.
func presenceOf(e ast.Expr) (presence, bool) {
	var path []string
	optional := false
	switch e.Kind() {
	case ast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != "hasValue" || !c.IsMemberFunction() || len(c.Args()) != 0 {
			return presence{}, false
		}
		optional, e = true, c.Target()
		for e.Kind() == ast.CallKind {
			opt := e.AsCall()
			if opt.FunctionName() != operators.OptSelect || len(opt.Args()) != 2 {
				return presence{}, false
			}
			k, ok := stringLit(opt.Args()[1])
			if !ok {
				return presence{}, false
			}
			path = append(path, k)
			e = opt.Args()[0]
		}
	case ast.SelectKind:
		if !e.AsSelect().IsTestOnly() {
			return presence{}, false
		}
		path = append(path, e.AsSelect().FieldName())
		e = e.AsSelect().Operand()
		for e.Kind() == ast.SelectKind && !e.AsSelect().IsTestOnly() {
			path = append(path, e.AsSelect().FieldName())
			e = e.AsSelect().Operand()
		}
	default:
		return presence{}, false
	}
	if e.Kind() != ast.IdentKind || e.AsIdent() != "event" || len(path) == 0 {
		return presence{}, false
	}
	slices.Reverse(path)
	return presence{path: path, optional: optional}, true
}
