package detect

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const thresholdRule = detecttest.ThresholdRule

var fail = detecttest.Fail

func TestThresholdExactlyAtN(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	for i, want := range []bool{false, false, true, true} {
		res := process(t, e, fail(time.Duration(i)*time.Minute, "a"))
		if got := detOf(res, "T") != nil; got != want {
			t.Fatalf("event %d: tagged=%v, want %v", i, got, want)
		}
	}
}

func TestThresholdCountReportsLargestWindow(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	var last Result
	for i := range 5 {
		last = process(t, e, fail(time.Duration(i)*time.Minute, "a"))
	}
	if d := detOf(last, "T"); d == nil || d.Count != 5 {
		t.Fatalf("got %+v, want count 5", d)
	}
}

func TestThresholdWindowBoundary(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	process(t, e, fail(0, "a"))
	process(t, e, fail(5*time.Minute, "a"))
	// Exactly one window after the first: (t-10m, t] excludes it.
	if res := process(t, e, fail(10*time.Minute, "a")); len(res.Detections) != 0 {
		t.Fatalf("tagged at the window boundary: %+v", res.Detections)
	}
	// Just inside: 5m, 10m, 14m59s.
	if res := process(t, e, fail(15*time.Minute-time.Second, "a")); len(res.Detections) != 1 {
		t.Fatal("not tagged with 3 events inside the window")
	}
}

func TestThresholdOutOfOrder(t *testing.T) {
	// Every arrival order of the same events tags the last arrival only
	// when the three fit a window, and always the same way.
	offsets := []time.Duration{9 * time.Minute, 0, 4 * time.Minute}
	e, _ := newTestEngine(t, thresholdRule)
	var got []bool
	for _, o := range offsets {
		got = append(got, detOf(process(t, e, fail(o, "a")), "T") != nil)
	}
	if got[0] || got[1] || !got[2] {
		t.Fatalf("tags %v, want [false false true]: late evidence completing a window fires", got)
	}
}

func TestThresholdGroupsApart(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	process(t, e, fail(0, "a"))
	process(t, e, fail(time.Minute, "b"))
	if res := process(t, e, fail(2*time.Minute, "a")); len(res.Detections) != 0 {
		t.Fatal("groups mixed")
	}
}

func TestThresholdConcurrentThreads(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule)
	var wg sync.WaitGroup
	var mu sync.Mutex
	tagged := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				res, _ := e.Process(fail(time.Duration(w*250+i)*time.Second, "a"))
				if len(res.Detections) > 0 {
					mu.Lock()
					tagged++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	// 1000 events a second apart: all but the two earliest-seen have a
	// window with 3 events; at most a handful (the first arrivals of each
	// thread) can be untagged, never more.
	if tagged < 990 {
		t.Fatalf("tagged %d of 1000", tagged)
	}
}

const dedupRule = detecttest.DedupRule

func TestDedupPeriodRollover(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule)
	login := func(o time.Duration, u string) *Detection {
		return detOf(process(t, e, ev(o, map[string]any{"kind": "login", "user": u})), "D")
	}
	first := login(0, "a")
	same := login(59*time.Minute, "a")
	rolled := login(time.Hour, "a")
	other := login(time.Minute, "b")
	if first.AlertID != same.AlertID {
		t.Fatal("events within the period got different alert ids")
	}
	if rolled.AlertID == first.AlertID {
		t.Fatal("event at the period's end did not open a new alert")
	}
	if other.AlertID == first.AlertID || other.Dedup != "b" {
		t.Fatalf("other key shares the alert: %+v", other)
	}
	// Stable across engines: replays give the same ids.
	e2, _ := newTestEngine(t, dedupRule)
	again := detOf(process(t, e2, ev(0, map[string]any{"kind": "login", "user": "a"})), "D")
	if again.AlertID != first.AlertID {
		t.Fatal("alert id not stable across replays")
	}
}

