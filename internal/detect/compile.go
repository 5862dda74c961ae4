package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"
)

// DefaultCostLimit bounds the work of one expression evaluation. The seed
// rules cost a few hundred units; a runaway comprehension over a large event
// hits the limit and is counted as a rule error.
const DefaultCostLimit = 1_000_000

// CompileOptions tune compilation of a rule set.
type CompileOptions struct {
	// CostLimit per expression evaluation; 0 means DefaultCostLimit.
	CostLimit uint64
	// Libraries are CEL libraries the host adds to the environment (the
	// okta.* functions, internal/detect/oktalib). Each must charge its
	// functions by input size, as cel-go's own do.
	Libraries []cel.Library

	// Vocabulary, when set, checks every `event.…` path and eventType
	// literal against what events can hold (rules lint); nil: no checks.
	Vocabulary Vocabulary
	// Warn, when set, receives what is legal but likely wrong (rules lint):
	// a rule that remembers whose other state keys do not follow
	// previous.key, which is inexact scaled out (lint_keys.go).
	Warn func(error)
	// Tuning adapts the set to a site: rules switched on and off, their
	// severity, threshold or dedup period changed, exceptions, lists.
	Tuning Tuning

	// noFastAttrs compiles without fastEventAttrs (fastattr.go), for tests
	// that compare with CEL's own attribute resolution.
	noFastAttrs bool
}

// compiledRule is a rule ready to evaluate. It is immutable; per-rule state
// lives in ruleState, shared across reloads while the rule is unchanged.
type compiledRule struct {
	*Rule
	fingerprint string
	info        *RuleInfo
	builtin     bool // from the built-in pack (RuleSources.Builtin)
	condition   cel.Program
	title       *template
	severity    *template
	context     cel.Program
	dedupKey    cel.Program
	groupBy     cel.Program
	prevKey     cel.Program
	prevWhen    cel.Program
	prevValue   cel.Program
	distinct    cel.Program
	seqBy       cel.Program
	seqSteps    []cel.Program
	firstKey    cel.Program
	firstValue  cel.Program
	absenceBy   cel.Program
	followedBy  cel.Program

	// eventType guards of the condition and of previous.when (index.go);
	// nil: unguarded.
	conditionGuard *eventGuard
	whenGuard      *eventGuard
	// Field tests of the condition and of previous.when that must hold
	// for them to be true (index.go).
	conditionFields []fieldGuard
	whenFields      []fieldGuard
	// stateExprs are the expressions other than the condition that change
	// state on events the condition may not match (sequence steps,
	// absence.followed_by), with their guards (index.go).
	stateExprs []exprGuards
	limits     ruleLimits
}

// exprGuards are what index.go found in one expression.
type exprGuards struct {
	guard  *eventGuard
	fields []fieldGuard
}

// template is text with {{ CEL }} parts. A template without parts is static.
type template struct {
	parts []templatePart
}

type templatePart struct {
	literal string
	expr    cel.Program
}

func (t *template) static() (string, bool) {
	if len(t.parts) == 1 && t.parts[0].expr == nil {
		return t.parts[0].literal, true
	}
	if len(t.parts) == 0 {
		return "", true
	}
	return "", false
}

// compiler compiles the expressions of one rule and collects positioned
// errors so that a rule reports all its problems at once.
type compiler struct {
	rule  *Rule
	env   *cel.Env
	opts  []cel.ProgramOption
	errs  []error
	last  *cel.Ast // the last expression compiled
	limit uint64
	// noFastAttrs: CompileOptions.noFastAttrs.
	noFastAttrs bool
	vocab       Vocabulary
}

