package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/detecttest"
	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/meta"
)

func newTestRouter(t *testing.T, yaml string) *routeProcessor {
	t.Helper()
	conf, err := routeSpec().ParseYAML(yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newRouteProcessor(conf, service.MockResources(), testProduct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// routeIn routes raw as an event of org.
func routeIn(t *testing.T, p *routeProcessor, raw []byte, org string) service.MessageBatch {
	t.Helper()
	msg := service.NewMessage(raw)
	msg.MetaSetMut(meta.OktaOrg, org)
	out, err := p.Process(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// One message per rule and state key, with the event's bytes and metadata;
// keys differ by org; what is not JSON is dropped.
func TestRouteWritesOneMessagePerRuleAndKey(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{"t.cel": thresholdRule, "d.cel": dedupRule, "p.cel": previousRule} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := newTestRouter(t, "rules: [ "+dir+" ]\nwatch: false")
	route := func(raw []byte, org string) service.MessageBatch {
		t.Helper()
		out := routeIn(t, p, raw, org)
		for _, m := range out {
			if body, _ := m.AsBytes(); string(body) != string(raw) {
				t.Errorf("routed bytes %s, want the event's %s", body, raw)
			}
			if o, _ := m.MetaGet(meta.OktaOrg); o != org {
				t.Errorf("okta_org %q, want %q", o, org)
			}
		}
		return out
	}
	keys := func(b service.MessageBatch) map[string]string {
		out := map[string]string{}
		for _, m := range b {
			rule, _ := m.MetaGet(meta.DetectRule)
			key, _ := m.MetaGet(meta.DetectRouteKey)
			out[rule] = key
		}
		return out
	}

	// A failure: the threshold's group only; the login rules neither match
	// nor remember it (P's condition and previous.when both need a login).
	a := keys(route(fail(0, "ann"), "a.okta.com"))
	if len(a) != 1 || !strings.HasPrefix(a["T"], "T\x00") {
		t.Errorf("a failure went to %q, want T only", a)
	}
	// A login: the dedup rule by its key, the remembering rule by its key.
	l := keys(route(login(0, "ann", "Paris"), "a.okta.com"))
	if len(l) != 2 || !strings.HasPrefix(l["D"], "D\x00") || !strings.HasPrefix(l["P"], "P\x00") {
		t.Errorf("a login went to %q, want D and P", l)
	}
	if l2 := keys(route(login(time.Hour, "ann", "Lima"), "a.okta.com")); l2["P"] != l["P"] {
		t.Errorf("ann's logins have previous keys %q and %q, want one", l["P"], l2["P"])
	}
	b := keys(route(fail(0, "ann"), "b.okta.com"))
	if b["T"] == a["T"] {
		t.Errorf("ann's failures in two orgs share the key %q", a["T"])
	}
	if out := route([]byte("not json"), "a.okta.com"); len(out) != 0 {
		t.Errorf("a message that is not JSON gave %d messages", len(out))
	}
}

// A record of the repartition topic is evaluated for its rule only: the
// login routed for D is not seen by P, so P remembers nothing of it.
func TestPartitionedDetectorEvaluatesTheRoutedRule(t *testing.T) {
	cl := newTestChangelog(t)
	w := newTestWorker(t, cl, compileRules(t, dedupRule, previousRule))
	b := sourceBatch(1, 0, [][]byte{login(0, "ann", "Paris"), login(time.Hour, "ann", "Tokyo"), login(2*time.Hour, "ann", "Lima")})
	b[0].MetaSetMut(meta.DetectRule, "P")
	b[1].MetaSetMut(meta.DetectRule, "D")
	b[2].MetaSetMut(meta.DetectRule, "P")
	got := mustProcess(t, w, b)
	if got[0].ids != "" || got[1].ids != "D" || got[2].ids != "P" {
		t.Errorf("tags %+v, want none, D, then P (Lima after Paris: Tokyo went to D only)", got)
	}
	if !strings.Contains(got[2].body, "moved from Paris to Lima") {
		t.Errorf("P compared Lima with %s, want Paris", got[2].body)
	}
}

// With watermark_partitions, an event that moves its org's time into a new
// minute is followed by one watermark message per partition: the event's
// time and metadata, the reserved rule, a key landing in that partition.
func TestRouteWritesWatermarks(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "t.cel", thresholdRule)
	p := newTestRouter(t, "rules: [ "+dir+" ]\nwatch: false\nwatermark_partitions: 3")
	want := kafkax.KeysForEachPartition(detect.WatermarkRule+"\x00", 3)
	route := func(raw []byte, org string) (routes, watermarks service.MessageBatch) {
		t.Helper()
		for _, m := range routeIn(t, p, raw, org) {
			if rule, _ := m.MetaGet(meta.DetectRule); rule == detect.WatermarkRule {
				watermarks = append(watermarks, m)
			} else if len(watermarks) > 0 {
				t.Fatal("a route after the watermarks: a partition would see the event's time before the event")
			} else {
				routes = append(routes, m)
			}
		}
		return routes, watermarks
	}
	routes, wms := route(fail(0, "ann"), "a.okta.com")
	if len(routes) != 1 || len(wms) != 3 {
		t.Fatalf("%d routes and %d watermarks, want 1 and one per partition", len(routes), len(wms))
	}
	for i, m := range wms {
		body, _ := m.AsBytes()
		key, _ := m.MetaGet(meta.DetectRouteKey)
		org, _ := m.MetaGet(meta.OktaOrg)
		if string(body) != `{"published":"`+detecttest.Base.Format(time.RFC3339Nano)+`"}` || key != string(want[i]) || org != "a.okta.com" {
			t.Errorf("watermark %d: body %s, key %q, org %q", i, body, key, org)
		}
	}
	if _, wms := route(fail(30*time.Second, "bob"), "a.okta.com"); len(wms) != 0 {
		t.Errorf("%d watermarks within the same minute", len(wms))
	}
	if _, wms := route(fail(30*time.Second, "bob"), "b.okta.com"); len(wms) != 3 {
		t.Errorf("another org's first event: %d watermarks", len(wms))
	}
	// An event no rule concerns still moves time.
	if routes, wms := route(login(2*time.Minute, "ann", "Paris"), "a.okta.com"); len(routes) != 0 || len(wms) != 3 {
		t.Errorf("an event of no rule at a new minute: %d routes, %d watermarks", len(routes), len(wms))
	}

	conf, err := routeSpec().ParseYAML("watermark_partitions: -1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newRouteProcessor(conf, service.MockResources(), testProduct); err == nil || !strings.Contains(err.Error(), "watermark_partitions") {
		t.Errorf("a negative watermark_partitions: %v", err)
	}
}

// A worker evaluates no rule on a watermark record, and its absences fire
// by the time it carries.
func TestPartitionedDetectorFiresAbsencesOnWatermarks(t *testing.T) {
	cl := newTestChangelog(t)
	w := newTestWorker(t, cl, compileRules(t, detecttest.AbsenceRule, thresholdRule))
	b := sourceBatch(1, 0, [][]byte{detecttest.Of(0, "s1", "start", "ann", nil), []byte(`{"published":"` + detecttest.Base.Add(time.Hour).Format(time.RFC3339Nano) + `"}`)})
	b[0].MetaSetMut(meta.DetectRule, "AB")
	b[1].MetaSetMut(meta.DetectRule, detect.WatermarkRule)
	var events, watermarks int
	w.counted = func(e, wm int) { events, watermarks = events+e, watermarks+wm }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := w.processBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if events != 1 || watermarks != 1 {
		t.Errorf("counted %d events and %d watermarks, want 1 of each (cel_detect_events_total counts events only)", events, watermarks)
	}
	if len(out) != 3 {
		t.Fatalf("%d messages, want the start, the watermark and the absence", len(out))
	}
	if ids, _ := out[1].MetaGet(meta.DetectionIDs); ids != "" {
		t.Errorf("the watermark record was tagged %q", ids)
	}
	if v, _ := out[2].MetaGet(meta.DetectionDeferred); v != "true" {
		t.Error("no absence after the watermark")
	}
}
