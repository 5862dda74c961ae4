package oktasim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Generator makes realistic System Log events. Its output depends only on
// the seed and the sequence of calls, so tests and demos are reproducible.
// A Generator is not safe for concurrent use.
type Generator struct {
	rnd *rand.Rand
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed int64) *Generator {
	return &Generator{rnd: rand.New(rand.NewPCG(uint64(seed), 0x6f6b74617369))}
}

// apps the org federates to.
var apps = []struct{ name, label string }{
	{"salesforce", "Salesforce.com"},
	{"slack", "Slack"},
	{"github_enterprise", "GitHub Enterprise Cloud"},
	{"amazon_aws_sso", "AWS IAM Identity Center"},
	{"zoomus", "Zoom"},
	{"google", "Google Workspace"},
}

var groups = []string{"Engineering", "Sales", "Finance", "Support", "Contractors", "VPN Users"}

// --- random helpers -------------------------------------------------------

func (g *Generator) intn(n int) int { return g.rnd.IntN(n) }

func (g *Generator) chars(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rnd.IntN(len(alphabet))]
	}
	return string(b)
}

// uuid is a random version-4 UUID, like Okta's event uuids.
func (g *Generator) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rnd.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// oktaID is a 20-character Okta object id with its type prefix (00u user,
// 0oa app, 00g group, 00T token, 00p policy, nzo zone).
func (g *Generator) oktaID(prefix string) string { return prefix + g.chars(alphanum, 20-len(prefix)) }

func (g *Generator) requestID() string { return g.chars(alphanum+"-_", 27) }

func (g *Generator) hex(n int) string { return g.chars("0123456789abcdef", n) }

func (g *Generator) ipIn(p place) string {
	return fmt.Sprintf("%s.%d.%d", p.ipPrefix, 1+g.intn(254), 1+g.intn(254))
}

// --- the common event skeleton -------------------------------------------

// origin is where and how an actor acted.
type origin struct {
	actor persona
	where place
	ip    string
	agent userAgent
}

func (g *Generator) from(p persona) origin {
	where := places[p.home]
	return origin{actor: p, where: where, ip: g.ipIn(where), agent: userAgents[p.agent]}
}

func geo(p place) *GeographicalContext {
	return &GeographicalContext{
		City: p.city, State: p.state, Country: p.country, PostalCode: strp(p.postal),
		Geolocation: &Geolocation{Lat: p.lat, Lon: p.lon},
	}
}

// event fills every field Okta always sends; builders then set what is
// specific to the event type.
func (g *Generator) event(at time.Time, o origin, eventType, legacy, display, uri string) LogEvent {
	reqID := g.requestID()
	device := "Computer"
	if o.agent.os == "iOS" {
		device = "Mobile"
	} else if o.agent.browser == "UNKNOWN" {
		device = "Unknown"
	}
	return LogEvent{
		UUID:            g.uuid(),
		Published:       at.UTC().Truncate(time.Millisecond),
		EventType:       eventType,
		Version:         "0",
		Severity:        "INFO",
		LegacyEventType: legacy,
		DisplayMessage:  display,
		Actor:           Actor{ID: o.actor.id, Type: "User", AlternateID: o.actor.login, DisplayName: o.actor.name},
		Client: &Client{
			UserAgent: &UserAgent{RawUserAgent: o.agent.raw, OS: o.agent.os, Browser: o.agent.browser},
			Zone:      "null", Device: device, IPAddress: o.ip, GeographicalContext: geo(o.where),
		},
		AuthenticationContext: &AuthenticationContext{ExternalSessionID: "idx" + g.chars(alphanum, 22)},
		Outcome:               &Outcome{Result: "SUCCESS"},
		Transaction:           &Transaction{Type: "WEB", ID: reqID, Detail: map[string]any{}},
		DebugContext: &DebugContext{DebugData: map[string]any{
			"requestId": reqID, "requestUri": uri, "url": uri + "?", "threatSuspected": "false",
		}},
		SecurityContext: &SecurityContext{
			AsNumber: intp(o.where.asNumber), AsOrg: strp(o.where.asOrg), ISP: strp(o.where.isp),
			Domain: strp(o.where.domain), IsProxy: boolp(o.where.proxy),
		},
		Request: &EventRequest{IPChain: []IPAddress{{IP: o.ip, GeographicalContext: geo(o.where), Version: "V4"}}},
	}
}

