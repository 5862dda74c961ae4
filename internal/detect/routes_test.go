package detect

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
	"github.com/oktadetect/oktadetect/internal/testkit"
	"github.com/oktadetect/oktadetect/rules"
)

// alertKey names one tag: a rule's alert on an event.
type alertKey struct{ uuid, rule string }

// tagSet records every tag's alert id and count.
type tagSet map[alertKey]string

func (s tagSet) add(t *testing.T, res Result) {
	t.Helper()
	if len(res.Detections) == 0 {
		return
	}
	var ev struct {
		UUID string `json:"uuid"`
	}
	if err := json.Unmarshal(res.Out, &ev); err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Detections {
		k := alertKey{ev.UUID, d.ID}
		if _, dup := s[k]; dup {
			t.Errorf("%s tagged %s twice", d.ID, ev.UUID)
		}
		s[k] = fmt.Sprintf("%s count=%d", d.AlertID, d.Count)
	}
}

// diffByRule counts, per rule, the tags one set has and the other has not
// (or has with another alert id or count).
func diffByRule(a, b tagSet) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		if b[k] != v {
			out[k.rule]++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out[k.rule]++
		}
	}
	return out
}

func partitionOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// orgMeta spreads the corpus over two orgs, a stretch of events each, so
// that keys are scoped.
func orgMeta(i int) []MetaField {
	return []MetaField{{Name: orgMember, Value: fmt.Sprintf("org%d.okta.com", i/2500%2)}}
}

// The pack on the corpus, events routed by Routes to 12 engines that each
// evaluate only the routed rule: exactly the tags (rule, alert id, count)
// of one engine holding all the state. Partitioned by actor instead, as
// stage 1 writes the events, the rules keyed by an IP or a session differ:
// the corpus does exercise them.
func TestRoutesGiveTheTagsOfOneEngine(t *testing.T) {
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	evs := corpus.SpreadEvents(testkit.Scaled(20000, 4))
	const partitions = 12

	one, global := NewEngine(rs, EngineOptions{}), tagSet{}
	router := NewEngine(rs, EngineOptions{})
	routed, byRoute := make([]*Engine, partitions), tagSet{}
	byActor, actorTags := make([]*Engine, partitions), tagSet{}
	for p := range partitions {
		routed[p], byActor[p] = NewEngine(rs, EngineOptions{}), NewEngine(rs, EngineOptions{})
	}
	records, routedRules := 0, map[string]bool{}
	for i, raw := range evs {
		meta := orgMeta(i)
		res, err := one.ProcessWithMeta(raw, meta)
		if err != nil {
			t.Fatal(err)
		}
		global.add(t, res)

		routes, err := router.Routes(raw, meta)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			records++
			routedRules[r.Rule] = true
			res, err := routed[partitionOf(r.PartitionKey(), partitions)].ProcessRule(r.Rule, raw, meta)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Detections) > 1 || len(res.Detections) == 1 && res.Detections[0].ID != r.Rule {
				t.Fatalf("routed for %s, tagged %+v", r.Rule, res.Detections)
			}
			byRoute.add(t, res)
		}

		var ev struct {
			UUID  string `json:"uuid"`
			Actor struct {
				AlternateID string `json:"alternateId"`
			} `json:"actor"`
		}
		_ = json.Unmarshal(raw, &ev)
		key := ev.Actor.AlternateID
		if key == "" {
			key = ev.UUID
		}
		res, err = byActor[partitionOf(key, partitions)].ProcessWithMeta(raw, meta)
		if err != nil {
			t.Fatal(err)
		}
		actorTags.add(t, res)
	}
	if len(global) < 500 {
		t.Fatalf("only %d tags on the corpus: it should hold attacks", len(global))
	}
	if d := diffByRule(global, byRoute); len(d) > 0 {
		t.Errorf("routed engines tag differently from one engine, per rule: %v", d)
	}
	actorDiff := diffByRule(global, actorTags)
	for _, id := range []string{"Standard.BruteForceByIP", "Okta.Elastic.PasswordSpraySingleSource"} {
		if actorDiff[id] == 0 {
			t.Errorf("partitioned by actor, %s tags as one engine does (%v): the corpus does not exercise state keyed by IP", id, actorDiff)
		}
	}
	var rulesRouted []string
	for id := range routedRules {
		rulesRouted = append(rulesRouted, id)
	}
	sort.Strings(rulesRouted)
	t.Logf("%d events, %d routed records (%.2f per event) for %d rules; %d tags, identical; partitioned by actor instead: %v differ",
		len(evs), records, float64(records)/float64(len(evs)), len(rulesRouted), len(global), actorDiff)
}

