package detect

import (
	"testing"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// readThroughCEL rebuilds an object member by member with Find, checking
// that each member's cached optional holds the same value.
func readThroughCEL(t *testing.T, o *jsonObject) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, m := range o.members() {
		v, ok := o.Find(types.String(m.key))
		if !ok {
			t.Fatalf("member %q not found", m.key)
		}
		i, _ := o.lookupAt(m.key)
		opt := o.doc.memberOpt(i).(*types.Optional)
		if !opt.HasValue() || opt.GetValue().Equal(v) != types.True && !isNaN(v) {
			t.Fatalf("member %q: optional %v, value %v", m.key, opt, v)
		}
		out[m.key] = nativeOf(t, v)
	}
	return out
}

func nativeOf(t *testing.T, v ref.Val) any {
	t.Helper()
	switch x := v.(type) {
	case *jsonObject:
		return readThroughCEL(t, x)
	case traits.Lister:
		out := []any{}
		for i := range int64(x.Size().(types.Int)) {
			out = append(out, nativeOf(t, x.Get(types.Int(i))))
		}
		return out
	}
	n, err := toJSONNative(v)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func isNaN(v ref.Val) bool { d, ok := v.(types.Double); return ok && d != d }

// TestRepeatedMemberReadsDoNotAllocate: once a member has been read in an
// event, reading it again, plain or as an optional, allocates nothing.
func TestRepeatedMemberReadsDoNotAllocate(t *testing.T) {
	pe, err := acquireEvent([]byte(`{"eventType":"user.session.start","n":2.5,"o":{"r":"SUCCESS"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer releaseEvent(pe)
	d := &pe.doc
	read := func() {
		for i := range d.members {
			d.memberVal(int32(i))
			d.memberOpt(int32(i))
		}
	}
	read()
	if n := testing.AllocsPerRun(100, read); n != 0 {
		t.Fatalf("repeated reads allocate %.0f times", n)
	}
}