func userTarget(p persona) Target {
	return Target{ID: p.id, Type: "User", AlternateID: p.login, DisplayName: p.name}
}

func (g *Generator) appTarget() Target {
	a := apps[g.intn(len(apps))]
	return Target{ID: g.oktaID("0oa"), Type: "AppInstance", AlternateID: a.label, DisplayName: a.label,
		DetailEntry: map[string]any{"signOnModeType": "SAML_2_0"}}
}

func (g *Generator) fail(e *LogEvent, reason string) {
	e.Severity = "WARN"
	e.Outcome = &Outcome{Result: "FAILURE", Reason: strp(reason)}
}

// --- event types -----------------------------------------------------------

// SessionStart is a user.session.start: success when reason is "", else a
// failure with that reason (INVALID_CREDENTIALS, VERIFICATION_ERROR, …).
func (g *Generator) sessionStart(at time.Time, o origin, reason string) LogEvent {
	legacy := "core.user_auth.login_success"
	if reason != "" {
		legacy = "core.user_auth.login_failed"
	}
	e := g.event(at, o, "user.session.start", legacy, "User login to Okta", "/idp/idx/identify")
	e.AuthenticationContext.AuthenticationProvider = strp("OKTA_AUTHENTICATION_PROVIDER")
	e.AuthenticationContext.CredentialProvider = strp("OKTA_CREDENTIAL_PROVIDER")
	e.AuthenticationContext.CredentialType = strp("PASSWORD")
	e.AuthenticationContext.Interface = strp("Okta Identity Engine")
	dd := e.DebugContext.DebugData
	dd["deviceFingerprint"] = g.hex(32)
	dd["dtHash"] = g.hex(64)
	dd["behaviors"] = "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=NEGATIVE, New State=NEGATIVE, New Country=NEGATIVE, Velocity=NEGATIVE, New City=NEGATIVE}"
	dd["risk"] = "{level=LOW}"
	if reason != "" {
		g.fail(&e, reason)
		dd["loginResult"] = reason
	}
	return e
}

func (g *Generator) sso(at time.Time, o origin) LogEvent {
	e := g.event(at, o, "user.authentication.sso", "app.auth.sso", "User single sign on to app", "/app/"+apps[g.intn(len(apps))].name+"/sso/saml")
	e.AuthenticationContext.AuthenticationProvider = strp("OKTA_AUTHENTICATION_PROVIDER")
	app := g.appTarget()
	e.Target = []Target{app, {ID: g.oktaID("0ua"), Type: "AppUser", AlternateID: o.actor.login, DisplayName: o.actor.name}}
	e.DebugContext.DebugData["initiationType"] = "IDP_INITIATED"
	e.DebugContext.DebugData["signOnMode"] = "SAML 2.0"
	return e
}

func (g *Generator) authViaMFA(at time.Time, o origin) LogEvent {
	e := g.event(at, o, "user.authentication.auth_via_mfa", "core.user.factor.attempt_success", "Authentication of user via MFA", "/idp/idx/challenge/answer")
	e.AuthenticationContext.AuthenticationProvider = strp("FACTOR_PROVIDER")
	e.AuthenticationContext.CredentialProvider = strp("OKTA_CREDENTIAL_PROVIDER")
	e.AuthenticationContext.CredentialType = strp("OTP")
	e.AuthenticationContext.AuthenticationStep = 0
	e.DebugContext.DebugData["factor"] = "OKTA_VERIFY_PUSH"
	e.DebugContext.DebugData["factorIntent"] = "AUTHENTICATION"
	e.Target = []Target{userTarget(o.actor), {ID: g.oktaID("pfd"), Type: "AuthenticatorEnrollment", AlternateID: "unknown", DisplayName: "Okta Verify"}}
	if g.intn(3) == 0 {
		e.Device = &Device{
			ID: g.oktaID("guo"), Name: o.actor.name + "'s MacBook", OSPlatform: "OSX", OSVersion: "15.1.0",
			Managed: true, Registered: true, DiskEncryptionType: "ALL_INTERNAL_VOLUMES",
			ScreenLockType: "BIOMETRIC", SecureHardwarePresent: true,
		}
	}
	return e
}

