package okta

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// testOAuth is a service app's authorizer; deps left zero are the real
// clock and no logger.
func testOAuth(t *testing.T, k crypto.Signer, mode DPoPMode, deps oauthDeps) *oauthAuth {
	t.Helper()
	if deps.clock == nil {
		deps.clock = SystemClock{}
	}
	if deps.log == nil {
		deps.log = nopLogger{}
	}
	org, _ := url.Parse("https://acme.okta.com")
	a, err := newOAuthAuth(org, OAuthConfig{ClientID: "0oaApp", KeyID: "kid1", Key: k, Scopes: []string{LogsScope}, DPoP: mode}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParsePrivateKeyFormats(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	pub, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	enc := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "from-jwk"})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: ecKey.Public(), KeyID: "p"})

	good := map[string]string{
		"pkcs8":   enc("PRIVATE KEY", pkcs8),
		"pkcs1":   enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
		"sec1":    "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n" + enc("EC PRIVATE KEY", sec1),
		"escaped": strings.ReplaceAll(enc("PRIVATE KEY", pkcs8), "\n", `\n`),
		"jwk":     string(jwk),
	}
	for name, raw := range good {
		k, kid, err := ParsePrivateKey([]byte(raw))
		if err != nil || k == nil {
			t.Errorf("%s: %v", name, err)
		}
		if name == "jwk" && kid != "from-jwk" {
			t.Errorf("jwk kid %q", kid)
		}
	}
	if k, _, _ := ParsePrivateKey([]byte(good["sec1"])); assertionAlgorithm(k) != jose.ES384 {
		t.Error("a P-384 key signs ES384")
	}
	if k, _, _ := ParsePrivateKey([]byte(good["pkcs1"])); assertionAlgorithm(k) != jose.RS256 {
		t.Error("an RSA key signs RS256")
	}

	body := strings.Split(good["pkcs8"], "\n")[1]
	bad := map[string]string{
		enc("PUBLIC KEY", pub):                   "not the private key",
		enc("ENCRYPTED PRIVATE KEY", []byte{1}):  "encrypted",
		enc("PRIVATE KEY", []byte("garbage")):    "does not parse",
		"-----BEGIN PRIVATE KEY-----\n" + body:   "no private key found",
		string(pubJWK):                           "public key",
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwgg": "not a PEM block",
	}
	for raw, want := range bad {
		_, _, err := ParsePrivateKey([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.30q: %v, want %q", raw, err, want)
			continue
		}
		if strings.Contains(err.Error(), body[:16]) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

func TestClientAssertionClaims(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Unix(1_800_000_000, 0)
	a := testOAuth(t, k, DPoPAuto, oauthDeps{clock: testkit.NewClock(now)})
	s1, err := a.clientAssertion()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := a.clientAssertion()
	tok, err := jwt.ParseSigned(s1, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].KeyID != "kid1" {
		t.Errorf("kid %q", tok.Headers[0].KeyID)
	}
	var c jwt.Claims
	if err := tok.Claims(k.Public(), &c); err != nil {
		t.Fatal(err)
	}
	err = c.Validate(jwt.Expected{Issuer: "0oaApp", Subject: "0oaApp", AnyAudience: jwt.Audience{"https://acme.okta.com/oauth2/v1/token"}, Time: now})
	if err != nil || c.Expiry.Time().Sub(now) != assertionLifetime || c.ID == "" {
		t.Fatalf("claims %+v: %v", c, err)
	}
	var c2 jwt.Claims
	tok2, _ := jwt.ParseSigned(s2, []jose.SignatureAlgorithm{jose.RS256})
	_ = tok2.UnsafeClaimsWithoutVerification(&c2)
	if c2.ID == c.ID {
		t.Error("every assertion needs its own jti")
	}
}

func TestDPoPProof(t *testing.T) {
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://Acme.okta.com/api/v1/logs?after=1714675441520_1&limit=1000#frag")
	now := time.Unix(1_800_000_000, 0)
	p, err := k.proof("GET", u, "the-token", "n0nce", now)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders[jose.HeaderType] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || h.KeyID != "" {
		t.Fatalf("header %+v", h)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatal(err)
	}
	var c dpopClaims
	_ = json.Unmarshal(payload, &c)
	want := dpopClaims{JTI: c.JTI, HTM: "GET", HTU: "https://acme.okta.com/api/v1/logs", IAT: now.Unix(), ATH: accessTokenHash("the-token"), Nonce: "n0nce"}
	if c != want || c.JTI == "" {
		t.Fatalf("claims %+v, want %+v", c, want)
	}
	// RFC 9449 §7.1 example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
	if got := accessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("ath %s", got)
	}
}

func TestParseChallenges(t *testing.T) {
	okta := `DPoP algs="RS256 RS384 RS512 ES256 ES384 ES512", authorization_uri="https://acme.okta.com/oauth2/v1/authorize", realm="https://acme.okta.com", scope="okta.users.read.self", error="invalid_dpop_proof", error_description="'htu' claim in the DPoP proof JWT is invalid.", resource="/api/v1/users"`
	scheme, code, desc := challengeError([]string{okta})
	if scheme != "DPoP" || code != "invalid_dpop_proof" || desc != "'htu' claim in the DPoP proof JWT is invalid." {
		t.Fatalf("%q %q %q", scheme, code, desc)
	}
	chs := parseChallenges([]string{`Basic realm="x", DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`, `Bearer`})
	if len(chs) != 3 || chs[1].scheme != "DPoP" || chs[1].params["error"] != "use_dpop_nonce" || chs[2].scheme != "Bearer" {
		t.Fatalf("%+v", chs)
	}
	if _, code, _ := challengeError([]string{`Bearer error=invalid_token, error_description="a \"quoted\" word"`}); code != "invalid_token" {
		t.Fatalf("token68-style value: %q", code)
	}
	for _, junk := range []string{"", "=", `"`, `DPoP error="`, ",,,", `a=b=c`} {
		_ = parseChallenges([]string{junk}) // must not panic
	}
}

func TestAnsweredRetryHints(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := testOAuth(t, k, DPoPAuto, oauthDeps{})
	a.tok = &accessToken{value: "tok-1", dpop: true, renewAt: time.Now().Add(time.Hour)}
	req, _ := http.NewRequest("GET", "https://acme.okta.com/api/v1/logs", nil)
	req.Header.Set("Authorization", "DPoP tok-1")
	resp := func(status int, h map[string]string) *http.Response {
		r := &http.Response{StatusCode: status, Header: http.Header{}, Request: req}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	if h := a.answered(resp(200, map[string]string{"DPoP-Nonce": "n1"})); h != noRetry || a.rsNonce != "n1" {
		t.Fatalf("200: %v, nonce %q", h, a.rsNonce)
	}
	if h := a.answered(resp(401, map[string]string{"DPoP-Nonce": "n2", "WWW-Authenticate": `DPoP error="use_dpop_nonce"`})); h != retryWithNonce || a.rsNonce != "n2" || a.tok == nil {
		t.Fatalf("nonce challenge: %v", h)
	}
	if h := a.answered(resp(400, map[string]string{"WWW-Authenticate": `DPoP error="invalid_dpop_proof"`})); h != noRetry {
		t.Fatalf("invalid proof must not be retried at once: %v", h)
	}
	if h := a.answered(resp(401, map[string]string{"WWW-Authenticate": `DPoP error="invalid_token"`})); h != retryRenewed || a.tok != nil {
		t.Fatalf("401: %v, token kept: %v", h, a.tok)
	}
	if h := a.answered(resp(403, nil)); h != noRetry {
		t.Fatalf("403: %v", h)
	}
}

func TestTokenErrorsNameTheCause(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		status    int
		body      string
		mode      DPoPMode
		kind      FailureKind
		want      string
		notSecret string
	}{
		{401, `{"error":"invalid_client","error_description":"The client_assertion signature is invalid."}`, DPoPAuto, FailConfig, "oauth.private_key must be the private half", ""},
		{401, `{"error":"invalid_client","error_description":"Invalid value for 'client_id' parameter."}`, DPoPAuto, FailConfig, "does not know oauth.client_id", ""},
		{401, `{"error":"invalid_client","error_description":"The client_assertion token is expired."}`, DPoPAuto, FailConfig, "clock", ""},
		{401, `{"error":"invalid_client","error_description":"Client authentication failed."}`, DPoPAuto, FailConfig, "Public key / Private key", ""},
		{400, `{"error":"invalid_scope","error_description":"The following scopes are not allowed: okta.logs.read"}`, DPoPAuto, FailConfig, "Okta API Scopes", ""},
		{400, `{"error":"invalid_dpop_proof","error_description":"The DPoP proof JWT header is missing."}`, DPoPNever, FailConfig, "oauth.dpop is never", ""},
		{400, `{"error":"unauthorized_client","error_description":"The client is not authorized to use the provided grant type."}`, DPoPAuto, FailConfig, "API Services", ""},
		{429, `{"errorCode":"E0000047"}`, DPoPAuto, FailRateLimited, "rate limit", ""},
		{503, `<html>`, DPoPAuto, FailTransient, "server error", ""},
		{404, `{"errorCode":"E0000007"}`, DPoPAuto, FailConfig, "check org_url", ""},
	}
	for _, tc := range cases {
		a := testOAuth(t, k, tc.mode, oauthDeps{})
		var oe oauthErrorBody
		_ = json.Unmarshal([]byte(tc.body), &oe)
		e := a.tokenError(&http.Response{StatusCode: tc.status, Header: http.Header{"Date": {time.Now().UTC().Format(http.TimeFormat)}}}, oe)
		if e.Kind != tc.kind || !strings.Contains(e.Error(), tc.want) {
			t.Errorf("%d %s: kind %v, %v; want %q", tc.status, tc.body, e.Kind, e, tc.want)
		}
	}
}

func TestTokenRenewalTiming(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := testOAuth(t, k, DPoPAuto, oauthDeps{})
	sent := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		body  string
		renew time.Duration
		dpop  bool
	}{
		{`{"token_type":"Bearer","expires_in":3600,"access_token":"x"}`, 59 * time.Minute, false},
		{`{"token_type":"DPoP","expires_in":10,"access_token":"x"}`, 8 * time.Second, true},
	} {
		tok, err := a.acceptToken([]byte(tc.body), sent, 200, RateInfo{})
		if err != nil || tok.renewAt.Sub(sent) != tc.renew || tok.dpop != tc.dpop {
			t.Errorf("%s: %+v %v", tc.body, tok, err)
		}
		if strings.Contains(tok.String(), "x") && !strings.Contains(tok.String(), "redacted") {
			t.Error("token String must redact")
		}
	}
	if _, err := a.acceptToken([]byte(`{"token_type":"Bearer"}`), sent, 200, RateInfo{}); err == nil {
		t.Error("a 200 without access_token must fail")
	}
}