func TestDedupDefaultKeyIsTitle(t *testing.T) {
	e, _ := newTestEngine(t, "// id: D\n// title: \"x {{ event.user }}\"\nevent.kind == 'login'\n")
	d := detOf(process(t, e, ev(0, map[string]any{"kind": "login", "user": "ü"})), "D")
	if d.Dedup != "x ü" || d.Severity != "MEDIUM" {
		t.Fatalf("%+v", d)
	}
}

const previousRule = detecttest.PreviousRule

var login = detecttest.Login

func TestPrevious(t *testing.T) {
	e, _ := newTestEngine(t, previousRule)
	if len(process(t, e, login(0, "a", "Paris")).Detections) != 0 {
		t.Fatal("first login tagged")
	}
	if len(process(t, e, login(time.Hour, "b", "Tokyo")).Detections) != 0 {
		t.Fatal("users mixed")
	}
	d := detOf(process(t, e, login(2*time.Hour, "a", "Rome")), "P")
	if d == nil || d.Title != "a moved from Paris to Rome" {
		t.Fatalf("got %+v", d)
	}
	// Late arrival older than the remembered one does not replace it.
	process(t, e, login(90*time.Minute, "a", "Oslo"))
	d = detOf(process(t, e, login(3*time.Hour, "a", "Lima")), "P")
	if d == nil || !strings.Contains(d.Title, "from Rome") {
		t.Fatalf("latest by event time lost: %+v", d)
	}
}

func TestPreviousTTLExpiry(t *testing.T) {
	e, _ := newTestEngine(t, previousRule)
	process(t, e, login(0, "a", "Paris"))
	if len(process(t, e, login(24*time.Hour, "a", "Rome")).Detections) != 1 {
		t.Fatal("value exactly ttl old should still be seen")
	}
	if len(process(t, e, login(48*time.Hour+time.Second, "a", "Oslo")).Detections) != 0 {
		t.Fatal("expired value used")
	}
}

func TestNumbersIntAndFloat(t *testing.T) {
	e, _ := newTestEngine(t, "// id: N\nevent.lat > 50.0 && event.n == 3 && event.n < 4\n")
	for _, raw := range []string{
		`{"published":"2024-01-01T00:00:00Z","lat":51,"n":3}`,
		`{"published":"2024-01-01T00:00:00Z","lat":50.5,"n":3.0}`,
		`{"published":"2024-01-01T00:00:00Z","lat":5.1e1,"n":3}`,
	} {
		if len(process(t, e, []byte(raw)).Detections) != 1 {
			t.Errorf("no match for %s", raw)
		}
	}
}

func TestMissingFieldCountsErrorAndKeepsEvent(t *testing.T) {
	e, rec := newTestEngine(t, "// id: M\nevent.a.b == 1.0\n", "// id: OK\nevent.x == 'y'\n")
	raw := []byte(`{"published":"2024-01-01T00:00:00Z","x":"y"}`)
	res := process(t, e, raw)
	if len(rec.errors["M"]) != 1 {
		t.Fatalf("errors: %v", rec.errors)
	}
	if detOf(res, "OK") == nil {
		t.Fatal("an erroring rule stopped the others")
	}
}

func TestUnmatchedEventUnchangedByteForByte(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule)
	raw := []byte("{ \"published\" : \"2024-01-01T00:00:00Z\",\"n\":1.50, \"s\":\"\\u00e9\" }\n")
	res := process(t, e, raw)
	if &res.Out[0] != &raw[0] || !bytes.Equal(res.Out, raw) {
		t.Fatal("unmatched event changed")
	}
}

func TestMatchedEventKeepsFieldsAndAddsDetections(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule)
	raw := []byte(`{"published":"2024-01-01T00:00:00Z","kind":"login","user":"José 🚀","n":1.50}`)
	res := process(t, e, raw)
	if !bytes.HasPrefix(res.Out, raw[:len(raw)-1]) {
		t.Fatalf("original bytes not kept: %s", res.Out)
	}
	var out struct {
		User       string      `json:"user"`
		Detections []Detection `json:"detections"`
	}
	if err := json.Unmarshal(res.Out, &out); err != nil {
		t.Fatal(err)
	}
	if out.User != "José 🚀" || len(out.Detections) != 1 || out.Detections[0].Title != "login by José 🚀" {
		t.Fatalf("%s", res.Out)
	}
}