func (g *Generator) sendPush(at time.Time, o origin) LogEvent {
	e := g.event(at, o, "system.push.send_factor_verify_push", "", "Push notification sent for verification", "/idp/idx/challenge")
	e.AuthenticationContext.AuthenticationProvider = strp("FACTOR_PROVIDER")
	e.DebugContext.DebugData["factor"] = "OKTA_VERIFY_PUSH"
	e.Target = []Target{userTarget(o.actor)}
	return e
}

func (g *Generator) denyPush(at time.Time, o origin) LogEvent {
	e := g.event(at, o, "user.mfa.okta_verify.deny_push", "core.user.factor.attempt_fail", "User rejected Okta push verify", "/idp/idx/authenticators/poll")
	e.AuthenticationContext.AuthenticationProvider = strp("FACTOR_PROVIDER")
	e.DebugContext.DebugData["factor"] = "OKTA_VERIFY_PUSH"
	e.Target = []Target{userTarget(o.actor)}
	g.fail(&e, "INVALID_CREDENTIALS")
	return e
}

func (g *Generator) sessionEnd(at time.Time, o origin) LogEvent {
	return g.event(at, o, "user.session.end", "core.user_auth.logout_success", "User logout from Okta", "/login/signout")
}

func (g *Generator) groupAdd(at time.Time, admin origin, user persona) LogEvent {
	e := g.event(at, admin, "group.user_membership.add", "core.user_group_member.user_add", "Add user to group membership", "/api/v1/groups/"+g.oktaID("00g")+"/users/"+user.id)
	grp := groups[g.intn(len(groups))]
	e.Target = []Target{userTarget(user), {ID: g.oktaID("00g"), Type: "UserGroup", AlternateID: "unknown", DisplayName: grp}}
	return e
}

func (g *Generator) userCreate(at time.Time, admin origin, login string) LogEvent {
	p := lookupPersona(login)
	e := g.event(at, admin, "user.lifecycle.create", "core.user.config.user_creation.success", "Create Okta user", "/api/v1/users")
	e.Target = []Target{userTarget(p)}
	return e
}

func (g *Generator) policyUpdate(at time.Time, admin origin) LogEvent {
	e := g.event(at, admin, "policy.lifecycle.update", "core.policy.update", "Update policy", "/api/v1/policies/"+g.oktaID("00p"))
	e.Target = []Target{{ID: g.oktaID("00p"), Type: "PolicyEntity", AlternateID: "unknown", DisplayName: "Default Policy",
		DetailEntry: map[string]any{"policyType": "OKTA_SIGN_ON"}}}
	return e
}

// --- ordinary traffic -------------------------------------------------------

// Ordinary returns one benign event published at `at`: mostly sign-ins,
// SSO and MFA by staff from their usual city and browser, some sign-outs,
// the odd mistyped password, and routine admin work.
func (g *Generator) Ordinary(at time.Time) LogEvent {
	user := staff[g.intn(len(staff))]
	o := g.from(user)
	admin := g.from(admins[g.intn(len(admins))])
	switch n := g.intn(100); {
	case n < 28:
		return g.sessionStart(at, o, "")
	case n < 32:
		return g.sessionStart(at, o, []string{"INVALID_CREDENTIALS", "VERIFICATION_ERROR"}[g.intn(2)])
	case n < 54:
		return g.sso(at, o)
	case n < 70:
		return g.authViaMFA(at, o)
	case n < 77:
		return g.sendPush(at, o)
	case n < 89:
		return g.sessionEnd(at, o)
	case n < 95:
		return g.groupAdd(at, admin, user)
	case n < 97:
		return g.userCreate(at, admin, fmt.Sprintf("new.hire%d@%s", g.intn(10000), OrgDomain))
	default:
		return g.policyUpdate(at, admin)
	}
}

// Backlog returns n ordinary events published at start, start+step, …
func (g *Generator) Backlog(n int, start time.Time, step time.Duration) []LogEvent {
	out := make([]LogEvent, n)
	for i := range out {
		out[i] = g.Ordinary(start.Add(time.Duration(i) * step))
	}
	return out
}
