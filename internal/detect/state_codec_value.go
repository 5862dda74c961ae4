package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

func encodeValue(e *encoder, v any, depth int) error {
	if depth > maxValueDepth {
		return errors.New("remembered value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		e.byte1(valNull)
	case bool:
		e.byte1(map[bool]byte{false: valFalse, true: valTrue}[x])
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
			if err := encodeValue(e, y, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		e.byte1(valObject)
		e.uvarint(uint64(len(x)))
		for k, y := range x {
			e.str(k)
			if err := encodeValue(e, y, depth+1); err != nil {
				return err
			}
		}
	default:
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
