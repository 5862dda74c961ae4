package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Remembered values (JSON-native: nil, bool, float64, string, []any,
// map[string]any; anything else as JSON).
const (
	valNull = iota
	valFalse
	valTrue
	valNumber
	valString
	valList
	valObject
	valJSON
)

// encodeRemembered encodes v, a `previous.value` result, as
// encodeValue(toJSONNative(v)) does: the common values (strings, numbers,
// booleans, null and map literals of them) straight from CEL, anything
// else through the JSON-native form.
func encodeRemembered(e *encoder, v ref.Val) error {
	start := len(e.b)
	if encodeCEL(e, v, 0) {
		return nil
	}
	e.b = e.b[:start]
	nv, err := toJSONNative(v)
	if err != nil {
		return err
	}
	return encodeValue(e, nv, 0)
}

// encodeCEL encodes v as encodeValue encodes its JSON-native form, and
// reports false for a value it leaves to that path.
func encodeCEL(e *encoder, v ref.Val, depth int) bool {
	if depth > maxValueDepth {
		return false
	}
	switch x := v.(type) {
	case types.String:
		e.byte1(valString)
		e.str(string(x))
	case types.Double:
		e.byte1(valNumber)
		e.u64(math.Float64bits(float64(x)))
	case types.Bool:
		e.bool(bool(x))
	case types.Null:
		e.byte1(valNull)
	default:
		// CEL's map literals hold a map[ref.Val]ref.Val (as mapToJSON); a
		// remembered value read back (`previous`) holds JSON-native values.
		var m map[ref.Val]ref.Val
		switch x := v.Value().(type) {
		case map[ref.Val]ref.Val:
			m = x
		case map[string]any, []any:
			return encodeNative(e, x, depth, true) == nil
		default:
			return false
		}
		e.byte1(valObject)
		e.uvarint(uint64(len(m)))
		for k, y := range m {
			ks, ok := k.(types.String)
			if !ok {
				return false
			}
			e.str(string(ks))
			if !encodeCEL(e, y, depth+1) {
				return false
			}
		}
	}
	return true
}

func (e *encoder) bool(b bool) {
	if b {
		e.byte1(valTrue)
	} else {
		e.byte1(valFalse)
	}
}

func encodeValue(e *encoder, v any, depth int) error { return encodeNative(e, v, depth, false) }

// errNotNative: a value holds something other than JSON-native values.
var errNotNative = errors.New("not a JSON-native value")

// encodeNative encodes a JSON-native value; anything else is written as
// JSON, or refused with errNotNative when strict.
func encodeNative(e *encoder, v any, depth int, strict bool) error {
	if depth > maxValueDepth {
		return errors.New("remembered value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		e.byte1(valNull)
	case bool:
		e.bool(x)
	case float64:
		e.byte1(valNumber)
		e.u64(math.Float64bits(x))
	case string:
		e.byte1(valString)
		e.str(x)
	case []any:
		e.byte1(valList)
		e.uvarint(uint64(len(x)))
		for _, y := range x {
			if err := encodeNative(e, y, depth+1, strict); err != nil {
				return err
			}
		}
	case map[string]any:
		e.byte1(valObject)
		e.uvarint(uint64(len(x)))
		for k, y := range x {
			e.str(k)
			if err := encodeNative(e, y, depth+1, strict); err != nil {
				return err
			}
		}
	default:
		if strict {
			return errNotNative
		}
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("encoding a remembered value: %w", err)
		}
		e.byte1(valJSON)
		e.bytes(b)
	}
	return nil
}

func decodeValue(d *decoder, depth int) any {
	if depth > maxValueDepth {
		d.fail(errors.New("remembered value nested too deeply"))
		return nil
	}
	switch t := d.byte1(); t {
	case valNull:
		return nil
	case valFalse, valTrue:
		return t == valTrue
	case valNumber:
		return math.Float64frombits(d.u64())
	case valString:
		return d.str()
	case valList:
		n := d.count(1)
		out := make([]any, n)
		for i := range out {
			out[i] = decodeValue(d, depth+1)
		}
		return out
	case valObject:
		n := d.count(2)
		out := make(map[string]any, n)
		for range n {
			k := d.str()
			out[k] = decodeValue(d, depth+1)
			if d.err != nil {
				return nil
			}
		}
		return out
	case valJSON:
		var v any
		if err := json.Unmarshal(d.raw(), &v); err != nil {
			d.fail(fmt.Errorf("a remembered value: %w", err))
		}
		return v
	default:
		d.fail(fmt.Errorf("unknown remembered value tag %d", t))
		return nil
	}
}

// valueSpan checks the encoded value at d and returns its bytes (d's own,
// not a copy), allocating nothing.
func valueSpan(d *decoder) []byte {
	start := d.b
	skipValue(d, 0)
	if d.err != nil {
		return nil
	}
	return start[: len(start)-len(d.b) : len(start)-len(d.b)]
}

func skipValue(d *decoder, depth int) {
	if depth > maxValueDepth {
		d.fail(errors.New("remembered value nested too deeply"))
		return
	}
	switch t := d.byte1(); t {
	case valNull, valFalse, valTrue:
	case valNumber:
		d.u64()
	case valString:
		d.raw()
	case valList:
		for n := d.count(1); n > 0 && d.err == nil; n-- {
			skipValue(d, depth+1)
		}
	case valObject:
		for n := d.count(2); n > 0 && d.err == nil; n-- {
			d.raw()
			skipValue(d, depth+1)
		}
	case valJSON:
		if !json.Valid(d.raw()) {
			d.fail(errors.New("a remembered value: invalid JSON"))
		}
	default:
		d.fail(fmt.Errorf("unknown remembered value tag %d", t))
	}
}