func TestExistingDetectionsFieldReplaced(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule)
	res := process(t, e, []byte(`{"published":"2024-01-01T00:00:00Z","kind":"login","user":"a","detections":[1]}`))
	var out map[string]any
	_ = json.Unmarshal(res.Out, &out)
	if d, _ := out["detections"].([]any); len(d) != 1 || d[0] == 1.0 {
		t.Fatalf("%s", res.Out)
	}
}

func TestLargeEvent(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule, "// id: Big\nevent.blob.size() > 1000000\n")
	raw := ev(0, map[string]any{"kind": "login", "user": "a", "blob": strings.Repeat("x", 1<<20)})
	res := process(t, e, raw)
	if len(res.Detections) != 2 {
		t.Fatalf("got %d detections", len(res.Detections))
	}
}

func TestMalformedEventPassesWithError(t *testing.T) {
	e, _ := newTestEngine(t, dedupRule)
	for _, raw := range []string{`not json`, `[1,2]`, `null`} {
		res, err := e.Process([]byte(raw))
		if err == nil || string(res.Out) != raw {
			t.Errorf("%s: err=%v out=%s", raw, err, res.Out)
		}
	}
}

func TestCostLimit(t *testing.T) {
	rs, err := compileFiles([]ruleFile{{path: "r.cel", data: []byte("// id: C\n[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a+b+c > 0)))\n")}}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning, CostLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e := NewEngine(rs, EngineOptions{Hooks: rec.hooks()})
	process(t, e, ev(0, nil))
	if len(rec.errors["C"]) != 1 || !strings.Contains(rec.errors["C"][0].Error(), "cost") {
		t.Fatalf("errors: %v", rec.errors)
	}
}

func TestDynamicSeverityInvalidIsError(t *testing.T) {
	e, rec := newTestEngine(t, "// id: S\n// severity: \"{{ event.sev }}\"\ntrue\n")
	if d := detOf(process(t, e, ev(0, map[string]any{"sev": "high"})), "S"); d == nil || d.Severity != "HIGH" {
		t.Fatalf("%+v", d)
	}
	process(t, e, ev(0, map[string]any{"sev": "urgent"}))
	if len(rec.errors["S"]) != 1 {
		t.Fatal("invalid severity not reported")
	}
}

func TestExpireFreesOldState(t *testing.T) {
	rs := compileRules(t, thresholdRule)
	e := NewEngine(rs, EngineOptions{MaxLateness: time.Minute})
	for i := range 100 {
		e.Process(fail(time.Duration(i)*time.Hour, "u"+string(rune('a'+i%26))))
	}
	e.Expire()
	times, openings, _ := e.active.Load().rules[0].state.size()
	if times > 1 || openings > 1 {
		t.Fatalf("state not freed: %d times, %d openings", times, openings)
	}
}

func TestSwapKeepsStateOfUnchangedRules(t *testing.T) {
	e, _ := newTestEngine(t, thresholdRule, dedupRule)
	process(t, e, fail(0, "a"))
	process(t, e, fail(time.Minute, "a"))
	e.Swap(compileRules(t, thresholdRule, strings.Replace(dedupRule, "login by", "login of", 1)))
	if len(process(t, e, fail(2*time.Minute, "a")).Detections) != 1 {
		t.Fatal("threshold state lost over a reload that did not change the rule")
	}
	e.Swap(compileRules(t, strings.Replace(thresholdRule, "fails of", "failures of", 1)))
	if len(process(t, e, fail(3*time.Minute, "a")).Detections) != 0 {
		t.Fatal("changed rule kept old state")
	}
}

// An event stamped far in the future does not free the state of everyone
// else: the watermark stops at the wall clock plus max_lateness.
func TestFutureEventDoesNotExpireState(t *testing.T) {
	clock := testkit.NewClock(base.Add(time.Minute))
	e := NewEngine(compileRules(t, thresholdRule), EngineOptions{Now: clock.Now})
	process(t, e, fail(0, "ann"))
	process(t, e, fail(time.Second, "ann"))
	process(t, e, ev(100*365*24*time.Hour, map[string]any{"kind": "other"}))
	e.Expire()
	if d := detOf(process(t, e, fail(2*time.Second, "ann")), "T"); d == nil || d.Count != 3 {
		t.Fatalf("third failure after a far-future event: %+v, want the threshold counting 3", d)
	}
	// The clock moving on frees the state as before.
	clock.Advance(5*time.Hour - time.Minute)
	process(t, e, ev(4*time.Hour, map[string]any{"kind": "other"}))
	e.Expire()
	if times, _, _ := e.active.Load().rules[0].state.size(); times != 0 {
		t.Fatalf("%d threshold times kept hours after their window", times)
	}
}

// A re-delivered event reads the previous value it read the first time —
// not itself, nor a value stored after it — so it is tagged again exactly
// as it was, in any order, also after a restart from a snapshot or the
// changelog (a crash between saving state and writing output re-delivers
// a batch). That holds while its value is in the key's history: within
// max_lateness of the latest value.
func TestPreviousRedeliveryReadsWhatItRead(t *testing.T) {
	withUUID := func(raw []byte, id string) []byte {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		m["uuid"] = id
		b, _ := json.Marshal(m)
		return b
	}
	logins := [][]byte{
		withUUID(login(0, "a", "Paris"), "e1"),
		withUUID(login(10*time.Minute, "a", "Rome"), "e2"),
		withUUID(login(20*time.Minute, "a", "Lima"), "e3"),
	}
	titles := func(e *Engine, order []int) []string {
		out := make([]string, len(logins))
		for _, i := range order {
			if d := detOf(process(t, e, logins[i]), "P"); d != nil {
				out[i] = d.Title + " " + d.AlertID
			}
		}
		return out
	}
	rs := compileRules(t, previousRule)
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	first := titles(e, []int{0, 1, 2})
	if first[0] != "" || !strings.HasPrefix(first[1], "a moved from Paris to Rome") || !strings.HasPrefix(first[2], "a moved from Rome to Lima") {
		t.Fatalf("first deliveries: %q", first)
	}
	changes, err := e.TakeBatchChanges()
	must(t, err)
	fromLog := restoredFromChanges(t, rs, changes)
	fromSnapshot := restoredCopy(t, e, rs)
	for _, c := range []struct {
		name  string
		e     *Engine
		order []int
	}{
		{"same engine, in order", e, []int{0, 1, 2}},
		{"same engine, newest first", e, []int{2, 1, 0}},
		{"restored from a snapshot", fromSnapshot, []int{1, 0, 2}},
		{"restored from the changelog", fromLog, []int{0, 2, 1}},
	} {
		if got := titles(c.e, c.order); !slices.Equal(got, first) {
			t.Errorf("%s: re-deliveries tagged %q, want %q", c.name, got, first)
		}
	}

	// A uuid reused at another time names another event, which reads the
	// latest value as any event does.
	if d := detOf(process(t, e, withUUID(login(30*time.Minute, "a", "Rome"), "e2")), "P"); d == nil || d.Title != "a moved from Lima to Rome" {
		t.Fatalf("another event with a re-used uuid: %+v", d)
	}

	// Past max_lateness the history is dropped: a re-delivered event then
	// reads the latest value, as any event does.
	process(t, e, withUUID(login(3*time.Hour, "a", "Oslo"), "e4"))
	if d := detOf(process(t, e, logins[1]), "P"); d == nil || d.Title != "a moved from Oslo to Rome" {
		t.Fatalf("re-delivery after the history was dropped: %+v", d)
	}
}
