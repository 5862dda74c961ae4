package jsonbytes

import (
	"errors"
	"strings"
	"testing"
)

func TestSkipSpace(t *testing.T) {
	b := []byte(" \t\r\n x ")
	if got := SkipSpace(b, 0); got != 5 {
		t.Errorf("SkipSpace = %d, want 5", got)
	}
	if got := SkipSpace(b, 6); got != len(b) {
		t.Errorf("SkipSpace at the trailing space = %d, want %d", got, len(b))
	}
	if got := SkipSpace(b, 5); got != 5 {
		t.Errorf("SkipSpace on a value = %d, want 5", got)
	}
}

func TestStringEnd(t *testing.T) {
	cases := map[string]int{
		`"abc" x`:       5,
		`"a\"b" x`:      6,
		`"a\\" x`:       5,
		`"a\\\"b" x`:    8,
		`"\\\\" x`:      6,
		`"é ☃"`:         len(`"é ☃"`),
		`"unterminated`: -1,
		`"ends \"`:      -1,
	}
	for s, want := range cases {
		if got := StringEnd([]byte(s), 0); got != want {
			t.Errorf("StringEnd(%s) = %d, want %d", s, got, want)
		}
	}
}

func TestSkipValue(t *testing.T) {
	ok := map[string]string{
		`"s\"}" ,`:              `"s\"}"`,
		`{"a":[1,"]"],"b":{}}x`: `{"a":[1,"]"],"b":{}}`,
		`[[],[{}]] ,`:           `[[],[{}]]`,
		`-1.5E+3,`:              `-1.5E+3`,
		`true}`:                 `true`,
		`null ]`:                `null`,
	}
	for doc, want := range ok {
		end, good := SkipValue([]byte(doc), 0, 2, MaxDepth)
		if !good || doc[:end] != want {
			t.Errorf("SkipValue(%s) = %d %v, want the end of %s", doc, end, good, want)
		}
	}
	for _, doc := range []string{`"open`, `{"a":1`, `[[]`, `{"a":"}`, `,`, `}`, `:`} {
		if end, good := SkipValue([]byte(doc), 0, 2, MaxDepth); good {
			t.Errorf("SkipValue(%s) = %d, true: want false", doc, end)
		}
	}
	// The depth counts the containers around the value: at depth 2 under a
	// limit of 4, two more levels pass and a third does not.
	if _, good := SkipValue([]byte(`[[]]`), 0, 2, 4); !good {
		t.Error("[[]] at depth 2 reaches 4: within the limit")
	}
	if _, good := SkipValue([]byte(`[[[]]]`), 0, 2, 4); good {
		t.Error("[[[]]] at depth 2 reaches 5: beyond the limit")
	}
	deep := strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2)
	if _, good := SkipValue([]byte(deep+strings.Repeat("]", 2)), 0, 2, MaxDepth); !good {
		t.Error("a value reaching MaxDepth exactly passes")
	}
}

func TestValueEnd(t *testing.T) {
	cases := map[string]int{
		`"a\"b",1`:      6,
		`{"a":[1,{}]} `: 12,
		`123,4`:         3,
		`123]`:          3,
		`true }`:        4,
		`"x"`:           3,
	}
	for doc, want := range cases {
		if got, err := ValueEnd([]byte(doc), 0); err != nil || got != want {
			t.Errorf("ValueEnd(%s) = %d, %v; want %d", doc, got, err, want)
		}
	}
	for _, doc := range []string{`{"a":1`, `"open`, `"ends \`, `[1,2`, `5`} {
		if got, err := ValueEnd([]byte(doc), 0); err == nil {
			t.Errorf("ValueEnd(%s) = %d: want an error for a value that never ends", doc, got)
		}
	}
}

func TestEachElement(t *testing.T) {
	var got []string
	collect := func(n int, elem []byte) error {
		if n != len(got) {
			t.Fatalf("element numbered %d after %d elements", n, len(got))
		}
		if cap(elem) != len(elem) {
			t.Fatalf("element %s: capacity %d beyond its end: an append would overwrite the next", elem, cap(elem))
		}
		got = append(got, string(elem))
		return nil
	}
	if err := EachElement([]byte(`[ {"a":"],"} , [1,2],"s",3 , null ]`), collect); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":"],"}`, `[1,2]`, `"s"`, `3`, `null`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("elements %q, want %q", got, want)
	}
	for _, empty := range []string{`[]`, `[ ]`} {
		got = nil
		if err := EachElement([]byte(empty), collect); err != nil || len(got) != 0 {
			t.Errorf("%s: %q, %v", empty, got, err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := EachElement([]byte(`[1,2,3]`), func(int, []byte) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("fn's error: got %v after %d calls, want it as is after 1", err, calls)
	}
	for _, bad := range []string{`[1,2`, `[1 2]`, `[1]x`, `[]x`, `[{"a":1}`} {
		if err := EachElement([]byte(bad), func(int, []byte) error { return nil }); err == nil {
			t.Errorf("EachElement(%s): want an error", bad)
		}
	}
}
