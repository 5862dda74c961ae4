package detect

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/rules"

	"github.com/google/cel-go/cel"

	"github.com/oktadetect/oktadetect/internal/detect/oktalib"

	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// oktaLibs are the libraries the binary hands the engine (plugin/plugin.go),
// and packTuning the pack's default lists.
var (
	oktaLibs   = []cel.Library{oktalib.Okta()}
	packTuning = Tuning{Lists: packLists()}
)

func packLists() map[string][]string {
	lists, err := rules.Lists()
	if err != nil {
		panic(err)
	}
	return lists
}

// compileRules compiles rule sources given inline.
func compileRules(t testing.TB, srcs ...string) *RuleSet {
	t.Helper()
	var files []ruleFile
	for i, s := range srcs {
		files = append(files, ruleFile{path: fmt.Sprintf("rule%d.cel", i), data: []byte(s)})
	}
	rs, err := compileFiles(files, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
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
var (
	base = detecttest.Base
	ev   = detecttest.Event
)

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

// testStreams are the event streams the equivalence tests run: each of the
// simulator's scenarios, then optionally a 3,000-event corpus with the
// attacks mixed in, and the peer cases' events.
func testStreams(t *testing.T, withCorpus, withPeers bool) [][][]byte {
	t.Helper()
	var streams [][][]byte
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, name := range oktasim.ScenarioNames() {
		tl, err := oktasim.Scenario(name, oktasim.NewGenerator(7), start)
		if err != nil {
			t.Fatal(err)
		}
		var evs [][]byte
		for _, e := range tl {
			evs = append(evs, e.Event.JSON())
		}
		streams = append(streams, evs)
	}
	if withCorpus {
		streams = append(streams, corpus.Events(3000))
	}
	if withPeers {
		data, err := os.ReadFile("testdata/peer-cases/panther-okta-tests.okta-shaped.json")
		if err != nil {
			t.Fatal(err)
		}
		var cases []peerCase
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatal(err)
		}
		var peer [][]byte
		for _, c := range cases {
			peer = append(peer, c.Event)
		}
		streams = append(streams, peer)
	}
	return streams
}

// restoredFromChanges is a fresh engine of rs restored from a state log
// (changes in order), as state_topic restores one at start.
func restoredFromChanges(t testing.TB, rs *RuleSet, changes []Change) *Engine {
	t.Helper()
	e := NewEngine(rs, EngineOptions{TrackChanges: true})
	r, err := NewStateRestore(e)
	must(t, err)
	for _, c := range changes {
		must(t, r.Apply(c.Key, c.Value))
	}
	_, err = r.Finish()
	must(t, err)
	return e
}