// Compile type-checks a parsed rule and builds its programs.
func Compile(r *Rule, opts CompileOptions) (*compiledRule, error) {
	env, err := newEnv(r.Previous != nil, opts.Libraries)
	if err != nil {
		return nil, err
	}
	limit := opts.CostLimit
	if limit == 0 {
		limit = DefaultCostLimit
	}
	c := &compiler{rule: r, env: env, limit: limit, noFastAttrs: opts.noFastAttrs, vocab: opts.Vocabulary, opts: []cel.ProgramOption{
		cel.CostLimit(limit),
		cel.EvalOptions(cel.OptOptimize),
	}}
	sum := sha256.Sum256([]byte(r.Source))
	cr := &compiledRule{Rule: r, fingerprint: hex.EncodeToString(sum[:8]), limits: limitsOf(r)}
	defer func() { cr.info = newRuleInfo(cr) }()
	cr.condition = c.condition()
	cr.conditionGuard = guardOf(c.last)
	cr.conditionFields = fieldGuardsOf(c.last)
	cr.title = c.template(r.Title)
	cr.severity = c.template(r.Severity)
	cr.context = c.optional(r.Context)
	if r.Dedup != nil {
		cr.dedupKey = c.optional(r.Dedup.Key)
	}
	if t := r.Threshold; t != nil {
		cr.groupBy = c.optional(t.GroupBy)
		cr.distinct = c.optional(t.Distinct)
	}
	c.correlation(cr)
	if p := r.Previous; p != nil {
		cr.prevKey = c.optional(p.Key)
		c.last = nil
		cr.prevWhen = c.optional(p.When)
		cr.whenGuard = guardOf(c.last)
		cr.whenFields = fieldGuardsOf(c.last)
		cr.prevValue = c.optional(p.Value)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	if opts.Warn != nil {
		for _, w := range c.stateKeyWarnings() {
			opts.Warn(w)
		}
	}
	return cr, nil
}

// correlation compiles the expressions of sequence, first_seen and absence.
func (c *compiler) correlation(cr *compiledRule) {
	guarded := func(e *exprText) cel.Program {
		c.last = nil
		prg := c.optional(e)
		cr.stateExprs = append(cr.stateExprs, exprGuards{guard: guardOf(c.last), fields: fieldGuardsOf(c.last)})
		return prg
	}
	if s := cr.Sequence; s != nil {
		cr.seqBy = c.optional(s.By)
		for _, st := range s.After {
			cr.seqSteps = append(cr.seqSteps, guarded(st.When))
		}
	}
	if f := cr.FirstSeen; f != nil {
		cr.firstKey = c.optional(f.Key)
		cr.firstValue = c.optional(f.Value)
	}
	if a := cr.Absence; a != nil {
		cr.absenceBy = c.optional(a.By)
		cr.followedBy = guarded(a.FollowedBy)
	}
}

// condition compiles the whole file: the header is made of CEL comments, so
// CEL's own line:col positions are already positions in the file.
func (c *compiler) condition() cel.Program {
	ast, iss := c.env.Compile(c.rule.Source)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			c.errs = append(c.errs, c.rule.errAt(e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		line := c.rule.header.first + len(c.rule.header.yaml)
		c.errs = append(c.errs, c.rule.errAt(line, 1, fmt.Sprintf("condition must be a bool, not %s", t)))
		return nil
	}
	c.checkVocabulary(ast, func(line, col int) (int, int) { return line, col + 1 })
	return c.program(ast)
}

// optional compiles a header expression if present.
func (c *compiler) optional(e *exprText) cel.Program {
	if e == nil {
		return nil
	}
	return c.expr(*e, e.Text, 0)
}

// expr compiles text that starts offset bytes into the header value e.
func (c *compiler) expr(e exprText, text string, offset int) cel.Program {
	ast, iss := c.env.Compile(text)
	if iss.Err() != nil {
		for _, ce := range iss.Errors() {
			col := ce.Location.Column()
			if ce.Location.Line() <= 1 {
				col += offset
			}
			line, fcol := c.rule.filePos(e, ce.Location.Line(), col)
			c.errs = append(c.errs, c.rule.errAt(line, fcol, ce.Message))
		}
		return nil
	}
	c.checkVocabulary(ast, func(line, col int) (int, int) {
		if line <= 1 {
			col += offset
		}
		return c.rule.filePos(e, line, col)
	})
	return c.program(ast)
}

func (c *compiler) program(ast *cel.Ast) cel.Program {
	c.last = ast
	prg, err := c.env.Program(ast, c.opts...)
	if err != nil {
		c.errs = append(c.errs, c.rule.errAt(c.rule.header.first, 1, err.Error()))
		return nil
	}
	return withoutTracking(c.env, ast, prg, c.limit, c.noFastAttrs)
}

// template splits "text {{ expr }} text" into parts and compiles each expr.
func (c *compiler) template(e exprText) *template {
	t := &template{}
	unclosed := scanTemplate(e.Text,
		func(literal string) { t.parts = append(t.parts, templatePart{literal: literal}) },
		func(expr string, offset int) {
			t.parts = append(t.parts, templatePart{expr: c.expr(e, expr, offset)})
		})
	if unclosed >= 0 {
		line, col := c.rule.filePos(e, 1, unclosed)
		c.errs = append(c.errs, c.rule.errAt(line, col, "template: {{ without a closing }}"))
	}
	return t
}

// scanTemplate splits template text into literals and {{ expressions }}
// (with the offset of each expression's text), in order; a text without
// any is one literal, even empty. It returns the offset of a {{ without a
// closing }}, which ends the scan, or -1.
func scanTemplate(text string, literal func(string), expr func(text string, offset int)) (unclosed int) {
	rest, offset, parts := text, 0, 0
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			break
		}
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			return offset + open
		}
		if open > 0 {
			literal(rest[:open])
			parts++
		}
		expr(rest[open+2:open+end], offset+open+2)
		parts++
		offset += open + end + 2
		rest = rest[open+end+2:]
	}
	if rest != "" || parts == 0 {
		literal(rest)
	}
	return -1
}

