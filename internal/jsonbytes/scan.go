package jsonbytes

import (
	"bytes"
	"errors"
	"fmt"
)

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (space, tab, newline, carriage return), or len(b).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// StringEnd returns the index after the string starting at b[i] (a '"'), or
// -1 when it is unterminated. A quote preceded by an odd run of backslashes
// is escaped. It reads strings as TooDeep and ValueEnd do, but with
// bytes.IndexByte's speed over long strings.
func StringEnd(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// SkipValue returns the index after the value starting at b[i], which sits
// inside depth enclosing arrays and objects (2 for a member of an object in
// a top-level array). The value is a string, an object or array that keeps
// the whole nesting within limit, or a scalar made of the bytes literals and
// numbers use. ok is false on anything else, and on an unterminated value.
//
// It does not validate (a scalar such as "tru" passes): it is the quick
// walk of a fast path whose input is validated afterwards, or refused.
func SkipValue(b []byte, i, depth, limit int) (end int, ok bool) {
	switch c := b[i]; {
	case c == '"':
		end := StringEnd(b, i)
		return end, end >= 0
	case c == '{' || c == '[':
		d := depth
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := StringEnd(b, j)
				if end < 0 {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				if d++; d > limit {
					return 0, false
				}
			case '}', ']':
				if d--; d == depth {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) && isScalarByte(b[j]) {
			j++
		}
		return j, j > i
	}
}

// isScalarByte reports the bytes of true, false, null and numbers.
func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// ValueEnd returns the end of the value starting at b[i]: after the closing
// quote of a string, after the bracket closing an object or array (a
// string-aware count), and for a scalar the index of the next ',', ']', '}'
// or whitespace outside a string. It is meant for validated JSON, where
// those ends are exact; on anything else its answer is an index within b, or
// an error for a value that never ends.
func ValueEnd(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return 0, errUnterminated
			}
			if depth == 0 {
				return j + 1, nil
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, nil
			}
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j, nil
			}
		}
	}
	return 0, errUnterminated
}

var errUnterminated = errors.New("unterminated value")

// EachElement calls fn with each element of the array that b holds (b
// starts with '[' and ends with its ']', without surrounding whitespace), in
// order, numbered from 0, each as a slice of b whose capacity ends with it.
// It stops at the first error fn returns and returns it as is; its own
// errors say where the array is malformed. Elements are found with
// ValueEnd: validate b first.
func EachElement(b []byte, fn func(n int, elem []byte) error) error {
	i := SkipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		if SkipSpace(b, i+1) != len(b) {
			return fmt.Errorf("data after the array")
		}
		return nil
	}
	for n := 0; ; n++ {
		end, err := ValueEnd(b, i)
		if err != nil {
			return err
		}
		if err := fn(n, b[i:end:end]); err != nil {
			return err
		}
		i = SkipSpace(b, end)
		if i >= len(b) {
			return fmt.Errorf("unterminated array")
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			if SkipSpace(b, i+1) != len(b) {
				return fmt.Errorf("data after the array")
			}
			return nil
		default:
			return fmt.Errorf("unexpected %q after element %d", b[i], n)
		}
	}
}
