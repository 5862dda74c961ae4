package detect

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/decls"

	"github.com/oktadetect/oktadetect/internal/editdist"
)

// customOverloads lists the overloads our libraries add: every function of
// the rules' environment that the same environment without them lacks.
func customOverloads(t *testing.T) []string {
	t.Helper()
	ours, err := newEnv(true, oktaLibs)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := cel.NewEnv(standardLibraries()...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for name, fn := range ours.Functions() {
		std, isStd := plain.Functions()[name]
		for _, o := range fn.OverloadDecls() {
			if !isStd || !slices.ContainsFunc(std.OverloadDecls(), func(s *decls.OverloadDecl) bool { return s.ID() == o.ID() }) {
				out = append(out, o.ID())
			}
		}
	}
	slices.Sort(out)
	return out
}

// Every custom function has a cost by input size: a new one without an
// entry in funcCosts (or its library's FunctionCosts) fails here.
func TestEveryCustomFunctionHasACost(t *testing.T) {
	got := customOverloads(t)
	if len(got) < 5 {
		t.Fatalf("found only %v", got)
	}
	for _, id := range got {
		if !slices.ContainsFunc(costsOf(oktaLibs), func(fc funcCost) bool { return fc.overload == id }) {
			t.Errorf("custom overload %s has no cost (add it to funcCosts)", id)
		}
	}
}

// randomText is n bytes of letters, different for each seed.
func randomText(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

// An expression calling a custom function on huge inputs exceeds a small
// cost_limit and errors, where the same call on ordinary inputs is within
// it. (CEL charges 1 per call otherwise, whatever the input.)
func TestCustomFunctionsOnHugeInputsExceedCostLimit(t *testing.T) {
	const limit = 20_000
	behaviors := func(pad string) map[string]any {
		return map[string]any{"debugData": map[string]any{"behaviors": "{New IP=POSITIVE, New Device=NEGATIVE}", "risk": "{level=HIGH}", "pad": pad}}
	}
	jsonText := func(n int) string {
		b, _ := json.Marshal(map[string]any{"k": randomText(3, n)})
		return string(b)
	}
	cases := []struct {
		fn, cond    string
		small, huge map[string]any
	}{
		{"strings.similarity", "strings.similarity(event.a, event.b) <= 1.0",
			map[string]any{"a": randomText(1, 150), "b": randomText(2, 150)},
			map[string]any{"a": randomText(1, 64<<10), "b": randomText(2, 64<<10)}},
		{"json.decode", "json.decode(event.s).k != ''",
			map[string]any{"s": jsonText(200)}, map[string]any{"s": jsonText(256 << 10)}},
		{"okta.behaviors", "size(okta.behaviors(event)) >= 0",
			map[string]any{"debugContext": behaviors("")}, map[string]any{"debugContext": behaviors(randomText(4, 256<<10))}},
		{"okta.risk", "okta.risk(event) != 'x'",
			map[string]any{"debugContext": behaviors("")}, map[string]any{"debugContext": behaviors(randomText(4, 256<<10))}},
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			rs, err := compileFiles([]ruleFile{{path: "f.cel", data: []byte("// id: F\n" + c.cond + "\n")}}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning, CostLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			e := NewEngine(rs, EngineOptions{Hooks: rec.hooks()})
			if res := process(t, e, ev(0, c.small)); detOf(res, "F") == nil {
				t.Fatalf("ordinary input: not tagged, errors %v", rec.errors["F"])
			}
			process(t, e, ev(0, c.huge))
			if errs := rec.errors["F"]; len(errs) != 1 || !strings.Contains(errs[0].Error(), "cost limit exceeded") {
				t.Fatalf("huge input under cost_limit %d: errors %v, want a cost limit error", limit, errs)
			}
		})
	}
}

// boundedDistance is Levenshtein's distance while the differing parts fit
// the table, and never below it beyond.
func TestBoundedDistance(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	word := func(n int) []rune {
		s := make([]rune, n)
		for i := range s {
			s[i] = rune('a' + r.IntN(3))
		}
		return s
	}
	for range 300 {
		a, b := word(r.IntN(40)), word(r.IntN(40))
		if got, want := boundedDistance(a, b), editdist.Levenshtein(a, b); got != want {
			t.Fatalf("%q %q: %d, want %d", string(a), string(b), got, want)
		}
	}
	// A long shared prefix and suffix cost nothing, however long.
	pre, suf := strings.Repeat("p", 50_000), strings.Repeat("s", 50_000)
	if d := boundedDistance([]rune(pre+"kitten"+suf), []rune(pre+"sitting"+suf)); d != 3 {
		t.Fatalf("kitten/sitting inside 100 k shared runes: %d, want 3", d)
	}
	for range 5 {
		a, b := word(similarityMaxRunes+1+r.IntN(200)), word(similarityMaxRunes+1+r.IntN(200))
		if got, exact := boundedDistance(a, b), editdist.Levenshtein(a, b); got < exact {
			t.Fatalf("over the bound: %d, below the exact distance %d", got, exact)
		}
	}
	if s := similarity("kitten", "sitting"); s < 0.57 || s > 0.58 {
		t.Fatalf("similarity(kitten, sitting) = %v", s)
	}
}

// stolenSessionEvents are the two sign-ins of Okta.PotentiallyStolenSession:
// one session and device, then a new IP with a different user agent; each
// agent is uaLen bytes.
func stolenSessionEvents(uaLen int) (first, second []byte) {
	agent := func(seed uint64) string {
		ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 "
		if seed == 2 {
			ua = "curl/8.4.0 python-requests/2.31 "
		}
		if uaLen > len(ua) {
			ua += randomText(seed, uaLen-len(ua))
		}
		return ua
	}
	event := func(offset int, ip, ua string) []byte {
		b, _ := json.Marshal(map[string]any{
			"uuid": fmt.Sprintf("e%d", offset), "published": fmt.Sprintf("2024-05-01T12:%02d:00Z", offset),
			"eventType":             "user.authentication.sso",
			"actor":                 map[string]any{"displayName": "Jane Doe"},
			"authenticationContext": map[string]any{"externalSessionId": "idxSession1"},
			"debugContext":          map[string]any{"debugData": map[string]any{"dtHash": "dt-1"}},
			"client":                map[string]any{"ipAddress": ip, "id": "app", "userAgent": map[string]any{"rawUserAgent": ua}},
			"securityContext":       map[string]any{"asNumber": 64500},
		})
		return b
	}
	return event(1, "198.51.100.7", agent(1)), event(2, "203.0.113.9", agent(2))
}

func stolenSessionEngine(t testing.TB) *Engine {
	rs, err := LoadPaths([]string{filepath.Join("..", "..", "rules", "okta", "potentially_stolen_session.cel")}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	return NewEngine(rs, EngineOptions{})
}

// Padding user agents to 64 KiB does not evade Okta.PotentiallyStolenSession
// under the default cost_limit: the bounded similarity is charged within it.
func TestStolenSessionWithHugeUserAgentsStillDetected(t *testing.T) {
	for _, n := range []int{150, 64 << 10} {
		e := stolenSessionEngine(t)
		first, second := stolenSessionEvents(n)
		process(t, e, first)
		if detOf(process(t, e, second), "Okta.PotentiallyStolenSession") == nil {
			t.Errorf("user agents of %d bytes: the stolen session is not tagged", n)
		}
	}
}

// BenchmarkSimilarityHugeUserAgents: strings.similarity and the rule
// Okta.PotentiallyStolenSession on 64 KiB user agents, beside the same on
// ordinary ones (ns/op is per call, or per event for the rule). Two 64 KiB
// agents used to cost 12 s of CPU per event.
func BenchmarkSimilarityHugeUserAgents(b *testing.B) {
	for _, n := range []int{150, 64 << 10} {
		name := fmt.Sprintf("%dB", n)
		b.Run("similarity/"+name, func(b *testing.B) {
			x, y := randomText(1, n), randomText(2, n)
			b.ResetTimer()
			for range b.N {
				similarity(x, y)
			}
		})
		b.Run("rule/"+name, func(b *testing.B) {
			e := stolenSessionEngine(b)
			first, second := stolenSessionEvents(n)
			process(b, e, first)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if detOf(process(b, e, second), "Okta.PotentiallyStolenSession") == nil {
					b.Fatal("not tagged")
				}
			}
		})
	}
}
