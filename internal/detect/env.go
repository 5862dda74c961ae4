package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"github.com/oktadetect/oktadetect/internal/editdist"
)

// earthRadiusKm is the mean Earth radius used by geo.distance_km.
const earthRadiusKm = 6371.0

// newEnv returns the CEL environment every rule expression is compiled in:
// CEL's and our libraries, then the host's (opts.Libraries: the okta
// library, handed in by plugin/plugin.go). withPrevious declares the
// `previous` variable, only for rules with a `previous:` header, so that
// using it elsewhere is a compile error. Environments are built once per
// set of libraries and shared (a cel.Env is immutable and safe for
// concurrent use); building one per rule was ~15% of loading the pack.
func newEnv(withPrevious bool, libs []cel.Library) (*cel.Env, error) {
	key := envKey{withPrevious: withPrevious, libs: libraryKey(libs)}
	envsMu.Lock()
	e, ok := envs[key]
	if !ok {
		e = &builtEnv{}
		envs[key] = e
	}
	envsMu.Unlock()
	e.once.Do(func() { e.env, e.err = buildEnv(withPrevious, libs) })
	return e.env, e.err
}

type envKey struct {
	withPrevious bool
	libs         string
}

type builtEnv struct {
	once sync.Once
	env  *cel.Env
	err  error
}

var (
	envsMu sync.Mutex
	envs   = map[envKey]*builtEnv{}
)

// libraryKey tells sets of libraries apart: their types, and the values
// themselves (a version is a field of the value).
func libraryKey(libs []cel.Library) string {
	var b strings.Builder
	for _, l := range libs {
		fmt.Fprintf(&b, "%T=%+v;", l, l)
	}
	return b.String()
}

func buildEnv(withPrevious bool, libs []cel.Library) (*cel.Env, error) {
	opts := append(standardLibraries(), customLibraries()...)
	for _, l := range libs {
		opts = append(opts, cel.Lib(l))
	}
	opts = append(opts, costLibrary(libs))
	if withPrevious {
		opts = append(opts, cel.Variable("previous", cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("building CEL environment: %w", err)
	}
	return env, nil
}

// standardLibraries are CEL's own, which price their functions themselves.
func standardLibraries() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable("event", cel.DynType),
		// lists: site data from cel_detect's `lists` (Tuning.Lists).
		cel.Variable("lists", cel.MapType(cel.StringType, cel.ListType(cel.StringType))),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		ext.Lists(),
		ext.Math(),
		ext.Sets(),
		ext.Encoders(),
		ext.Network(),
		ext.Regex(),
		ext.Bindings(),
		ext.TwoVarComprehensions(),
	}
}

// customLibraries are ours; every overload they declare has a cost by input
// size in funcCosts (libcost.go).
func customLibraries() []cel.EnvOption {
	return []cel.EnvOption{geoLibrary(), jsonLibrary(), similarityLibrary()}
}

// geoLibrary: geo.distance_km(lat1, lon1, lat2, lon2) -> double, the
// great-circle (haversine) distance. Arguments are dyn so that JSON numbers,
// ints and doubles all work.
func geoLibrary() cel.EnvOption {
	return cel.Function("geo.distance_km",
		cel.Overload("geo_distance_km_dyn",
			[]*cel.Type{cel.DynType, cel.DynType, cel.DynType, cel.DynType}, cel.DoubleType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				var f [4]float64
				for i, a := range args {
					v, ok := toFloat(a)
					if !ok {
						return types.NewErr("geo.distance_km: argument %d is %s, not a number", i+1, a.Type().TypeName())
					}
					f[i] = v
				}
				return types.Double(haversineKm(f[0], f[1], f[2], f[3]))
			})))
}

func toFloat(v ref.Val) (float64, bool) {
	switch n := v.(type) {
	case types.Double:
		return float64(n), true
	case types.Int:
		return float64(n), true
	case types.Uint:
		return float64(n), true
	}
	return 0, false
}

func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// jsonLibrary: json.decode(string) -> dyn parses JSON embedded in a string
// field (Okta puts JSON in debugData fields such as behaviors and risk).
// Numbers become doubles, like event numbers.
func jsonLibrary() cel.EnvOption {
	return cel.Function("json.decode",
		cel.Overload("json_decode_string", []*cel.Type{cel.StringType}, cel.DynType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				var out any
				if err := json.Unmarshal([]byte(v.(types.String)), &out); err != nil {
					return types.NewErr("json.decode: %v", err)
				}
				return types.DefaultTypeAdapter.NativeToValue(out)
			})))
}

// similarityLibrary: strings.similarity(a, b) -> double in [0, 1], one minus
// the Levenshtein distance over the longer length (in runes); 1.0 for equal
// strings. Useful to compare user agents or names that differ slightly.
// The distance is exact while the strings differ over at most
// similarityMaxRunes runes each (after their common prefix and suffix);
// beyond that it is an upper bound (see boundedDistance), so similarity is
// never overstated and one call never costs more than a bounded table.
func similarityLibrary() cel.EnvOption {
	return cel.Function("strings.similarity",
		cel.Overload("strings_similarity_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.DoubleType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				return types.Double(similarity(string(a.(types.String)), string(b.(types.String))))
			})))
}

// similarityMaxRunes bounds the edit-distance table of strings.similarity
// to 512 x 512 cells (well under a millisecond). Real user agents are a few
// hundred bytes; two 64 KiB ones used to take 12 s of CPU per event.
const similarityMaxRunes = 512

func similarity(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	longest := max(len(ra), len(rb))
	if longest == 0 {
		return 1
	}
	return 1 - float64(boundedDistance(ra, rb))/float64(longest)
}

// boundedDistance is the Levenshtein distance of a and b when, without their
// common prefix and suffix (which cost no edits), both are at most
// similarityMaxRunes long. Longer, it is the exact distance of the first
// similarityMaxRunes runes plus the position-by-position mismatches of the
// rest: edits of the two parts together turn a into b, so this is an upper
// bound of the distance, in linear time.
func boundedDistance(a, b []rune) int {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	a, b = a[p:], b[p:]
	s := 0
	for s < len(a) && s < len(b) && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	a, b = a[:len(a)-s], b[:len(b)-s]
	if len(a) <= similarityMaxRunes && len(b) <= similarityMaxRunes {
		return editdist.Levenshtein(a, b)
	}
	ha, hb := min(len(a), similarityMaxRunes), min(len(b), similarityMaxRunes)
	return editdist.Levenshtein(a[:ha], b[:hb]) + mismatches(a[ha:], b[hb:])
}

// mismatches is the edits turning a into b in place: substitutions where
// they differ, plus the difference in length.
func mismatches(a, b []rune) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// valueString renders a key or template value: strings as they are,
// everything else as JSON, so keys built from lists stay unambiguous.
func valueString(v ref.Val) string {
	if s, ok := v.(types.String); ok {
		return string(s)
	}
	native, err := toJSONNative(v)
	if err != nil {
		return fmt.Sprint(v.Value())
	}
	b, err := json.Marshal(native)
	if err != nil || !utf8.Valid(b) {
		return fmt.Sprint(v.Value())
	}
	return string(b)
}
