package detect

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// A rule with a typo in a field name errors on every event: its first error
// is logged at WARN with the rule's file and the event's uuid, then at most
// one line a minute says how many were left out meanwhile.
func TestRuleErrorsLoggedAtWarnOncePerMinute(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "typo.cel", "// id: Local.Typo\nevent.eventTyp == 'user.session.start'\n")
	logs := &testkit.Buffer{}
	log := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	conf, err := ConfigSpec().ParseYAML("rules: ["+dir+"]\nwatch: false", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProcessorFromConfig(conf, service.MockResources(service.MockResourcesOptUseLogger(log)), testProduct)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	clock := testkit.NewClock(time.Now())
	p.errLog.now = clock.Now
	send := func(uuid string) {
		raw := `{"uuid":"` + uuid + `","published":"2024-05-01T12:00:00Z","eventType":"user.session.start"}`
		if _, err := p.ProcessBatch(context.Background(), service.MessageBatch{service.NewMessage([]byte(raw))}); err != nil {
			t.Fatal(err)
		}
	}
	send("u1")
	send("u2")
	send("u3")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "typo.cel") ||
		!strings.Contains(lines[0], "u1") || !strings.Contains(lines[0], "Local.Typo") || !strings.Contains(lines[0], "eventTyp") {
		t.Fatalf("after 3 failing events, want one WARN line naming the rule, its file, the first uuid and the error:\n%s", logs.String())
	}
	clock.Advance(61 * time.Second)
	send("u4")
	lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "u4") || !strings.Contains(lines[1], "errors_not_logged=2") {
		t.Fatalf("a minute later, want a second line for u4 counting the 2 left out:\n%s", logs.String())
	}
}
