package detect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// Vocabulary is what a linter knows of the events rules read: the field
// paths they can hold and the event types there are. `oktadetect rules lint`
// hands in Okta's LogEvent schema and event-type catalogue
// (internal/oktaschema); the engine itself assumes no vocabulary.
type Vocabulary interface {
	// Field says whether the path exists (list indexes appear as "[]");
	// if not, the nearest known path, dotted, or "".
	Field(path []string) (ok bool, suggestion string)
	// EventType says whether name is an event type; if not, the nearest
	// ones.
	EventType(name string) (ok bool, suggestions []string)
	// EventTypePrefix says whether some event type starts with prefix.
	EventTypePrefix(prefix string) bool
}

// checkVocabulary reports, at their positions, the `event.…` paths the
// vocabulary does not know and the eventType literals it does not know.
// pos maps a position in the expression (line 1-based, column 0-based) to
// the file.
func (c *compiler) checkVocabulary(a *cel.Ast, pos func(line, col int) (int, int)) {
	if c.vocab == nil {
		return
	}
	native := a.NativeRep()
	root := ast.NavigateAST(native)
	report := func(id int64, msg string) {
		loc := native.SourceInfo().GetStartLocation(id)
		line, col := pos(loc.Line(), loc.Column())
		c.errs = append(c.errs, c.rule.errAt(line, col, msg))
	}
	for _, e := range ast.MatchDescendants(root, ast.AllMatcher()) {
		if path, ok := eventPath(e); ok && !isPathPrefix(e) {
			if known, sugg := c.vocab.Field(path); !known {
				report(e.ID(), unknownField(path, sugg))
			}
		}
		c.checkEventTypeLiterals(e, report)
	}
}

func unknownField(path []string, suggestion string) string {
	msg := fmt.Sprintf("event.%s is not a field of the events rules read (Okta's LogEvent)", strings.Join(path, "."))
	if suggestion != "" {
		msg += "; did you mean event." + suggestion + "?"
	}
	return msg
}

// eventPath is the path of a selection chain rooted at the variable
// `event` (event.a.b, event.?a.?b, event.a[0], has(event.a.b)).
func eventPath(e ast.NavigableExpr) ([]string, bool) {
	var rev []string
	for {
		switch e.Kind() {
		case ast.IdentKind:
			if e.AsIdent() != "event" || len(rev) == 0 {
				return nil, false
			}
			path := make([]string, len(rev))
			for i, s := range rev {
				path[len(rev)-1-i] = s
			}
			return path, true
		case ast.SelectKind:
			rev = append(rev, e.AsSelect().FieldName())
			e = e.AsSelect().Operand().(ast.NavigableExpr)
		case ast.CallKind:
			call := e.AsCall()
			args := call.Args()
			if len(args) != 2 {
				return nil, false
			}
			key, ok := constant(args[1])
			if !ok {
				return nil, false
			}
			switch call.FunctionName() {
			case operators.OptSelect:
				rev = append(rev, key)
			case operators.Index, operators.OptIndex:
				if _, err := strconv.Atoi(key); err == nil {
					key = "[]"
				}
				rev = append(rev, key)
			default:
				return nil, false
			}
			e = args[0].(ast.NavigableExpr)
		default:
			return nil, false
		}
	}
}

// isPathPrefix: e is the operand of a longer chain, checked there.
func isPathPrefix(e ast.NavigableExpr) bool {
	p, ok := e.Parent()
	if !ok {
		return false
	}
	_, parentIsPath := eventPath(p)
	return parentIsPath
}

// constant is a literal string or integer as text.
func constant(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	switch v := e.AsLiteral().(type) {
	case types.String:
		return string(v), true
	case types.Int:
		return strconv.FormatInt(int64(v), 10), true
	case types.Uint:
		return strconv.FormatUint(uint64(v), 10), true
	}
	return "", false
}

// checkEventTypeLiterals finds `eventType == 'x'`, `'x' != eventType`,
// `eventType in ['x', …]` and `eventType.startsWith('x')`, where eventType
// is event.eventType or event.?eventType.orValue(…).
func (c *compiler) checkEventTypeLiterals(e ast.NavigableExpr, report func(int64, string)) {
	if e.Kind() != ast.CallKind {
		return
	}
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); {
	case (fn == operators.Equals || fn == operators.NotEquals) && len(args) == 2:
		for i, a := range args {
			if isEventTypeRef(a) {
				c.checkEventType(args[1-i], report)
			}
		}
	case (fn == operators.In || fn == operators.OldIn) && len(args) == 2 && isEventTypeRef(args[0]):
		if args[1].Kind() == ast.ListKind {
			for _, el := range args[1].AsList().Elements() {
				c.checkEventType(el, report)
			}
		}
	case fn == "startsWith" && call.IsMemberFunction() && isEventTypeRef(call.Target()) && len(args) == 1:
		if p, ok := constant(args[0]); ok && !c.vocab.EventTypePrefix(p) {
			report(args[0].ID(), fmt.Sprintf("no event type starts with %q", p))
		}
	}
}

func (c *compiler) checkEventType(lit ast.Expr, report func(int64, string)) {
	name, ok := constant(lit)
	if !ok || lit.Kind() != ast.LiteralKind {
		return
	}
	known, sugg := c.vocab.EventType(name)
	if known {
		return
	}
	msg := fmt.Sprintf("%q is not an event type in Okta's catalogue", name)
	if len(sugg) > 0 {
		msg += "; did you mean " + quoteAll(sugg) + "?"
	}
	report(lit.ID(), msg)
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, " or ")
}

// isEventTypeRef: event.eventType, event.?eventType.orValue(…) or
// event.?eventType.value().
func isEventTypeRef(e ast.Expr) bool {
	if e.Kind() == ast.CallKind && e.AsCall().IsMemberFunction() {
		switch e.AsCall().FunctionName() {
		case "orValue", "value":
			e = e.AsCall().Target()
		}
	}
	nav, ok := e.(ast.NavigableExpr)
	if !ok {
		return false
	}
	path, ok := eventPath(nav)
	return ok && len(path) == 1 && path[0] == "eventType"
}