// toJSONNative converts a CEL value into plain Go JSON values
// (map[string]any, []any, float64, string, bool, nil), as its conversion to
// a protobuf JSON value would, with every string copied (values are kept in
// state and must not point into an event's bytes). Strings, doubles, bools,
// null, lists and string-keyed maps are converted directly; anything else
// goes through structpb.
func toJSONNative(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.String:
		return cloneString(string(x)), nil
	case types.Double:
		return float64(x), nil
	case types.Bool:
		return bool(x), nil
	case types.Null:
		return nil, nil
	case *jsonObject:
		return x.native(), nil
	case *jsonArray:
		return x.doc.native(jnode{kind: jArray, idx: x.idx}), nil
	case traits.Mapper:
		if m, ok := mapToJSON(x); ok {
			return m, nil
		}
	case traits.Lister:
		n, ok := x.Size().(types.Int)
		if !ok {
			break
		}
		out := make([]any, int(n))
		for i := range out {
			e, err := toJSONNative(x.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	pb, err := v.ConvertToNative(reflect.TypeFor[*structpb.Value]())
	if err != nil {
		return nil, fmt.Errorf("converting %s to JSON: %w", v.Type().TypeName(), err)
	}
	return pb.(*structpb.Value).AsInterface(), nil
}

// mapToJSON converts a map with string keys; ok is false for other maps
// (left to structpb and its error).
func mapToJSON(m traits.Mapper) (map[string]any, bool) {
	n, ok := m.Size().(types.Int)
	if !ok {
		return nil, false
	}
	// CEL's map literals hold a map[ref.Val]ref.Val: range it directly.
	if entries, isRef := m.Value().(map[ref.Val]ref.Val); isRef && len(entries) == int(n) {
		out := make(map[string]any, len(entries))
		for k, v := range entries {
			ks, ok := k.(types.String)
			if !ok {
				return nil, false
			}
			nv, err := toJSONNative(v)
			if err != nil {
				return nil, false
			}
			out[cloneString(string(ks))] = nv
		}
		return out, true
	}
	out := make(map[string]any, int(n))
	for it := m.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		ks, ok := k.(types.String)
		if !ok {
			return nil, false
		}
		v, found := m.Find(k)
		if !found {
			return nil, false
		}
		nv, err := toJSONNative(v)
		if err != nil {
			return nil, false
		}
		out[cloneString(string(ks))] = nv
	}
	return out, true
}
