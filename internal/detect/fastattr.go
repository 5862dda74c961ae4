package detect

import (
	"reflect"
	"slices"
	"sync"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// fastEventAttrs is a program decorator for the untracked programs
// (untracked.go): a selection chain with constant keys and indices on a
// variable holding one of this file's objects (`event.a.b`, `event.?a.?b`,
// `event.target[0]`, `event['a']`, `loc.?city` after cel.bind(loc,
// event.client, …)), evaluated by walking the document directly instead of
// through CEL's qualifier and adapter layers. It only takes the paths whose
// result it can give exactly as CEL would: every step found, or absent after
// an optional step (optional.none()). Anything else (another root value, a
// missing key without `?`, another kind of value on the way, an unusual
// qualifier) is evaluated by CEL's own node, errors included.
//
// Only for expressions where no comprehension or cel.bind declares a
// variable named event or previous: a leading dot (`.event`) resolves the
// global variable past local ones, and only those names can carry one in a
// checked expression (an undeclared global does not compile).
func fastEventAttrs(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	if _, done := i.(*fastAttr); done {
		return i, nil
	}
	ia, ok := i.(interpreter.InterpretableAttribute)
	if !ok {
		return i, nil
	}
	na, ok := ia.Attr().(interpreter.NamespacedAttribute)
	if !ok || len(na.CandidateVariableNames()) != 1 || len(na.Qualifiers()) > 0 {
		return i, nil
	}
	return &fastAttr{InterpretableAttribute: ia, name: na.CandidateVariableNames()[0]}, nil
}

// fastAttr wraps CEL's node for one attribute; qualifiers are still added
// to CEL's node while planning, and read on first evaluation.
type fastAttr struct {
	interpreter.InterpretableAttribute
	name  string // the variable: event, or a local one (cel.bind, comprehensions)
	once  sync.Once
	steps []fastStep // nil: not a chain this node can walk
}

type fastStep struct {
	key      string
	index    int64
	isIndex  bool
	optional bool
}

func (a *fastAttr) plan() {
	na, ok := a.Attr().(interpreter.NamespacedAttribute)
	if !ok || !slices.Equal(na.CandidateVariableNames(), []string{a.name}) {
		return
	}
	var steps []fastStep
	for _, q := range na.Qualifiers() {
		cq, ok := q.(interpreter.ConstantQualifier)
		if !ok {
			return
		}
		// Only CEL's plain field and index qualifiers (not test-only ones).
		switch reflect.TypeOf(q).String() {
		case "*interpreter.stringQualifier", "*interpreter.intQualifier":
		default:
			return
		}
		switch v := cq.Value().(type) {
		case types.String:
			steps = append(steps, fastStep{key: string(v), optional: q.IsOptional()})
		case types.Int:
			steps = append(steps, fastStep{index: int64(v), isIndex: true, optional: q.IsOptional()})
		default:
			return
		}
	}
	if len(steps) > 0 {
		a.steps = steps
	}
}

// walk returns the value, or nil when CEL's node must evaluate.
func (a *fastAttr) walk(vars interpreter.Activation) ref.Val {
	a.once.Do(a.plan)
	if a.steps == nil {
		return nil
	}
	root, found := vars.ResolveName(a.name)
	if !found {
		return nil
	}
	obj, ok := root.(*jsonObject)
	if !ok {
		return nil
	}
	d := obj.doc
	var cur jnode
	member := int32(-1) // cur's index in d.members when it is a member
	isOpt := false
	for i, s := range a.steps {
		isOpt = isOpt || s.optional
		present := false
		switch {
		case i == 0 && !s.isIndex:
			member, present = obj.lookupAt(s.key)
		case i == 0:
			return nil
		case !s.isIndex && cur.kind == jObject:
			member, present = d.objs[cur.idx].lookupAt(s.key)
		case s.isIndex && cur.kind == jArray:
			arr := &d.arrs[cur.idx]
			if s.index >= 0 && s.index < int64(arr.n) {
				cur, member, present = d.elems[arr.first+int32(s.index)], -1, true
			}
		default:
			return nil
		}
		if !present {
			if isOpt {
				return types.OptionalNone
			}
			return nil
		}
		if member >= 0 {
			cur = d.members[member].val
		}
	}
	switch {
	case member >= 0 && isOpt:
		return d.memberOpt(member)
	case member >= 0:
		return d.memberVal(member)
	case isOpt:
		return types.OptionalOf(d.val(cur))
	}
	return d.val(cur)
}

func (a *fastAttr) Exec(frame *interpreter.ExecutionFrame) ref.Val {
	if v := a.walk(frame); v != nil {
		return v
	}
	return a.InterpretableAttribute.Exec(frame)
}

func (a *fastAttr) Eval(vars interpreter.Activation) ref.Val {
	if v := a.walk(vars); v != nil {
		return v
	}
	return a.InterpretableAttribute.Eval(vars)
}
