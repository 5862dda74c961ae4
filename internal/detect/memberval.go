package detect

import (
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// memberVal is the value of member i (an index into d.members) as CEL
// sees it, boxed once per event. Objects and arrays need no boxing (they
// are pointers into the document); strings and numbers are kept in d.vals.
func (d *jsonDoc) memberVal(i int32) ref.Val {
	n := d.members[i].val
	if n.kind != jString && n.kind != jNumber {
		return d.val(n)
	}
	d.sizeMemberCaches()
	if v := d.vals[i]; v != nil {
		return v
	}
	v := d.val(n)
	d.vals[i] = v
	return v
}

// memberOpt is memberVal wrapped as a present optional, made once per event.
func (d *jsonDoc) memberOpt(i int32) ref.Val {
	d.sizeMemberCaches()
	if o := d.opts[i]; o != nil {
		return o
	}
	d.optArena = append(d.optArena, *types.OptionalOf(d.memberVal(i)))
	o := &d.optArena[len(d.optArena)-1]
	d.opts[i] = o
	return o
}

// sizeMemberCaches gives vals and opts one (empty) slot per member. They
// are emptied when the event is released, so a slot is only ever filled
// from this event's document.
func (d *jsonDoc) sizeMemberCaches() {
	if n := len(d.members); len(d.vals) != n {
		d.vals = growCleared(d.vals, n)
		d.opts = growCleared(d.opts, n)
	}
}

func growCleared(s []ref.Val, n int) []ref.Val {
	if cap(s) < n {
		return make([]ref.Val, n)
	}
	return s[:n]
}
