package detect

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// encodeRemembered writes what encodeValue writes for the JSON-native form
// of the value (compared decoded: maps are written in Go's map order),
// and fails as that path fails.
func TestEncodeRememberedMatchesJSONNative(t *testing.T) {
	env, err := cel.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		`'Austin'`, `1.5`, `true`, `null`, `1`, `[1, 'a', {'b': null}]`,
		`{'city': 'Austin', 'lat': 30.27, 'lon': -97.74, 'proxy': false, 'asn': null}`,
		`{'a': {'b': {'c': ['d', 2.0]}}, 'e': 3}`,
		`{1: 'a'}`, `{'a': {1: 'b'}}`, `timestamp('2024-05-01T12:00:00Z')`,
	} {
		ast, iss := env.Compile(src)
		if iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := prg.Eval(map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		checkRemembered(t, src, v)
	}
	// A remembered value read back, as `previous` holds it.
	for _, native := range []any{
		map[string]any{"ip": "203.0.113.9", "n": 2.0, "ok": true, "x": nil, "l": []any{"a", map[string]any{"b": 1.0}}},
		[]any{"a", 1.0},
	} {
		v := types.DefaultTypeAdapter.NativeToValue(native)
		if !encodeCEL(&encoder{}, v, 0) {
			t.Fatalf("%v: not encoded straight", native)
		}
		checkRemembered(t, fmt.Sprint(native), v)
	}
}

// directCEL are the sources whose values encodeCEL writes itself.
var directCEL = map[string]bool{`'Austin'`: true, `1.5`: true, `true`: true, `null`: true,
	`{'city': 'Austin', 'lat': 30.27, 'lon': -97.74, 'proxy': false, 'asn': null}`: true}

// checkRemembered compares encodeRemembered(v) with the JSON-native path.
func checkRemembered(t *testing.T, src string, v ref.Val) {
	t.Helper()
	if directCEL[src] && !encodeCEL(&encoder{}, v, 0) {
		t.Fatalf("%s: not encoded straight from CEL", src)
	}
	var got, want encoder
	errGot := encodeRemembered(&got, v)
	var errWant error
	if nv, err := toJSONNative(v); err != nil {
		errWant = err
	} else {
		errWant = encodeValue(&want, nv, 0)
	}
	if fmt.Sprint(errGot) != fmt.Sprint(errWant) {
		t.Fatalf("%s: error %v, want %v", src, errGot, errWant)
	}
	if errWant != nil {
		return
	}
	dg, dw := decoder{b: got.b}, decoder{b: want.b}
	if g, w := decodeValue(&dg, 0), decodeValue(&dw, 0); !reflect.DeepEqual(g, w) || dg.end() != nil || dw.end() != nil {
		t.Fatalf("%s: decodes to %#v, want %#v", src, g, w)
	}
}
