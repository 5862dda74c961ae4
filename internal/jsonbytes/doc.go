// Package jsonbytes reads JSON at the byte level, without decoding it: where
// a string or a value ends, how deep a document nests, the elements of an
// array. Callers keep slices of their input instead of decoded copies, so
// what they pass on is byte for byte what they were sent.
//
// Its input comes from whoever holds JSON bytes (the System Log pages
// internal/okta reads, the events the detection engine evaluates); it returns
// indexes into those bytes and slices of them, never copies. It does not
// validate: the scans bound the work a hostile document can cause (no
// recursion, nesting limited by MaxDepth), and a caller that needs valid JSON
// validates with a strict validator once the nesting is known to be bounded.
package jsonbytes
