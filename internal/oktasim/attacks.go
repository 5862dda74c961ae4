package oktasim

import (
	"time"
)

// Attack building blocks. Each returns events published at or after `at`,
// shaped like the Okta events the Panther rules in
// shared/peer-cases were written against, so the same conditions fire.

// BruteForce is `failures` failed user.session.start events
// (INVALID_CREDENTIALS) against user from ip, a few seconds apart, from a
// scripted client.
func (g *Generator) BruteForce(user, ip string, at time.Time, failures int) []LogEvent {
	o := origin{actor: lookupPersona(user), where: placeOf(ip), ip: ip, agent: attackerAgent}
	out := make([]LogEvent, failures)
	for i := range out {
		out[i] = g.sessionStart(at, o, "INVALID_CREDENTIALS")
		at = at.Add(time.Duration(3+g.intn(5)) * time.Second)
	}
	return out
}

// AdminRoleAssigned is actor granting target the Super administrator role
// (user.account.privilege.grant with debugData.privilegeGranted).
func (g *Generator) AdminRoleAssigned(actor, target string, at time.Time) LogEvent {
	p := lookupPersona(target)
	e := g.event(at, g.from(lookupPersona(actor)), "user.account.privilege.grant", "core.user.admin_privilege.granted",
		"Grant user privilege", "/api/internal/administrators/"+p.id)
	e.Target = []Target{userTarget(p)}
	e.DebugContext.DebugData["privilegeGranted"] = "Super administrator"
	return e
}

// APITokenCreated is actor creating an SSWS API token.
func (g *Generator) APITokenCreated(actor string, at time.Time) LogEvent {
	return g.apiToken(actor, at, "system.api_token.create", "api.token.create", "Create API token")
}

// APITokenRevoked is actor revoking an SSWS API token.
func (g *Generator) APITokenRevoked(actor string, at time.Time) LogEvent {
	return g.apiToken(actor, at, "system.api_token.revoke", "api.token.revoke", "Revoke API token")
}

func (g *Generator) apiToken(actor string, at time.Time, eventType, legacy, display string) LogEvent {
	e := g.event(at, g.from(lookupPersona(actor)), eventType, legacy, display, "/api/internal/tokens")
	e.Target = []Target{{ID: g.oktaID("00T"), Type: "Token", AlternateID: "unknown", DisplayName: "automation-" + g.chars("abcdefghijklmnopqrstuvwxyz", 6)}}
	return e
}

// ImpossibleTravel is two successful sign-ins of user: from New York at
// `at`, then from Tokyo 30 minutes later (about 10,800 km, far beyond any
// airliner). Okta's behavior detection flags the second one.
func (g *Generator) ImpossibleTravel(user string, at time.Time) []LogEvent {
	p := lookupPersona(user)
	ny := origin{actor: p, where: places[placeNewYork], ip: g.ipIn(places[placeNewYork]), agent: userAgents[p.agent]}
	tokyo := origin{actor: p, where: places[placeTokyo], ip: g.ipIn(places[placeTokyo]), agent: userAgents[p.agent]}
	first := g.sessionStart(at, ny, "")
	second := g.sessionStart(at.Add(30*time.Minute), tokyo, "")
	dd := second.DebugContext.DebugData
	dd["behaviors"] = "{New Geo-Location=POSITIVE, New Device=NEGATIVE, New IP=POSITIVE, New State=POSITIVE, New Country=POSITIVE, Velocity=POSITIVE, New City=POSITIVE}"
	dd["risk"] = "{reasons=Anomalous Geo-Distance, level=HIGH}"
	return []LogEvent{first, second}
}

// MFAReset is actor resetting all of target's factors
// (user.mfa.factor.reset_all).
func (g *Generator) MFAReset(actor, target string, at time.Time) LogEvent {
	p := lookupPersona(target)
	e := g.event(at, g.from(lookupPersona(actor)), "user.mfa.factor.reset_all", "core.user.factor.reset_all",
		"Reset all factors for user", "/api/v1/users/"+p.id+"/lifecycle/reset_factors")
	e.Target = []Target{userTarget(p)}
	return e
}

