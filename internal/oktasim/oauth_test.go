package oktasim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type oauthFixture struct {
	*fixture
	key  *ecdsa.PrivateKey // the service app's key
	pop  *ecdsa.PrivateKey // the DPoP key
	id   string
	kid  string
	aud  string
	logs string
}

func newOAuthFixture(t *testing.T, opts Options) *oauthFixture {
	f := newFixture(t, opts)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pop, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.sim.RegisterClient("0oaApp", "k1", key.Public(), LogsScope)
	return &oauthFixture{fixture: f, key: key, pop: pop, id: "0oaApp", kid: "k1", aud: f.srv.URL + TokenPath, logs: f.srv.URL + LogsPath}
}

func sign(t *testing.T, key crypto.Signer, kid string, opts *jose.SignerOptions, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (o *oauthFixture) assertion(t *testing.T, mod func(*jwt.Claims)) string {
	now := o.clock.Now()
	c := jwt.Claims{Issuer: o.id, Subject: o.id, Audience: jwt.Audience{o.aud}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: randomString(8)}
	if mod != nil {
		mod(&c)
	}
	return sign(t, o.key, o.kid, nil, c)
}

func (o *oauthFixture) proof(t *testing.T, method, htu, token, nonce string, mod func(map[string]any)) string {
	c := map[string]any{"jti": randomString(8), "htm": method, "htu": htu, "iat": o.clock.Now().Unix()}
	if token != "" {
		c["ath"] = accessTokenHash(token)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	if mod != nil {
		mod(c)
	}
	return sign(t, o.pop, "", (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"), c)
}

type tokenResult struct {
	status int
	header http.Header
	body   map[string]any
}

func (o *oauthFixture) token(t *testing.T, assertion, proof, scope string) tokenResult {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}}
	req, _ := http.NewRequest(http.MethodPost, o.aud, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return tokenResult{resp.StatusCode, resp.Header, m}
}

func (o *oauthFixture) api(t *testing.T, rawURL, auth, proof string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.Header.Set("Authorization", auth)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestTokenEndpointClientAssertion(t *testing.T) {
	o := newOAuthFixture(t, Options{})
	ok := o.token(t, o.assertion(t, nil), "", LogsScope)
	if ok.status != 200 || ok.body["token_type"] != "Bearer" || ok.body["expires_in"] != float64(3600) || !strings.HasPrefix(ok.body["access_token"].(string), AccessTokenPrefix) {
		t.Fatalf("%d %v", ok.status, ok.body)
	}
	if ok.header.Get("Cache-Control") != "no-store" {
		t.Error("token responses must not be cached")
	}
	if st, _ := o.api(t, o.logs, "Bearer "+ok.body["access_token"].(string), ""); st != 200 {
		t.Fatalf("Bearer token refused: %d", st)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	replayed := o.assertion(t, nil)
	o.token(t, replayed, "", LogsScope)
	cases := map[string]struct {
		assertion, scope, code, desc string
	}{
		"wrong key":    {sign(t, other, "k1", nil, jwt.Claims{Issuer: o.id, Subject: o.id, Audience: jwt.Audience{o.aud}, Expiry: jwt.NewNumericDate(o.clock.Now().Add(time.Minute)), ID: "x"}), LogsScope, "invalid_client", "signature is invalid"},
		"unknown kid":  {sign(t, o.key, "k9", nil, jwt.Claims{Issuer: o.id, Subject: o.id, Audience: jwt.Audience{o.aud}, Expiry: jwt.NewNumericDate(o.clock.Now().Add(time.Minute)), ID: "y"}), LogsScope, "invalid_client", "signature is invalid"},
		"unknown app":  {o.assertion(t, func(c *jwt.Claims) { c.Issuer, c.Subject = "0oaNope", "0oaNope" }), LogsScope, "invalid_client", "client_id"},
		"expired":      {o.assertion(t, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(o.clock.Now().Add(-time.Second)) }), LogsScope, "invalid_client", "expired"},
		"too long":     {o.assertion(t, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(o.clock.Now().Add(2 * time.Hour)) }), LogsScope, "invalid_client", "too far"},
		"wrong aud":    {o.assertion(t, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://elsewhere/oauth2/v1/token"} }), LogsScope, "invalid_client", "audience"},
		"sub mismatch": {o.assertion(t, func(c *jwt.Claims) { c.Subject = "someone" }), LogsScope, "invalid_client", "sub"},
		"no jti":       {o.assertion(t, func(c *jwt.Claims) { c.ID = "" }), LogsScope, "invalid_client", "jti"},
		"replayed":     {replayed, LogsScope, "invalid_client", "already been used"},
		"not granted":  {o.assertion(t, nil), "okta.users.manage", "invalid_scope", "okta.users.manage"},
		"no scope":     {o.assertion(t, nil), "", "invalid_scope", "scope"},
	}
	for name, tc := range cases {
		r := o.token(t, tc.assertion, "", tc.scope)
		if r.body["error"] != tc.code || !strings.Contains(r.body["error_description"].(string), tc.desc) {
			t.Errorf("%s: %d %v, want %s …%s…", name, r.status, r.body, tc.code, tc.desc)
		}
	}
	st := o.sim.OAuthStats()
	if st.TokensIssued != 2 || st.TokenErrors["invalid_client"] != 9 {
		t.Errorf("stats %+v", st)
	}
}

func TestDPoPOnTokenEndpointAndAPI(t *testing.T) {
	o := newOAuthFixture(t, Options{RequireDPoP: true, DPoPNonces: true})
	if r := o.token(t, o.assertion(t, nil), "", LogsScope); r.body["error"] != "invalid_dpop_proof" {
		t.Fatalf("no proof: %v", r.body)
	}
	r := o.token(t, o.assertion(t, nil), o.proof(t, "POST", o.aud, "", "", nil), LogsScope)
	nonce := r.header.Get("DPoP-Nonce")
	if r.status != 400 || r.body["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("nonce challenge: %d %v", r.status, r.body)
	}
	r = o.token(t, o.assertion(t, nil), o.proof(t, "POST", o.aud, "", nonce, nil), LogsScope)
	if r.status != 200 || r.body["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	tok := r.body["access_token"].(string)

	// The API's own nonce comes with its first challenge.
	page2 := o.logs + "?limit=10&sortOrder=ASCENDING"
	st, h := o.api(t, page2, "DPoP "+tok, o.proof(t, "GET", o.logs, tok, "", nil))
	rsNonce := h.Get("DPoP-Nonce")
	if st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || rsNonce == "" {
		t.Fatalf("API nonce challenge: %d %v", st, h)
	}
	good := o.proof(t, "GET", o.logs, tok, rsNonce, nil)
	if st, _ := o.api(t, page2, "DPoP "+tok, good); st != 200 {
		t.Fatalf("valid proof refused: %d", st)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign := sign(t, other, "", (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"),
		map[string]any{"jti": "f1", "htm": "GET", "htu": o.logs, "iat": o.clock.Now().Unix(), "ath": accessTokenHash(tok), "nonce": rsNonce})
	bad := map[string]struct{ auth, proof, want string }{
		"replayed proof":    {"DPoP " + tok, good, "'jti'"},
		"htu with query":    {"DPoP " + tok, o.proof(t, "GET", page2, tok, rsNonce, nil), "'htu'"},
		"htu other path":    {"DPoP " + tok, o.proof(t, "GET", o.srv.URL+"/api/v1/users", tok, rsNonce, nil), "'htu'"},
		"wrong htm":         {"DPoP " + tok, o.proof(t, "POST", o.logs, tok, rsNonce, nil), "'htm'"},
		"stale iat":         {"DPoP " + tok, o.proof(t, "GET", o.logs, tok, rsNonce, func(c map[string]any) { c["iat"] = o.clock.Now().Add(-5 * time.Minute).Unix() }), "'iat'"},
		"wrong ath":         {"DPoP " + tok, o.proof(t, "GET", o.logs, "another-token", rsNonce, nil), "'ath'"},
		"no ath":            {"DPoP " + tok, o.proof(t, "GET", o.logs, "", rsNonce, nil), "'ath'"},
		"key not bound":     {"DPoP " + tok, foreign, "binding"},
		"wrong typ":         {"DPoP " + tok, sign(t, o.pop, "", &jose.SignerOptions{EmbedJWK: true}, map[string]any{"jti": "t1", "htm": "GET", "htu": o.logs, "iat": o.clock.Now().Unix()}), "'typ'"},
		"no proof":          {"DPoP " + tok, "", "missing"},
		"DPoP token Bearer": {"Bearer " + tok, "", "DPoP-bound"},
	}
	for name, tc := range bad {
		st, h := o.api(t, page2, tc.auth, tc.proof)
		if (st != 400 && st != 401) || !strings.Contains(h.Get("WWW-Authenticate"), tc.want) {
			t.Errorf("%s: %d %q, want a refusal naming %s", name, st, h.Get("WWW-Authenticate"), tc.want)
		}
	}
	o.sim.RotateDPoPNonce()
	if st, h := o.api(t, page2, "DPoP "+tok, o.proof(t, "GET", o.logs, tok, rsNonce, nil)); st != 401 || h.Get("DPoP-Nonce") == rsNonce {
		t.Fatalf("a rotated nonce must be challenged: %d", st)
	}
	o.sim.RevokeTokens()
	if st, _ := o.api(t, page2, "DPoP "+tok, o.proof(t, "GET", o.logs, tok, rsNonce, nil)); st != 401 {
		t.Fatalf("revoked token accepted: %d", st)
	}
}

func TestTokensExpireOnTheSimulatorClock(t *testing.T) {
	o := newOAuthFixture(t, Options{TokenTTL: time.Minute})
	r := o.token(t, o.assertion(t, nil), "", LogsScope)
	if r.body["expires_in"] != float64(60) {
		t.Fatalf("%v", r.body)
	}
	tok := r.body["access_token"].(string)
	o.clock.Advance(59 * time.Second)
	if st, _ := o.api(t, o.logs, "Bearer "+tok, ""); st != 200 {
		t.Fatalf("live token refused: %d", st)
	}
	o.clock.Advance(2 * time.Second)
	st, h := o.api(t, o.logs, "Bearer "+tok, "")
	if st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "expired") {
		t.Fatalf("expired token: %d %v", st, h)
	}
	// A token without okta.logs.read is forbidden, with a scope challenge.
	o.sim.RegisterClient(o.id, o.kid, o.key.Public(), "okta.users.read")
	r = o.token(t, o.assertion(t, nil), "", "okta.users.read")
	st, h = o.api(t, o.logs, "Bearer "+r.body["access_token"].(string), "")
	if st != 403 || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("scope: %d %v", st, h)
	}
}
