package detect

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
	"github.com/oktadetect/oktadetect/rules"
)

// Benchmarks only run with -bench. Each reports ns/event (ns/op),
// events/s, B/event and allocs/event (B/op, allocs/op) over the same
// corpus: 4,096 realistic events from the simulator's generator (mixed
// types, about 2 KB each), so that their ratios within one run compare
// the stages. See tests/bench/README.md.

var (
	corpusOnce sync.Once
	corpusEvs  [][]byte
)

// benchEvents returns the shared corpus.
func benchEvents() [][]byte {
	corpusOnce.Do(func() { corpusEvs = corpus.Events(4096) })
	return corpusEvs
}

// seedRuleIDs are the five rules the engine shipped with.
var seedRuleIDs = []string{"Okta.APIKeyCreated", "Okta.APIKeyRevoked", "Okta.AdminRoleAssigned", "Okta.BruteForceLogins", "Okta.GeographicallyImprobableAccess"}

func seedRules(b testing.TB) *RuleSet {
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		b.Fatal(err)
	}
	var keep []*compiledRule
	for _, r := range rs.rules {
		if slices.Contains(seedRuleIDs, r.ID) {
			keep = append(keep, r)
		}
	}
	out, err := NewRuleSet(keep)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// packRules is whatever is in rules/okta on disk now.
