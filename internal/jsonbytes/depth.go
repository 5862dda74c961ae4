package jsonbytes

// MaxDepth is the deepest nesting of arrays and objects accepted anywhere in
// the product: encoding/json's limit. A recursive parser or validator is
// safe on a document TooDeep has checked against it.
const MaxDepth = 10_000

// TooDeep reports whether b nests arrays and objects deeper than limit. The
// scan is string-aware (brackets inside strings do not count) and does not
// recurse, so a document that is nothing but '[' costs one pass and no
// stack.
func TooDeep(b []byte, limit int) bool {
	depth := 0
	for j := 0; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