// Routes touch no state and do not depend on it: an event gets the same
// routes before and after the engine has seen the whole corpus.
func TestRoutesReadNoState(t *testing.T) {
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	evs := corpus.Events(3000)
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	before := make([][]Route, len(evs))
	for i, raw := range evs {
		if before[i], err = e.Routes(raw, orgMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	if changes, err := e.takeChanges(); err != nil || len(changes) != 0 {
		t.Errorf("routing changed %d state entries (%v)", len(changes), err)
	}
	if w := e.watermark.Load(); w != minTime {
		t.Errorf("routing moved the watermark to %d", w)
	}
	for i, raw := range evs {
		if _, err := e.ProcessWithMeta(raw, orgMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, raw := range evs {
		after, err := e.Routes(raw, orgMeta(i))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(after) != fmt.Sprint(before[i]) {
			t.Fatalf("event %d: routes %v with state, %v without", i, after, before[i])
		}
	}
}

// Keys are scoped by org: the same failure in two orgs goes to two keys.
func TestRoutesScopedByOrg(t *testing.T) {
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs, EngineOptions{})
	raw := []byte(`{"uuid":"u1","published":"2026-01-01T00:00:00Z","eventType":"user.session.start",
		"actor":{"alternateId":"a@x.io","id":"00ua"},"outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"},
		"client":{"ipAddress":"203.0.113.9"}}`)
	a, err := e.Routes(raw, []MetaField{{Name: orgMember, Value: "a.okta.com"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Routes(raw, []MetaField{{Name: orgMember, Value: "b.okta.com"}})
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("routes %v and %v", a, b)
	}
	for i := range a {
		if a[i].Rule != b[i].Rule || a[i].Key == b[i].Key {
			t.Errorf("org a: %q, org b: %q: keys of one rule must differ by org", a[i], b[i])
		}
	}
}

// BenchmarkRoutesPack: the route step's cost per event of the corpus, to
// compare with BenchmarkDetectPack (the detect step's) in the same run.
func BenchmarkRoutesPack(b *testing.B) {
	e := NewEngine(packRules(b), EngineOptions{})
	evs := benchEvents()
	meta := orgMeta(0)
	b.ReportAllocs()
	b.ResetTimer()
	routes := 0
	for i := 0; i < b.N; i++ {
		rs, err := e.Routes(evs[i%len(evs)], meta)
		if err != nil {
			b.Fatal(err)
		}
		routes += len(rs)
	}
	reportRate(b)
	b.ReportMetric(float64(routes)/float64(b.N), "routes/event")
}

// firing is an absence fired after the event at source index at.
type firing struct {
	alertID, opening string
	at               int
}

// Absences at scale: the route step sends each org's event time to every
// partition as it enters a new minute (RouteEvent's watermarks), so that a
// partition that receives nothing else of the org fires each absence after
// the same event of the source as one engine does: the same alert, at the
// same point of the stream, with closing events that arrive late counted
// alike. Without the watermarks, quiet partitions fire later, after other
// events, and a late closing event can then cancel what one engine fired.
func TestRoutedAbsencesFireAfterTheSameEvent(t *testing.T) {
	rs := compileRules(t, absenceRule)
	const partitions = 4
	run := func(seed uint64, watermarks bool) (one, scaled []firing) {
		rng := rand.New(rand.NewPCG(seed, 7))
		single, router := NewEngine(rs, EngineOptions{}), NewEngine(rs, EngineOptions{})
		parts := make([]*Engine, partitions)
		for p := range parts {
			parts[p] = NewEngine(rs, EngineOptions{})
		}
		note := func(out *[]firing, at int, res Result) {
			for _, d := range res.Deferred {
				var ev struct {
					UUID string `json:"uuid"`
				}
				if err := json.Unmarshal(d.Out, &ev); err != nil {
					t.Fatal(err)
				}
				*out = append(*out, firing{d.Detections[0].AlertID, ev.UUID, at})
			}
		}
		base := time.Duration(0)
		for i := range 300 {
			base += time.Duration(rng.IntN(20)) * time.Second     // several events a minute
			at := base - time.Duration(rng.IntN(180))*time.Second // Okta persists some events late
			user, kind := fmt.Sprintf("u%d", rng.IntN(6)), "tick"
			switch n := rng.IntN(20); {
			case n < 3:
				kind = "start"
			case n < 6:
				kind = "done"
			case n < 14:
				user = "zed" // concerns no key: routed nowhere
			}
			raw := of(at, fmt.Sprintf("e%d", i), kind, user, nil)
			meta := inOrg(fmt.Sprintf("org%d", rng.IntN(2)))
			note(&one, i, mustProcess(t, single, "", raw, meta))
			routes, wm, err := router.RouteEvent(raw, meta)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes {
				note(&scaled, i, mustProcess(t, parts[partitionOf(r.PartitionKey(), partitions)], r.Rule, raw, meta))
			}
			if wm != nil && watermarks {
				for _, p := range parts {
					note(&scaled, i, mustProcess(t, p, WatermarkRule, wm.Body, meta))
				}
			}
		}
		return one, scaled
	}
	sortFirings := func(f []firing) {
		sort.Slice(f, func(i, j int) bool { return fmt.Sprint(f[i]) < fmt.Sprint(f[j]) })
	}
	fired, differWithout := 0, 0
	for seed := range uint64(40) {
		one, scaled := run(seed, true)
		sortFirings(one)
		sortFirings(scaled)
		if fmt.Sprint(one) != fmt.Sprint(scaled) {
			t.Fatalf("seed %d: one engine fired %v, the partitions %v", seed, one, scaled)
		}
		fired += len(one)
		_, without := run(seed, false)
		sortFirings(without)
		if fmt.Sprint(one) != fmt.Sprint(without) {
			differWithout++
		}
	}
	if fired < 40 || differWithout == 0 {
		t.Fatalf("%d absences fired over 40 streams, %d streams differ without watermarks: the streams do not exercise quiet partitions", fired, differWithout)
	}
	t.Logf("%d absences fired over 40 streams, identical with watermarks; without them %d streams differ", fired, differWithout)
}

func mustProcess(t *testing.T, e *Engine, rule string, raw []byte, meta []MetaField) Result {
	t.Helper()
	var res Result
	var err error
	if rule == "" {
		res, err = e.ProcessWithMeta(raw, meta)
	} else {
		res, err = e.ProcessRule(rule, raw, meta)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A watermark is sent when an event moves its org into a new minute, and
// only then; each org has its own time.
func TestRouteEventWatermarks(t *testing.T) {
	e := NewEngine(compileRules(t, absenceRule), EngineOptions{})
	steps := []struct {
		org  string
		at   time.Duration
		want bool
	}{
		{"a", 10 * time.Second, true}, // the org's first event
		{"a", 50 * time.Second, false},
		{"b", 20 * time.Second, true}, // another org's own time
		{"a", 5 * time.Second, false}, // late: time does not move back
		{"a", 61 * time.Second, true},
		{"a", 119 * time.Second, false},
		{"a", 10 * time.Minute, true},
		{"b", 30 * time.Second, false},
	}
	for i, st := range steps {
		raw := of(st.at, fmt.Sprintf("e%d", i), "tick", "zed", nil)
		_, wm, err := e.RouteEvent(raw, inOrg(st.org))
		if err != nil {
			t.Fatal(err)
		}
		if (wm != nil) != st.want {
			t.Fatalf("step %d (org %s at %v): watermark %v, want %v", i, st.org, st.at, wm != nil, st.want)
		}
		if wm != nil {
			var body map[string]any
			if err := json.Unmarshal(wm.Body, &body); err != nil || len(body) != 1 || body["published"] != base.Add(st.at).Format(time.RFC3339Nano) {
				t.Fatalf("step %d: watermark body %s (%v)", i, wm.Body, err)
			}
		}
	}
	if _, wm, _ := e.RouteEvent([]byte(`{"uuid":"x","published":"yesterday"}`), inOrg("a")); wm != nil {
		t.Fatal("an event without a usable time sent a watermark")
	}
}

// No rule may take the watermark records' rule id.
func TestWatermarkRuleIDIsReserved(t *testing.T) {
	_, err := ParseRule("w.cel", []byte("// id: \""+WatermarkRule+"\"\ntrue\n"))
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("a rule named %s compiled (%v)", WatermarkRule, err)
	}
}
