package detect

import (
	"errors"
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// The CEL side of a decoded event (jsondoc_parse.go): its objects and arrays
// are CEL values themselves, read in place.

// --- reading -------------------------------------------------------------

// val is the node as a CEL value. Strings and numbers are boxed here, on
// read; objects and arrays are pointers into the document.
func (d *jsonDoc) val(n jnode) ref.Val {
	switch n.kind {
	case jString:
		return types.String(n.str)
	case jNumber:
		return types.Double(n.num)
	case jTrue:
		return types.True
	case jFalse:
		return types.False
	case jObject:
		return &d.objs[n.idx]
	case jArray:
		return &d.arrs[n.idx]
	}
	return types.NullValue
}

// native is the node as encoding/json would have decoded it into `any`,
// with every string copied out of the document.
func (d *jsonDoc) native(n jnode) any {
	switch n.kind {
	case jString:
		return cloneString(n.str)
	case jNumber:
		return n.num
	case jTrue:
		return true
	case jFalse:
		return false
	case jObject:
		return d.objs[n.idx].native()
	case jArray:
		a := &d.arrs[n.idx]
		out := make([]any, a.n)
		for i, e := range d.elems[a.first : a.first+a.n] {
			out[i] = d.native(e)
		}
		return out
	}
	return nil
}

func cloneString(s string) string {
	if s == "" {
		return ""
	}
	return string(append([]byte(nil), s...))
}

func (o *jsonObject) members() []jmember {
	return o.doc.members[o.first : o.first+o.n]
}

// lookup finds key; the last of duplicate keys wins, as in encoding/json.
func (o *jsonObject) lookup(key string) (jnode, bool) {
	i, ok := o.lookupAt(key)
	if !ok {
		return jnode{}, false
	}
	return o.doc.members[i].val, true
}

// lookupAt is lookup giving the member's index in the document's members.
func (o *jsonObject) lookupAt(key string) (int32, bool) {
	ms := o.members()
	if key == "" {
		for i := len(ms) - 1; i >= 0; i-- {
			if ms[i].key == "" {
				return o.first + int32(i), true
			}
		}
		return 0, false
	}
	// Comparing the length and the first byte inline skips the call to
	// the runtime's string comparison for nearly every other member.
	n, c := len(key), key[0]
	for i := len(ms) - 1; i >= 0; i-- {
		k := ms[i].key
		if len(k) == n && k[0] == c && k == key {
			return o.first + int32(i), true
		}
	}
	return 0, false
}

func (o *jsonObject) field(key string) (ref.Val, bool) {
	i, ok := o.lookupAt(key)
	if !ok {
		return nil, false
	}
	return o.doc.memberVal(i), true
}

func (o *jsonObject) native() map[string]any {
	m := make(map[string]any, o.n)
	for _, mb := range o.members() {
		m[cloneString(mb.key)] = o.doc.native(mb.val)
	}
	return m
}

// dups reports whether the object repeats a key (checked once, lazily:
// only Size and iteration need it).
func (o *jsonObject) dups() bool {
	if !o.dupsChecked {
		seen := make(map[string]struct{}, o.n)
		for _, m := range o.members() {
			if _, ok := seen[m.key]; ok {
				o.hasDups = true
				break
			}
			seen[m.key] = struct{}{}
		}
		o.dupsChecked = true
	}
	return o.hasDups
}

// asMap is the object as one of CEL's own maps, for the rare operations
// (iteration, equality, conversion) this type delegates.
func (o *jsonObject) asMap() traits.Mapper {
	return types.DefaultTypeAdapter.NativeToValue(o.native()).(traits.Mapper)
}

// ConvertToNative converts to a Go map directly when asked for the plain
// decoded form (what a library reading the event wants, e.g. oktalib's
// debugData), and through CEL's own map otherwise.
func (o *jsonObject) ConvertToNative(t reflect.Type) (any, error) {
	if t == mapOfAny {
		return o.native(), nil
	}
	return o.asMap().ConvertToNative(t)
}

var mapOfAny = reflect.TypeFor[map[string]any]()

func (o *jsonObject) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return o
	case types.TypeType:
		return types.MapType
	}
	return o.asMap().ConvertToType(t)
}

func (o *jsonObject) Equal(other ref.Val) ref.Val { return o.asMap().Equal(other) }
func (o *jsonObject) Type() ref.Type              { return types.MapType }
func (o *jsonObject) Value() any                  { return o.native() }

func (o *jsonObject) Contains(key ref.Val) ref.Val {
	_, found := o.Find(key)
	return types.Bool(found)
}

func (o *jsonObject) Get(key ref.Val) ref.Val {
	v, found := o.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

func (o *jsonObject) Find(key ref.Val) (ref.Val, bool) {
	if s, ok := key.(types.String); ok {
		return o.field(string(s))
	}
	return o.asMap().Find(key)
}

func (o *jsonObject) Iterator() traits.Iterator { return o.asMap().Iterator() }

func (o *jsonObject) Size() ref.Val {
	if o.dups() {
		return o.asMap().Size()
	}
	return types.Int(o.n)
}

// --- arrays --------------------------------------------------------------

func (a *jsonArray) elem(i int) ref.Val {
	return a.doc.val(a.doc.elems[a.first+int32(i)])
}

func (a *jsonArray) asList() traits.Lister {
	return types.DefaultTypeAdapter.NativeToValue(a.doc.native(jnode{kind: jArray, idx: a.idx})).(traits.Lister)
}

func (a *jsonArray) ConvertToNative(t reflect.Type) (any, error) {
	return a.asList().ConvertToNative(t)
}

func (a *jsonArray) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.ListType:
		return a
	case types.TypeType:
		return types.ListType
	}
	return a.asList().ConvertToType(t)
}

func (a *jsonArray) Equal(other ref.Val) ref.Val { return a.asList().Equal(other) }
func (a *jsonArray) Type() ref.Type              { return types.ListType }
func (a *jsonArray) Value() any                  { return a.asList().Value() }
func (a *jsonArray) Contains(v ref.Val) ref.Val  { return a.asList().Contains(v) }
func (a *jsonArray) Add(other ref.Val) ref.Val   { return a.asList().Add(other) }
func (a *jsonArray) Size() ref.Val               { return types.Int(a.n) }
func (a *jsonArray) Iterator() traits.Iterator   { return &jsonArrayIter{a: a} }
func (a *jsonArray) Get(index ref.Val) ref.Val {
	if i, err := types.IndexOrError(index); err == nil && i >= 0 && i < int(a.n) {
		return a.elem(i)
	}
	return a.asList().Get(index) // the list's own errors

}

type jsonArrayIter struct {
	a *jsonArray
	i int
}

func (it *jsonArrayIter) HasNext() ref.Val { return types.Bool(it.i < int(it.a.n)) }
func (it *jsonArrayIter) Next() ref.Val {
	if it.i >= int(it.a.n) {
		return nil
	}
	v := it.a.elem(it.i)
	it.i++
	return v
}
func (it *jsonArrayIter) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("type conversion on iterators not supported")
}
func (it *jsonArrayIter) ConvertToType(ref.Type) ref.Val { return types.NewErr("no such overload") }
func (it *jsonArrayIter) Equal(ref.Val) ref.Val          { return types.NewErr("no such overload") }
func (it *jsonArrayIter) Type() ref.Type                 { return types.IteratorType }
func (it *jsonArrayIter) Value() any                     { return nil }
