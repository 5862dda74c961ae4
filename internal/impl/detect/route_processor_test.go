package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

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
		msg := service.NewMessage(raw)
		msg.MetaSetMut(meta.OktaOrg, org)
		out, err := p.Process(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
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
