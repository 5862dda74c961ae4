package detect

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// compileRules compiles rule sources given inline.
func compileRules(t testing.TB, srcs ...string) *RuleSet {
	t.Helper()
	var files []ruleFile
	for i, s := range srcs {
		files = append(files, ruleFile{path: fmt.Sprintf("rule%d.cel", i), data: []byte(s)})
	}
	rs, err := compileFiles(files, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// recorder collects rule errors.
type recorder struct {
	mu     sync.Mutex
	errors map[string][]error
}

func (r *recorder) hooks() Hooks {
	r.errors = map[string][]error{}
	return Hooks{RuleError: func(id string, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.errors[id] = append(r.errors[id], err)
	}}
}

func newTestEngine(t testing.TB, srcs ...string) (*Engine, *recorder) {
	rec := &recorder{}
	return NewEngine(compileRules(t, srcs...), EngineOptions{Hooks: rec.hooks()}), rec
}

// ev builds an event JSON with published at base+offset and extra fields.
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func ev(offset time.Duration, fields map[string]any) []byte {
	m := map[string]any{"published": base.Add(offset).Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func process(t testing.TB, e *Engine, raw []byte) Result {
	t.Helper()
	res, err := e.Process(raw)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func detOf(res Result, id string) *Detection {
	for i := range res.Detections {
		if res.Detections[i].ID == id {
			return &res.Detections[i]
		}
	}
	return nil
}