func packRules(b testing.TB) *RuleSet {
	return packRulesWith(b, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
}

func packRulesWith(b testing.TB, opts CompileOptions) *RuleSet {
	rs, err := LoadPaths([]string{filepath.Join("..", "..", "rules", "okta")}, opts)
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}

// BenchmarkDecodeOnly is the baseline: encoding/json into map[string]any.
func BenchmarkDecodeOnly(b *testing.B) {
	events := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := json.Unmarshal(events[i%len(events)], &m); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkFloorFastjsonValidate is the floor: the fastest validating JSON
// scan in Go (valyala/fastjson's validator, no tree built).
func BenchmarkFloorFastjsonValidate(b *testing.B) {
	events := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fastjson.ValidateBytes(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkFloorFastjsonParse parses into fastjson's reusable tree.
func BenchmarkFloorFastjsonParse(b *testing.B) {
	events := benchEvents()
	var p fastjson.Parser
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.ParseBytes(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkParseEvent is the engine's own decode (jsondoc_parse.go) alone.
func BenchmarkParseEvent(b *testing.B) {
	events := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pe, err := acquireEvent(events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		releaseEvent(pe)
	}
	reportRate(b)
}

func benchEngine(b *testing.B, rs *RuleSet, opts EngineOptions) {
	events := benchEvents()
	e := NewEngine(rs, opts)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Process(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkDetectSeedRules: the engine with the five seed rules (decode,
// index, evaluate, state, tagging).
func BenchmarkDetectSeedRules(b *testing.B) { benchEngine(b, seedRules(b), EngineOptions{}) }

// BenchmarkDetectSeedRulesNoIndex: the same, every rule on every event.
func BenchmarkDetectSeedRulesNoIndex(b *testing.B) {
	benchEngine(b, seedRules(b), EngineOptions{noIndex: true})
}

// BenchmarkDetectPack: the whole pack in rules/okta.
func BenchmarkDetectPack(b *testing.B) {
	rs := packRules(b)
	b.ReportMetric(float64(len(rs.rules)), "rules")
	benchEngine(b, rs, EngineOptions{})
}

// BenchmarkDetectPackStream: the whole pack over 100,000 corpus events in
// their order, a fresh engine per pass, so that event time advances and
// sweeps, freezing and expiry cost what they cost in a pipeline (the
// benchmarks above loop over 4,096 events, whose times repeat). Run it
// with -benchtime 100000x (or a multiple).
func BenchmarkDetectPackStream(b *testing.B) {
	const n = 100_000
	events := corpus.Events(n)
	rs := packRules(b)
	var e *Engine
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%n == 0 {
			e = NewEngine(rs, EngineOptions{})
		}
		if _, err := e.Process(events[i%n]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkDetectPackNoIndex: the whole pack, every rule on every event.
func BenchmarkDetectPackNoIndex(b *testing.B) {
	rs := packRules(b)
	b.ReportMetric(float64(len(rs.rules)), "rules")
	benchEngine(b, rs, EngineOptions{noIndex: true})
}

// BenchmarkDetectSeedRulesParallel is the seed set under concurrent threads.
func BenchmarkDetectSeedRulesParallel(b *testing.B) {
	events := benchEvents()
	e := NewEngine(seedRules(b), EngineOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = e.Process(events[i%len(events)])
			i++
		}
	})
	reportRate(b)
}

// BenchmarkStatePerUser measures the heap held per remembered user by the
// geographic rule (previous) and per threshold group by brute force: N
// distinct users each log in (and fail once); the live heap after a GC,
// divided by N. The measurement runs once whatever -benchtime says.
func BenchmarkStatePerUser(b *testing.B) {
	const users = 20000
	rs := seedRules(b)
	mk := func(i int, result string) []byte {
		return ev(0, map[string]any{
			"eventType": "user.session.start",
			"actor":     map[string]any{"id": "00u" + itoa(i), "alternateId": "user" + itoa(i) + "@acme.example"},
			"outcome":   map[string]any{"result": result, "reason": "INVALID_CREDENTIALS"},
			"client": map[string]any{"geographicalContext": map[string]any{"city": "Berlin", "country": "Germany",
				"geolocation": map[string]any{"lat": 52.52, "lon": 13.405}}},
		})
	}
	{
		e := NewEngine(rs, EngineOptions{})
		heap := func() uint64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		h0 := heap()
		for i := range users {
			if _, err := e.Process(mk(i, "SUCCESS")); err != nil {
				b.Fatal(err)
			}
		}
		h1 := heap()
		for i := range users {
			if _, err := e.Process(mk(i, "FAILURE")); err != nil {
				b.Fatal(err)
			}
		}
		h2 := heap()
		runtime.KeepAlive(e)
		for b.Loop() {
		}
		b.ReportMetric(float64(h1-h0)/users, "B/remembered-user")
		b.ReportMetric(float64(h2-h1)/users, "B/threshold-group")
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// BenchmarkIndexSkippedRules measures what a rule costs on events its
// eventType guard does not admit: the pack alone and the pack plus 500
// synthetic rules guarded on types the corpus never has (half exact,
// `event.eventType == 'synthetic.never.N' && …`, half prefixes,
// `event.eventType.startsWith('synthetic.pN.') && …`), each event
// processed by both engines in turn (alternating which goes first) so that
// both see the same load.
// ns/skipped-rule is the difference per event divided by 500.
func BenchmarkIndexSkippedRules(b *testing.B) {
	const extra = 500
	events := benchEvents()
	pack := packRules(b)
	srcs := make([]string, extra)
	for i := range srcs {
		if i%2 == 0 {
			srcs[i] = fmt.Sprintf("// id: Synthetic.Exact.%d\nevent.eventType == 'synthetic.never.%d' && event.?outcome.?result.orValue('') == 'SUCCESS'\n", i, i)
		} else {
			srcs[i] = fmt.Sprintf("// id: Synthetic.Prefix.%d\nevent.eventType.startsWith('synthetic.p%d.') && event.?outcome.?result.orValue('') == 'SUCCESS'\n", i, i)
		}
	}
	synthetic := compileRules(b, srcs...)
	both, err := NewRuleSet(append(slices.Clone(pack.rules), synthetic.rules...))
	if err != nil {
		b.Fatal(err)
	}
	base, more := NewEngine(pack, EngineOptions{}), NewEngine(both, EngineOptions{})
	for _, raw := range events { // warm the index caches of both
		base.Process(raw)
		more.Process(raw)
	}
	var tBase, tMore time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw := events[i%len(events)]
		first, second, t1, t2 := base, more, &tBase, &tMore
		if i%2 == 1 { // the second run finds the event in cache: alternate
			first, second, t1, t2 = more, base, &tMore, &tBase
		}
		s := time.Now()
		if _, err := first.Process(raw); err != nil {
			b.Fatal(err)
		}
		m := time.Now()
		if _, err := second.Process(raw); err != nil {
			b.Fatal(err)
		}
		*t2 += time.Since(m)
		*t1 += m.Sub(s)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tBase.Nanoseconds())/n, "ns/event-pack")
	b.ReportMetric(float64(tMore.Nanoseconds())/n, "ns/event-pack+500")
	b.ReportMetric(float64((tMore-tBase).Nanoseconds())/n/extra, "ns/skipped-rule")
}
