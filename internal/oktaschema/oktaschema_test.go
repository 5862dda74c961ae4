package oktaschema

import (
	"reflect"
	"strings"
	"testing"
)

func segs(p string) []string { return strings.Split(p, ".") }

func TestPath(t *testing.T) {
	cases := []struct {
		path       []string
		ok         bool
		suggestion string
	}{
		{segs("eventType"), true, ""},
		{segs("client.geographicalContext.geolocation.lat"), true, ""},
		{[]string{"target", "[]", "alternateId"}, true, ""},
		{[]string{"target", "0", "alternateId"}, true, ""},
		{segs("target.alternateId"), true, ""}, // index left out
		{[]string{"request", "ipChain", "*", "ipDetails", "asOrg"}, true, ""},
		{segs("debugContext.debugData.behaviors"), true, ""},
		{segs("debugContext.debugData.logOnlySecurityData.risk.level"), true, ""},
		{segs("target.detailEntry.methodTypeUsed"), true, ""},
		{segs("transaction.detail.requestApiTokenId"), true, ""},
		{segs("device.name"), true, ""},
		{segs("authenticationContext.rootSessionId"), true, ""},
		{segs("oktadetect.org"), true, ""},
		{segs("securityContext.isProxy"), true, ""},
		{segs("eventTyp"), false, "eventType"},
		{segs("debugcontext.debugData.x"), false, "debugContext.debugData.x"},
		{segs("client.geographicalContext.contry"), false, "client.geographicalContext.country"},
		{segs("actr.alternatId"), false, "actor.alternateId"},
		{segs("target.displayNam"), false, "target[].displayName"},
		{segs("outcome.result.code"), false, ""}, // below a string
		{[]string{"actor", "0"}, false, ""},      // actor is no list
		{segs("p_log_type"), false, ""},
		{segs("completelyUnrelated"), false, ""},
	}
	for _, c := range cases {
		ok, sugg := Path(c.path)
		if ok != c.ok || sugg != c.suggestion {
			t.Errorf("Path(%q) = %v, %q; want %v, %q", c.path, ok, sugg, c.ok, c.suggestion)
		}
	}
}

func TestType(t *testing.T) {
	for p, want := range map[string]string{
		"published": "timestamp", "target": "list", "securityContext.asNumber": "number",
		"securityContext.isProxy": "bool", "debugContext.debugData": "map", "actor": "object",
		"debugContext.debugData.anything": "map",
	} {
		if got, ok := Type(segs(p)); !ok || got != want {
			t.Errorf("Type(%s) = %q, %v; want %q", p, got, ok, want)
		}
	}
	if _, ok := Type(segs("nope")); ok {
		t.Error("Type of an unknown path")
	}
}

func TestEventTypes(t *testing.T) {
	for _, n := range []string{"user.session.start", "user.risk.detect", "system.log_stream.lifecycle.deactivate",
		"user.authentication.auth_via_mfa", "security.threat.detected"} {
		if !EventType(n) {
			t.Errorf("%s not in the catalogue", n)
		}
	}
	if EventType("user.sesion.start") || EventType("") {
		t.Error("unknown event type accepted")
	}
	info, ok := LookupEventType("app.audit_report.download")
	if !ok || info.RetiredAfter == "" {
		t.Errorf("retired event type: %+v %v", info, ok)
	}
	info, ok = LookupEventType("user.session.start")
	if !ok || info.RetiredAfter != "" || info.Category == "" {
		t.Errorf("current event type: %+v", info)
	}
	if n := len(EventTypes()); n < 1300 {
		t.Errorf("only %d event types", n)
	}
	if !LegacyEventType("core.user_auth.login_failed") || LegacyEventType("user.session.start") {
		t.Error("legacy event types")
	}
}

func TestSuggestEventType(t *testing.T) {
	cases := map[string][]string{
		"user.sesion.start":                {"user.session.start"},
		"User.Session.Start":               {"user.session.start"},
		"user.mfa.okta_verify.deny_pushes": {"user.mfa.okta_verify.deny_push"},
		"user.session.start":               nil,
		"nothing.like.this.at.all.really":  nil,
	}
	for in, want := range cases {
		if got := SuggestEventType(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SuggestEventType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDataFilesParse(t *testing.T) {
	if _, err := parsePaths(pathsData); err != nil {
		t.Fatal(err)
	}
	if _, err := parsePaths("a.b string\n"); err == nil {
		t.Error("a path whose parent is undeclared was accepted")
	}
	if _, err := parsePaths("a strnig\n"); err == nil {
		t.Error("an unknown type was accepted")
	}
}

func TestVocabularyPrefix(t *testing.T) {
	v := Vocabulary{}
	for prefix, want := range map[string]bool{"user.session.": true, "user.authentication.": true, "user.sesion.": false, "": true} {
		if got := v.EventTypePrefix(prefix); got != want {
			t.Errorf("EventTypePrefix(%q) = %v, want %v", prefix, got, want)
		}
	}
}