// MFAFactorDeactivated is actor resetting one of target's factors
// (user.mfa.factor.deactivate).
func (g *Generator) MFAFactorDeactivated(actor, target string, at time.Time) LogEvent {
	p := lookupPersona(target)
	e := g.event(at, g.from(lookupPersona(actor)), "user.mfa.factor.deactivate", "core.user.factor.deactivate",
		"Reset factor for user", "/api/v1/users/"+p.id+"/factors")
	e.Target = []Target{userTarget(p)}
	e.Outcome.Reason = strp("User reset FIDO_WEBAUTHN factor")
	return e
}

// PushBombing is MFA fatigue: an attacker holding user's password triggers
// `pushes` Okta Verify pushes from a hosting network; the user rejects each
// but the last, which they finally accept.
func (g *Generator) PushBombing(user string, at time.Time, pushes int) []LogEvent {
	where := places[placeFrankfurt]
	o := origin{actor: lookupPersona(user), where: where, ip: g.ipIn(where), agent: userAgents[0]}
	var out []LogEvent
	for i := range pushes {
		out = append(out, g.sendPush(at, o))
		at = at.Add(time.Duration(4+g.intn(6)) * time.Second)
		if i == pushes-1 {
			out = append(out, g.authViaMFA(at, o))
			break
		}
		out = append(out, g.denyPush(at, o))
		at = at.Add(time.Duration(5+g.intn(10)) * time.Second)
	}
	return out
}

// AccountLocked is user locked out after too many failed sign-ins.
func (g *Generator) AccountLocked(user, ip string, at time.Time) LogEvent {
	o := origin{actor: lookupPersona(user), where: placeOf(ip), ip: ip, agent: attackerAgent}
	e := g.event(at, o, "user.account.lock", "core.user_auth.account_locked",
		"Max sign in attempts exceeded", "/idp/idx/identify")
	g.fail(&e, "LOCKED_OUT")
	return e
}

// UnauthorizedAppAccess is user trying to open an app not assigned to them.
func (g *Generator) UnauthorizedAppAccess(user string, at time.Time) LogEvent {
	e := g.event(at, g.from(lookupPersona(user)), "app.generic.unauth_app_access_attempt",
		"app.generic.unauth_app_access_attempt", "User attempted unauthorized access to app", "/app/"+apps[g.intn(len(apps))].name+"/sso/saml")
	e.Target = []Target{g.appTarget()}
	e.Severity = "WARN"
	e.Outcome = &Outcome{Result: "FAILURE"}
	return e
}

// ZoneDeactivated is actor deactivating a network zone (often the
// blocklist that kept attackers out).
func (g *Generator) ZoneDeactivated(actor string, at time.Time) LogEvent {
	id := g.oktaID("nzo")
	e := g.event(at, g.from(lookupPersona(actor)), "zone.deactivate", "", "Deactivate Network Zone", "/api/v1/zones/"+id+"/lifecycle/deactivate")
	e.Target = []Target{{ID: id, Type: "NetworkZone", AlternateID: "unknown", DisplayName: "BlockedIpZone"}}
	return e
}

// PolicyUpdated is actor changing the org's sign-on policy.
func (g *Generator) PolicyUpdated(actor string, at time.Time) LogEvent {
	return g.policyUpdate(at, g.from(lookupPersona(actor)))
}

// SessionEnd is user signing out.
func (g *Generator) SessionEnd(user string, at time.Time) LogEvent {
	return g.sessionEnd(at, g.from(lookupPersona(user)))
}

// UserCreated is actor creating the user login.
func (g *Generator) UserCreated(actor, login string, at time.Time) LogEvent {
	return g.userCreate(at, g.from(lookupPersona(actor)), login)
}

// GroupMembershipAdded is actor adding user to a group.
func (g *Generator) GroupMembershipAdded(actor, user string, at time.Time) LogEvent {
	return g.groupAdd(at, g.from(lookupPersona(actor)), lookupPersona(user))
}
