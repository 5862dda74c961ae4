package jsonbytes

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Run one with e.g.
//   go test -run '^$' -fuzz '^FuzzEachElement$' -fuzztime 20s ./internal/jsonbytes

// On a valid array, EachElement finds exactly the elements encoding/json
// finds; on anything else it neither panics nor slices outside b.
func FuzzEachElement(f *testing.F) {
	f.Add([]byte(`[{"uuid":"a","x":[1,{"y":"]"}]},"s\"",-1.5e3,true,null]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[1,`))
	f.Add([]byte(`["\\"]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got [][]byte
		err := EachElement(b, func(_ int, elem []byte) error {
			got = append(got, elem)
			return nil
		})
		var want []json.RawMessage
		if len(b) == 0 || b[0] != '[' || b[len(b)-1] != ']' || json.Unmarshal(b, &want) != nil {
			return // not a valid array as EachElement takes it: no panic is all
		}
		if err != nil {
			t.Fatalf("valid array %q: %v", b, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json %d", b, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q element %d: %q, encoding/json %q", b, i, got[i], want[i])
			}
		}
	})
}

// On a valid value, SkipValue ends where encoding/json ends it, and
// TooDeep agrees with the nesting encoding/json's tokens show.
func FuzzSkipValue(f *testing.F) {
	f.Add([]byte(`{"a":[1,"]}",{"b":null}],"c":"\\"}`))
	f.Add([]byte(`"str\"ing"`))
	f.Add([]byte(`-12.5E+7`))
	f.Add([]byte(`[[[[]]]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		end, ok := SkipValue(b, 0, 0, MaxDepth)
		if ok && (end <= 0 || end > len(b)) {
			t.Fatalf("%q: end %d outside the input", b, end)
		}
		if !json.Valid(b) || b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r' {
			return
		}
		trimmed := bytes.TrimRight(b, " \t\r\n")
		if !ok || end != len(trimmed) {
			t.Fatalf("%q: SkipValue = %d, %v; want %d", b, end, ok, len(trimmed))
		}
		depth := maxDepth(b)
		if TooDeep(b, depth) || (depth > 0 && !TooDeep(b, depth-1)) {
			t.Fatalf("%q nests %d levels: TooDeep disagrees", b, depth)
		}
	})
}

// maxDepth is the deepest nesting of valid JSON b, counted by encoding/json.
func maxDepth(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}
