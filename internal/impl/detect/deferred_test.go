package detect

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// An absence is emitted as a new message after the event whose time made
// it due (an event of its org): the opening event with the absence's
// detection, the opening event's org, detection_deferred = true.
func TestProcessorEmitsDeferredAbsence(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "absence.cel", detecttest.AbsenceRule)
	p := newTestProcessor(t, "rules: ["+dir+"]")
	msg := func(raw []byte, org, uuid string) *service.Message {
		m := service.NewMessage(raw)
		m.MetaSetMut(meta.OktaOrg, org)
		m.MetaSetMut(meta.OktaUUID, uuid)
		return m
	}
	opening := detecttest.Of(0, "s1", "start", "ann", nil)
	batches, err := p.ProcessBatch(context.Background(), service.MessageBatch{
		msg(opening, "a.okta.com", "s1"),
		msg(detecttest.Of(time.Hour, "t1", "tick", "zed", nil), "a.okta.com", "t1"),
		msg(detecttest.Of(time.Hour, "t2", "tick", "zed", nil), "a.okta.com", "t2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := batches[0]
	if len(out) != 4 {
		t.Fatalf("%d messages, want the 3 events and the absence after the second", len(out))
	}
	d := out[2]
	body, _ := d.AsBytes()
	if !strings.HasPrefix(string(body), string(opening[:len(opening)-1])) || !strings.Contains(string(body), `"title":"ann never finished"`) {
		t.Fatalf("deferred message %s", body)
	}
	for key, want := range map[string]string{meta.DetectionDeferred: "true", meta.DetectionIDs: "AB", meta.OktaOrg: "a.okta.com"} {
		if v, _ := d.MetaGet(key); v != want {
			t.Errorf("deferred message: %s = %q, want %q", key, v, want)
		}
	}
	if v, ok := d.MetaGet(meta.OktaUUID); ok {
		t.Errorf("deferred message keeps okta_uuid %q of the event that made it due", v)
	}
	for _, i := range []int{0, 1, 3} {
		if v, ok := out[i].MetaGet(meta.DetectionDeferred); ok {
			t.Errorf("event %d has detection_deferred %q", i, v)
		}
	}

	// detections_to_alerts writes it as an alert only.
	alerts, err := newTestAlertsProcessor(t).Process(context.Background(), d)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("%d messages from the deferred one (%v), want its alert only", len(alerts), err)
	}
	if topic, _ := alerts[0].MetaGet("kafka_topic"); topic != "al" {
		t.Errorf("routed to %q", topic)
	}
}

// An expectation opened by an event without an org is due by the newest
// time of any org; the message is still the opening event's: it carries no
// org, not the one of the event that made it due.
func TestDeferredAbsenceKeepsNoOrgOfItsTrigger(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "absence.cel", detecttest.AbsenceRule)
	p := newTestProcessor(t, "rules: ["+dir+"]")
	trigger := service.NewMessage(detecttest.Of(time.Hour, "t1", "tick", "zed", nil))
	trigger.MetaSetMut(meta.OktaOrg, "b.okta.com")
	batches, err := p.ProcessBatch(context.Background(), service.MessageBatch{
		service.NewMessage(detecttest.Of(0, "s1", "start", "ann", nil)), trigger,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := batches[0]
	if len(out) != 3 {
		t.Fatalf("%d messages, want the 2 events and the absence", len(out))
	}
	if v, _ := out[2].MetaGet(meta.DetectionDeferred); v != "true" {
		t.Fatal("third message is not the absence")
	}
	if v, ok := out[2].MetaGet(meta.OktaOrg); ok {
		t.Errorf("the absence of an event without an org carries okta_org %q, its trigger's", v)
	}
}

// With partitioned state the absence is emitted after its record and again
// when the record's batch is re-delivered.
func TestPartitionedStateDeferredAbsence(t *testing.T) {
	cl := newTestChangelog(t)
	rs := compileRules(t, detecttest.AbsenceRule)
	w := newTestWorker(t, cl, rs)
	batch := func() service.MessageBatch {
		return sourceBatch(1, 0, [][]byte{detecttest.Of(0, "s1", "start", "ann", nil), detecttest.Of(time.Hour, "t1", "tick", "zed", nil)})
	}
	for run := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := w.processBatch(ctx, batch())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 3 {
			t.Fatalf("run %d: %d messages, want 2 events and the absence", run, len(out))
		}
		if v, _ := out[2].MetaGet(meta.DetectionDeferred); v != "true" {
			t.Fatalf("run %d: third message is not the absence", run)
		}
	}
}
