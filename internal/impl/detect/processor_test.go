package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	// The stream test needs core components (the none tracer, …).
	"github.com/google/cel-go/cel"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/detect/oktalib"
	"github.com/oktadetect/oktadetect/internal/meta"
	"github.com/oktadetect/oktadetect/rules"
)

func newTestProcessor(t *testing.T, yaml string) *processor {
	t.Helper()
	conf, err := ConfigSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessorFromConfig(conf, service.MockResources(), testProduct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func processMsg(t *testing.T, p *processor, raw []byte) *service.Message {
	t.Helper()
	batches, err := p.ProcessBatch(context.Background(), service.MessageBatch{service.NewMessage(raw)})
	if err != nil || len(batches) != 1 || len(batches[0]) != 1 {
		t.Fatalf("batches %v, err %v", batches, err)
	}
	return batches[0][0]
}

// testProduct is what plugin/plugin.go hands cel_detect: the embedded pack
// and the okta library.
var testProduct = func() Product {
	lists, err := rules.Lists()
	if err != nil {
		panic(err)
	}
	return Product{Pack: rules.FS, PackRoot: rules.Root, Libraries: []cel.Library{oktalib.Okta()}, Lists: lists}
}()

// cel_detect and detections_to_alerts in Benthos' global environment, for
// the stream tests (the binary registers them in plugin/plugin.go).
func init() {
	if err := Register(service.GlobalEnvironment(), testProduct); err != nil {
		panic(err)
	}
}

// memoryEngine is the engine of a processor without a changelog.
func memoryEngine(t *testing.T, p *processor) *detect.Engine {
	t.Helper()
	switch d := p.state.(type) {
	case *memoryDetector:
		return d.engine
	case *snapshotDetector:
		return d.engine
	}
	t.Fatalf("processor keeps state in a %T", p.state)
	return nil
}

var ev = detecttest.Event

func TestProcessorEmbeddedPack(t *testing.T) {
	p := newTestProcessor(t, `{}`)
	raw := []byte(`{"published":"2021-01-08T21:28:34.875Z","eventType":"system.api_token.create","outcome":{"result":"SUCCESS"}}`)
	msg := processMsg(t, p, raw)
	ids, _ := msg.MetaGet(meta.DetectionIDs)
	body, _ := msg.AsBytes()
	if ids != "Okta.APIKeyCreated" || !strings.Contains(string(body), `"detections":[{"id":"Okta.APIKeyCreated"`) {
		t.Fatalf("ids %q body %s", ids, body)
	}
	plain := []byte(`{"published":"2021-01-08T21:28:34.875Z","eventType":"user.session.end"}`)
	msg = processMsg(t, p, plain)
	ids, ok := msg.MetaGet(meta.DetectionIDs)
	body, _ = msg.AsBytes()
	if !ok || ids != "" || string(body) != string(plain) {
		t.Fatalf("unmatched event: ids %q body %s", ids, body)
	}
	msg = processMsg(t, p, []byte("garbage"))
	if body, _ := msg.AsBytes(); string(body) != "garbage" {
		t.Fatal("malformed message not passed on")
	}
}

func TestProcessorBadRuleStopsStartup(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.cel"), []byte("// id: B\nevent.a ==\n"), 0o600)
	conf, _ := ConfigSpec().ParseYAML("rules: ["+dir+"]", nil)
	_, err := newProcessorFromConfig(conf, service.MockResources(), testProduct)
	if err == nil || !strings.Contains(err.Error(), "bad.cel:3:1") {
		t.Fatalf("got %v", err)
	}
}

func TestProcessorStateFileAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	conf := "state_file: " + state
	failLogin := func(i int) []byte {
		return ev(time.Duration(i)*time.Minute, map[string]any{
			"eventType": "user.session.start",
			"actor":     map[string]any{"alternateId": "eve@acme.io"},
			"outcome":   map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
		})
	}
	p := newTestProcessor(t, conf)
	for i := range 3 {
		processMsg(t, p, failLogin(i))
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p = newTestProcessor(t, conf)
	processMsg(t, p, failLogin(3))
	ids, _ := processMsg(t, p, failLogin(4)).MetaGet(meta.DetectionIDs)
	if ids != "Okta.BruteForceLogins" {
		t.Fatalf("brute force forgotten over a restart: %q", ids)
	}
}

func TestProcessorCorruptStateFileIgnored(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(state, []byte("{oops"), 0o600)
	newTestProcessor(t, "state_file: "+state)
}

func TestProcessorInStream(t *testing.T) {
	b := service.NewStreamBuilder()
	produce, err := b.AddProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddProcessorYAML("cel_detect: {}"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	if err := b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		ids, _ := m.MetaGet(meta.DetectionIDs)
		mu.Lock()
		got = append(got, ids)
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()
	for _, raw := range []string{
		`{"published":"2021-01-08T21:28:34.875Z","eventType":"system.api_token.revoke","outcome":{"result":"SUCCESS"}}`,
		`{"published":"2021-01-08T21:28:34.875Z","eventType":"user.session.end"}`,
	} {
		if err := produce(ctx, service.NewMessage([]byte(raw))); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if strings.Join(got, "|") != "Okta.APIKeyRevoked|" {
		t.Fatalf("got %q", got)
	}
}

// A crash (no Close, no snapshot) after a batch left the processor loses
// none of its state: the journal beside the state file holds it.
func TestProcessorStateFileAcrossCrash(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	conf := "state_file: " + state + "\nsnapshot_interval: 1h"
	failLogin := func(i int) []byte {
		return ev(time.Duration(i)*time.Minute, map[string]any{
			"uuid":      "u" + string(rune('a'+i)),
			"eventType": "user.session.start",
			"actor":     map[string]any{"alternateId": "eve@acme.io"},
			"outcome":   map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
		})
	}
	crashed := newTestProcessor(t, conf)
	for i := range 4 {
		processMsg(t, crashed, failLogin(i))
	}
	crashed.stop() // the snapshot loop ends; nothing is written on the way out
	p := newTestProcessor(t, conf)
	ids, _ := processMsg(t, p, failLogin(4)).MetaGet(meta.DetectionIDs)
	if ids != "Okta.BruteForceLogins" {
		t.Fatalf("fifth failure after a crash: detection_ids %q, want the brute force the 4 journaled failures and it make", ids)
	}
}
