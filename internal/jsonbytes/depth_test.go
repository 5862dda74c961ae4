package jsonbytes

import (
	"bytes"
	"strings"
	"testing"
)

func TestTooDeep(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	cases := []struct {
		doc   string
		limit int
		want  bool
	}{
		{`{}`, 1, false},
		{`{"a":[1]}`, 1, true},
		{`{"a":[1]}`, 2, false},
		{`"[[[[["`, 1, false},                 // brackets in a string do not count
		{`["\"[[[["]`, 1, false},              // nor after an escaped quote
		{`["\\",[[]]]`, 2, true},              // an escaped backslash ends the string
		{`[{"a":{"b":[{}]}}]`, 5, false},      // five levels
		{`[{"a":{"b":[{"c":[]}]}}]`, 5, true}, // six
	}
	for _, c := range cases {
		if got := TooDeep([]byte(c.doc), c.limit); got != c.want {
			t.Errorf("TooDeep(%s, %d) = %v, want %v", c.doc, c.limit, got, c.want)
		}
	}
	if TooDeep(nest(MaxDepth), MaxDepth) || !TooDeep(nest(MaxDepth+1), MaxDepth) {
		t.Errorf("MaxDepth levels pass, one more does not")
	}
	// Nothing but '[': one pass, no recursion, no stack to exhaust.
	if !TooDeep(bytes.Repeat([]byte("["), 64<<20), MaxDepth) {
		t.Error("64 MiB of '[' nests too deep")
	}
}
