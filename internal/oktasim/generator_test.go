package oktasim

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestGeneratorIsDeterministic(t *testing.T) {
	build := func(seed int64) []byte {
		g := NewGenerator(seed)
		var b bytes.Buffer
		for _, e := range g.Backlog(200, t0, time.Second) {
			b.Write(e.JSON())
		}
		tl, err := Scenario("full", g, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tl {
			b.Write(e.Event.JSON())
		}
		return b.Bytes()
	}
	if !bytes.Equal(build(42), build(42)) {
		t.Error("same seed, different events")
	}
	if bytes.Equal(build(42), build(43)) {
		t.Error("different seeds, same events")
	}
}

var publishedRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// allGenerated is one of every kind of event the generator makes.
func allGenerated(t *testing.T) []LogEvent {
	g := NewGenerator(9)
	events := g.Backlog(500, t0, time.Second)
	events = append(events, g.BruteForce("x@"+OrgDomain, "185.220.1.1", t0, 3)...)
	events = append(events, g.ImpossibleTravel("y@"+OrgDomain, t0)...)
	events = append(events, g.PushBombing("z@"+OrgDomain, t0, 3)...)
	events = append(events,
		g.AdminRoleAssigned(DemoAdmin, "y@"+OrgDomain, t0), g.APITokenCreated(DemoAdmin, t0), g.APITokenRevoked(DemoAdmin, t0),
		g.MFAReset(DemoAdmin, "y@"+OrgDomain, t0), g.MFAFactorDeactivated(DemoAdmin, "y@"+OrgDomain, t0),
		g.AccountLocked("x@"+OrgDomain, "185.220.1.1", t0), g.UnauthorizedAppAccess("y@"+OrgDomain, t0),
		g.ZoneDeactivated(DemoAdmin, t0), g.PolicyUpdated(DemoAdmin, t0), g.SessionEnd("y@"+OrgDomain, t0),
		g.UserCreated(DemoAdmin, "new@"+OrgDomain, t0), g.GroupMembershipAdded(DemoAdmin, "y@"+OrgDomain, t0),
	)
	return events
}

// path digs a dotted path out of a decoded event.
func path(v any, p string) (any, bool) {
	for _, k := range strings.Split(p, ".") {
		switch t := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = t[k]; !ok {
				return nil, false
			}
		case []any:
			if len(t) == 0 {
				return nil, false
			}
			v = t[0]
			if m, ok := v.(map[string]any); ok {
				if v, ok = m[k]; !ok {
					return nil, false
				}
			}
		default:
			return nil, false
		}
	}
	return v, true
}

