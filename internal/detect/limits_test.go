package detect

import (
	"strings"
	"testing"
	"time"
)

// A runaway rule (cubic work over an attacker-sized array in the event) is
// stopped by cel_detect's default cost_limit: the evaluation ends quickly with
// a cost error, the event is passed on untouched, and other rules still run.
func TestRunawayExpressionStoppedByDefaultCostLimit(t *testing.T) {
	rs, err := compileFiles([]ruleFile{
		{path: "runaway.cel", data: []byte("// id: Runaway\nevent.items.all(a, event.items.all(b, event.items.all(c, a + b + c >= 0)))\n")},
		{path: "ok.cel", data: []byte("// id: Fine\nevent.kind == \"x\"\n")},
	}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e := NewEngine(rs, EngineOptions{Hooks: rec.hooks()})
	items := strings.TrimSuffix(strings.Repeat("1,", 1000), ",")
	raw := []byte(`{"published":"2024-05-01T12:00:00Z","kind":"x","items":[` + items + `]}`)
	start := time.Now()
	res, err := e.Process(raw)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// 1000³ = 10⁹ steps unbounded; the limit stops it after ~10⁶.
	if took > 20*time.Second {
		t.Fatalf("evaluation took %v: the cost limit did not stop it", took)
	}
	if len(rec.errors["Runaway"]) != 1 || !strings.Contains(rec.errors["Runaway"][0].Error(), "cost") {
		t.Fatalf("runaway rule errors: %v", rec.errors)
	}
	if len(res.Detections) != 1 || res.Detections[0].ID != "Fine" {
		t.Fatalf("detections %+v, want only Fine", res.Detections)
	}
	t.Logf("runaway expression stopped after %v", took.Round(time.Millisecond))
}
