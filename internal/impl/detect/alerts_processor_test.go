package detect

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func newTestAlertsProcessor(t *testing.T) *alertsProcessor {
	t.Helper()
	conf, err := detectionsToAlertsSpec().ParseYAML("events_topic: ev\nalerts_topic: al\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newAlertsProcessor(conf)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC) }
	return p
}

func TestDetectionsToAlerts(t *testing.T) {
	p := newTestAlertsProcessor(t)
	// Odd spacing and key order must survive byte for byte.
	event := `{ "uuid":"u-1",  "published" : "2026-01-01T00:00:00.000Z","n":[1, 2]`
	tagged := event + `,"detections":[{"id":"R1","alert_id":"a1"},{"id":"R2","alert_id":"a2","count":3}]}`
	msg := service.NewMessage([]byte(tagged))
	msg.MetaSetMut("okta_org", "acme")
	out, err := p.Process(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d messages, want the event and 2 alerts", len(out))
	}
	if b, _ := out[0].AsBytes(); string(b) != tagged {
		t.Errorf("event changed:\n%s", b)
	}
	wantMeta := func(m *service.Message, topic, key string) {
		t.Helper()
		if v, _ := m.MetaGet("kafka_topic"); v != topic {
			t.Errorf("topic %q, want %q", v, topic)
		}
		if v, _ := m.MetaGet("kafka_key"); v != key {
			t.Errorf("key %q, want %q", v, key)
		}
		if v, _ := m.MetaGet("okta_org"); v != "acme" {
			t.Errorf("metadata not kept: okta_org %q", v)
		}
	}
	wantMeta(out[0], "ev", "u-1")
	wantMeta(out[1], "al", "a1")
	wantMeta(out[2], "al", "a2")
	for i, want := range []string{
		`{"id":"R1","alert_id":"a1","detected_at":"2026-01-01T00:00:01Z","event":` + event + `}}`,
		`{"id":"R2","alert_id":"a2","count":3,"detected_at":"2026-01-01T00:00:01Z","event":` + event + `}}`,
	} {
		b, _ := out[i+1].AsBytes()
		if string(b) != want {
			t.Errorf("alert %d:\n got %s\nwant %s", i, b, want)
		}
		if !json.Valid(b) {
			t.Errorf("alert %d is not JSON", i)
		}
	}
}

func TestDetectionsToAlertsPassesOthers(t *testing.T) {
	p := newTestAlertsProcessor(t)
	for _, body := range []string{`{"uuid":"u"}`, `[1,2]`, `not json`, `{"detections":[]}`, ``} {
		out, err := p.Process(context.Background(), service.NewMessage([]byte(body)))
		if err != nil || len(out) != 1 {
			t.Fatalf("%q: %d messages, %v", body, len(out), err)
		}
		if b, _ := out[0].AsBytes(); string(b) != body {
			t.Errorf("%q changed to %q", body, b)
		}
	}
}

// An alert carries the rule that matched, as cel_detect loaded it: what an
// analyst needs (description, ATT&CK ids, runbook) and the rule's version.
func TestAlertsCarryTheRule(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "r.cel", `// id: Local.Grant
// title: "grant to {{ event.user }}"
// severity: HIGH
// description: An admin role was granted.
// mitre: ["TA0004:T1098"]
// references: ["https://example.com/grants"]
// runbook: Check the ticket; revoke if none.
// author: Ann
// license: Apache-2.0
// tags: [admin]
event.kind == 'grant'
`)
	p := newTestProcessor(t, "rules: ["+dir+"]")
	tagged := processMsg(t, p, []byte(`{"uuid":"u1","published":"2026-01-01T00:00:00Z","kind":"grant","user":"bob"}`))
	alerts, err := newTestAlertsProcessor(t).Process(context.Background(), tagged)
	if err != nil || len(alerts) != 2 {
		t.Fatalf("%d messages, %v", len(alerts), err)
	}
	b, _ := alerts[1].AsBytes()
	var alert struct {
		ID, Title, Severity, AlertID string
		DetectedAt                   string `json:"detected_at"`
		Rule                         struct {
			ID, Title, Description, Severity, Runbook, License, Status, Version string
			Mitre, References, Author, Tags                                     []string
		}
		Event map[string]any
	}
	if err := json.Unmarshal(b, &alert); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	r := alert.Rule
	if alert.ID != "Local.Grant" || alert.Title != "grant to bob" || alert.DetectedAt != "2026-01-01T00:00:01Z" ||
		r.ID != "Local.Grant" || r.Title != "grant to {{ event.user }}" || r.Severity != "HIGH" ||
		r.Description != "An admin role was granted." || r.Runbook != "Check the ticket; revoke if none." ||
		r.License != "Apache-2.0" || len(r.Version) != 16 || len(r.Mitre) != 1 || r.Mitre[0] != "TA0004:T1098" ||
		len(r.Author) != 1 || r.Author[0] != "Ann" || len(r.Tags) != 1 || alert.Event["user"] != "bob" {
		t.Fatalf("alert: %s", b)
	}
}

// emit_events: false leaves the events out: a worker writing alerts only.
func TestDetectionsToAlertsAlertsOnly(t *testing.T) {
	conf, err := detectionsToAlertsSpec().ParseYAML("emit_events: false", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newAlertsProcessor(conf)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]int{
		`{"uuid":"u","detections":[{"id":"R","alert_id":"a"}]}`: 1,
		`{"uuid":"u"}`: 0,
	} {
		out, err := p.Process(context.Background(), service.NewMessage([]byte(raw)))
		if err != nil || len(out) != want {
			t.Errorf("%s: %d messages (%v), want %d", raw, len(out), err, want)
		}
	}
}