func TestGeneratedEventsHaveOktaShape(t *testing.T) {
	nonEmpty := []string{
		"uuid", "published", "eventType", "version", "severity", "displayMessage",
		"actor.id", "actor.type", "actor.alternateId", "actor.displayName",
		"client.userAgent.rawUserAgent", "client.userAgent.os", "client.userAgent.browser", "client.zone", "client.device",
		"client.ipAddress", "client.geographicalContext.city", "client.geographicalContext.country",
		"authenticationContext.externalSessionId", "outcome.result",
		"transaction.type", "transaction.id", "debugContext.debugData.requestId", "debugContext.debugData.requestUri",
		"securityContext.asOrg", "securityContext.isp", "securityContext.domain",
		"request.ipChain.ip", "request.ipChain.version", "request.ipChain.geographicalContext.city",
	}
	present := []string{ // Okta sends these keys even when null
		"device", "target", "client.id", "outcome.reason", "actor.detailEntry", "legacyEventType",
		"authenticationContext.authenticationProvider", "authenticationContext.credentialType",
		"authenticationContext.issuer", "authenticationContext.interface", "authenticationContext.authenticationStep",
		"client.geographicalContext.geolocation.lat", "client.geographicalContext.geolocation.lon",
		"securityContext.asNumber", "securityContext.isProxy", "request.ipChain.source",
		"client.geographicalContext.postalCode", "client.geographicalContext.state",
	}
	types := map[string]bool{}
	uuids := map[string]bool{}
	for _, e := range allGenerated(t) {
		var doc map[string]any
		if err := json.Unmarshal(e.JSON(), &doc); err != nil {
			t.Fatal(err)
		}
		types[e.EventType] = true
		if uuids[e.UUID] {
			t.Errorf("duplicate uuid %s", e.UUID)
		}
		uuids[e.UUID] = true
		for _, p := range nonEmpty {
			if v, ok := path(doc, p); !ok || v == nil || v == "" {
				t.Errorf("%s: %s missing or empty", e.EventType, p)
			}
		}
		for _, p := range present {
			if _, ok := path(doc, p); !ok {
				t.Errorf("%s: key %s absent", e.EventType, p)
			}
		}
		if !publishedRE.MatchString(doc["published"].(string)) {
			t.Errorf("published %q is not Okta's format", doc["published"])
		}
		if doc["version"] != "0" || !strings.Contains("INFO WARN ERROR DEBUG", doc["severity"].(string)) {
			t.Errorf("version %v severity %v", doc["version"], doc["severity"])
		}
		switch r := doc["outcome"].(map[string]any)["result"]; r {
		case "SUCCESS", "FAILURE", "SKIPPED", "ALLOW", "DENY", "CHALLENGE":
		default:
			t.Errorf("outcome.result %v", r)
		}
	}
	for _, want := range []string{
		"user.session.start", "user.authentication.sso", "user.authentication.auth_via_mfa",
		"user.mfa.factor.deactivate", "user.mfa.factor.reset_all", "system.push.send_factor_verify_push",
		"user.mfa.okta_verify.deny_push", "user.account.privilege.grant", "system.api_token.create",
		"system.api_token.revoke", "user.account.lock", "user.lifecycle.create",
		"app.generic.unauth_app_access_attempt", "policy.lifecycle.update", "zone.deactivate",
		"user.session.end", "group.user_membership.add",
	} {
		if !types[want] {
			t.Errorf("no %s event generated", want)
		}
	}
}

func TestPublishedRoundTrips(t *testing.T) {
	e := NewGenerator(1).Ordinary(time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)))
	var back LogEvent
	if err := json.Unmarshal(e.JSON(), &back); err != nil {
		t.Fatal(err)
	}
	if got := FormatTime(back.Published); got != "2026-11-25T09:00:00.123Z" {
		t.Errorf("published = %s", got)
	}
	if !bytes.Equal(back.JSON(), e.JSON()) {
		t.Error("LogEvent does not survive a JSON round trip")
	}
}

func TestAttackShapes(t *testing.T) {
	g := NewGenerator(2)
	failures := g.BruteForce("v@"+OrgDomain, "185.220.9.9", t0, 6)
	for _, e := range failures {
		if e.EventType != "user.session.start" || e.Outcome.Result != "FAILURE" || *e.Outcome.Reason != "INVALID_CREDENTIALS" ||
			e.Actor.AlternateID != "v@"+OrgDomain || e.Client.IPAddress != "185.220.9.9" || e.Published.Before(t0) {
			t.Errorf("brute force event %s", e.JSON())
		}
	}
	if span := failures[5].Published.Sub(failures[0].Published); span > 15*time.Minute {
		t.Errorf("6 failures span %v", span)
	}
	grant := g.AdminRoleAssigned("a@"+OrgDomain, "b@"+OrgDomain, t0)
	if !strings.Contains(grant.DebugContext.DebugData["privilegeGranted"].(string), "Super administrator") ||
		grant.Target[0].AlternateID != "b@"+OrgDomain || grant.Actor.AlternateID != "a@"+OrgDomain {
		t.Errorf("admin grant %s", grant.JSON())
	}
	if tok := g.APITokenCreated("a@"+OrgDomain, t0); tok.Target[0].Type != "Token" || tok.LegacyEventType != "api.token.create" {
		t.Errorf("token %s", tok.JSON())
	}
	push := g.PushBombing("p@"+OrgDomain, t0, 4)
	var sent, denied int
	for _, e := range push {
		switch e.EventType {
		case "system.push.send_factor_verify_push":
			sent++
		case "user.mfa.okta_verify.deny_push":
			denied++
		}
	}
	if sent != 4 || denied != 3 || push[len(push)-1].EventType != "user.authentication.auth_via_mfa" {
		t.Errorf("push bombing: %d sent %d denied, last %s", sent, denied, push[len(push)-1].EventType)
	}
}