func TestHTUDropsQuery(t *testing.T) {
	for in, want := range map[string]string{
		"https://acme.okta.com/api/v1/logs?since=x&after=1_2": "https://acme.okta.com/api/v1/logs",
		"HTTP://127.0.0.1:8080/api/v1/logs":                   "http://127.0.0.1:8080/api/v1/logs",
		"https://acme.okta.com":                               "https://acme.okta.com/",
	} {
		u, _ := url.Parse(in)
		if got := htu(u); got != want {
			t.Errorf("htu(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestRefusedTokenIsRenewedOnceThenReported(t *testing.T) {
	var tokenReqs, apiReqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case tokenPath:
			n := tokenReqs.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"secret-token-%d","scope":"okta.logs.read"}`, n)
		default:
			apiReqs.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="x", error="invalid_token", error_description="The token has been revoked."`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errorCode":"E0000011","errorSummary":"Invalid token provided"}`))
		}
	}))
	defer srv.Close()
	org, _ := url.Parse(srv.URL)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := NewClient(Config{
		Org:        org,
		OAuth:      &OAuthConfig{ClientID: "0oaApp", Key: k, Scopes: []string{LogsScope}, DPoP: DPoPAuto},
		HTTPClient: srv.Client(),
		UserAgent:  "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(context.Background(), srv.URL+"/api/v1/logs?limit=10")
	var reqErr *RequestError
	if !errors.As(err, &reqErr) || reqErr.Kind != FailConfig || !strings.Contains(err.Error(), "even after renewing it") ||
		!strings.Contains(err.Error(), "The token has been revoked.") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("the error quotes the token: %v", err)
	}
	if tokenReqs.Load() != 2 || apiReqs.Load() != 2 {
		t.Fatalf("%d token and %d API requests, want 2 and 2 (one renewal)", tokenReqs.Load(), apiReqs.Load())
	}
}
