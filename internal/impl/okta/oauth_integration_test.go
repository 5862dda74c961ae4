package okta_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const (
	testClientID = "0oaTestServiceApp1234"
	testKID      = "test-kid-1"
)

// testKey is a service app key pair and its PKCS #8 PEM.
type testKey struct {
	signer crypto.Signer
	pem    []byte
}

func newRSAKey(t *testing.T) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pemKey(t, k)
}

func newECKey(t *testing.T) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pemKey(t, k)
}

func pemKey(t *testing.T, k crypto.Signer) testKey {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: k, pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
}

// file writes the PEM to a temp file and returns its path.
func (k testKey) file(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "okta-app.pem")
	if err := os.WriteFile(p, k.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// secretMarkers are substrings that must never appear in logs or errors:
// the PEM body, any compact JWS (client assertions and DPoP proofs start with
// a base64url JSON header), and the simulator's access tokens.
func (k testKey) secretMarkers() []string {
	lines := strings.Split(string(k.pem), "\n")
	return []string{lines[1], lines[len(lines)/2], "eyJ", oktasim.AccessTokenPrefix}
}

// assertNoSecrets fails the test if any secret shows up in text.
func assertNoSecrets(t *testing.T, text string, k testKey) {
	t.Helper()
	for _, m := range k.secretMarkers() {
		if strings.Contains(text, m) {
			t.Errorf("a secret (%q…) appears in the logs", m[:min(len(m), 8)])
		}
	}
}

// oauthOrg is a simulated org with one registered service app.
func newOAuthOrg(t *testing.T, opts oktasim.Options, key testKey, scopes ...string) *simOrg {
	t.Helper()
	org := newSimOrg(t, opts)
	if len(scopes) == 0 {
		scopes = []string{"okta.logs.read"}
	}
	org.sim.RegisterClient(testClientID, testKID, key.signer.Public(), scopes...)
	return org
}

func oauthInputConf(org *simOrg, keyFile, oauthExtra, extra string) string {
	return fmt.Sprintf(`
okta_system_log:
  org_url: %s
  oauth:
    client_id: %s
    private_key_file: %s
    key_id: %s
%s
  poll_interval: 200ms
  initial_lookback: 24h
  backoff:
    initial_interval: 50ms
    max_interval: 500ms
%s`, org.srv.URL, testClientID, keyFile, testKID, oauthExtra, extra)
}

// startOAuthPipeline runs the pipeline and, after it stops, checks that no
// secret reached the logs.
func startOAuthPipeline(t *testing.T, conf string, key testKey, c *collector) *pipeline {
	t.Helper()
	var p *pipeline
	t.Cleanup(func() { // runs after startPipeline's cleanup has stopped the stream
		assertNoSecrets(t, p.logs.String(), key)
	})
	p = startPipeline(t, conf, "", c)
	return p
}

// apiRequests are the simulator's /api/v1/logs requests.
func apiRequests(org *simOrg) (api, token []oktasim.Request) {
	for _, r := range org.sim.Requests() {
		switch {
		case strings.Contains(r.URL, oktasim.TokenPath):
			token = append(token, r)
		default:
			api = append(api, r)
		}
	}
	return api, token
}

func TestOAuthBearerToken(t *testing.T) {
	key := newRSAKey(t)
	org := newOAuthOrg(t, oktasim.Options{RateLimit: 1000}, key)
	want := org.backlog(500)
	c := &collector{}
	p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), "", "  limit: 100"), key, c)
	c.waitFor(t, len(want))
	time.Sleep(300 * time.Millisecond)
	assertExactlyOnce(t, c, want)

	st := org.sim.OAuthStats()
	if st.TokenRequests != 1 || st.TokensIssued != 1 || st.DPoPTokensIssued != 0 {
		t.Fatalf("want one Bearer token from one token request: %+v", st)
	}
	api, _ := apiRequests(org)
	for _, r := range api {
		if r.Status != 200 {
			t.Fatalf("API request %s answered %d", r.URL, r.Status)
		}
	}
	if st.BearerAccepted != len(api) || st.APIProofsAccepted != 0 {
		t.Fatalf("%d API requests, %d Bearer tokens accepted: %+v", len(api), st.BearerAccepted, st)
	}
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", p.logs.String())
	}
}

func TestOAuthDPoPWithNonceChallenges(t *testing.T) {
	for _, mode := range []string{"auto", "always"} {
		t.Run(mode, func(t *testing.T) {
			key := newECKey(t)
			org := newOAuthOrg(t, oktasim.Options{RateLimit: 1000, RequireDPoP: true, DPoPNonces: true}, key)
			want := org.backlog(300)
			c := &collector{}
			p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), "    dpop: "+mode, "  limit: 100"), key, c)
			c.waitFor(t, len(want))

			// A new nonce mid-stream: the next API call is challenged and retried.
			org.sim.RotateDPoPNonce()
			more := org.backlog(150)
			c.waitFor(t, len(want)+len(more))
			time.Sleep(300 * time.Millisecond)
			assertExactlyOnce(t, c, append(want, more...))

			st := org.sim.OAuthStats()
			wantTokenReqs := map[string]int{"auto": 3, "always": 2}[mode] // (plain →) proof → proof with nonce
			if st.TokenRequests != wantTokenReqs || st.DPoPTokensIssued != 1 || st.TokenErrors["use_dpop_nonce"] != 1 {
				t.Fatalf("token endpoint: %+v, want %d requests ending in one DPoP token", st, wantTokenReqs)
			}
			if mode == "auto" {
				if st.TokenErrors["invalid_dpop_proof"] != 1 {
					t.Fatalf("auto should detect DPoP from one invalid_dpop_proof: %+v", st)
				}
				waitLog(t, p, "requires DPoP")
			}
			if st.ProofsRejected != (map[string]int{"auto": 1, "always": 0})[mode] {
				t.Fatalf("proofs rejected: %+v", st)
			}
			api, _ := apiRequests(org)
			challenged, ok := 0, 0
			for _, r := range api {
				switch r.Status {
				case 401:
					challenged++
				case 200:
					ok++
				default:
					t.Fatalf("API request answered %d", r.Status)
				}
			}
			// The first API call has no nonce yet, the one after the rotation a stale one.
			if challenged != 2 || st.NonceChallenges != 3 || st.APIProofsAccepted != ok {
				t.Fatalf("%d challenged, %d ok API requests; stats %+v", challenged, ok, st)
			}
			if strings.Contains(p.logs.String(), "level=ERROR") {
				t.Fatalf("errors logged:\n%s", p.logs.String())
			}
		})
	}
}

func TestOAuthTokenExpiryMidBacklog(t *testing.T) {
	key := newECKey(t)
	// 10 requests a second: 30 pages take about 3 s, three token lifetimes.
	org := newOAuthOrg(t, oktasim.Options{RateLimit: 10, RateWindow: time.Second, RequireDPoP: true, TokenTTL: time.Second}, key)
	want := org.backlog(3000)
	c := &collector{}
	p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), "    dpop: always", "  limit: 100\n  rate_limit_share: 1"), key, c)
	c.waitFor(t, len(want))
	time.Sleep(300 * time.Millisecond)
	assertExactlyOnce(t, c, want)
	st := org.sim.OAuthStats()
	if st.TokensIssued < 3 {
		t.Fatalf("%d tokens over ~3 s of 1 s tokens: not renewed", st.TokensIssued)
	}
	if st.TokensRejected != 0 || st.ProofsRejected != 0 {
		t.Fatalf("tokens must be renewed before they expire: %+v", st)
	}
	t.Logf("3,000 events over %d API requests with %d tokens of 1 s", st.APIProofsAccepted, st.TokensIssued)
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", p.logs.String())
	}
}

func TestOAuthRevokedTokenIsRenewedOnce(t *testing.T) {
	key := newRSAKey(t)
	org := newOAuthOrg(t, oktasim.Options{RateLimit: 10, RateWindow: time.Second, RequireDPoP: true}, key)
	want := org.backlog(2000)
	c := &collector{}
	p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), "", "  limit: 100\n  rate_limit_share: 1"), key, c)
	c.waitFor(t, 500)
	org.sim.RevokeTokens()
	c.waitFor(t, len(want))
	time.Sleep(300 * time.Millisecond)
	assertExactlyOnce(t, c, want)
	st := org.sim.OAuthStats()
	if st.TokensRejected != 1 || st.DPoPTokensIssued != 2 {
		t.Fatalf("want one refused token and one renewal: %+v", st)
	}
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Fatalf("a renewed token must not be reported:\n%s", p.logs.String())
	}
}

func TestOAuthFailuresGiveOneClearError(t *testing.T) {
	cases := []struct {
		name       string
		opts       oktasim.Options
		register   func(t *testing.T, sim *oktasim.Sim, key testKey)
		oauthExtra string
		want       []string // all in the one error
		tokenReqs  int
		apiReqs    int
	}{
		{
			name: "wrong key",
			register: func(t *testing.T, sim *oktasim.Sim, _ testKey) {
				sim.RegisterClient(testClientID, testKID, newECKey(t).signer.Public(), "okta.logs.read")
			},
			want:      []string{"could not verify the client assertion", "oauth.private_key", "invalid_client", "HTTP 401"},
			tokenReqs: 1,
		},
		{
			name: "wrong client_id",
			register: func(t *testing.T, sim *oktasim.Sim, key testKey) {
				sim.RegisterClient("0oaSomeOtherApp", testKID, key.signer.Public(), "okta.logs.read")
			},
			want:      []string{"does not know oauth.client_id", testClientID, "invalid_client"},
			tokenReqs: 1,
		},
		{
			name: "missing scope",
			register: func(t *testing.T, sim *oktasim.Sim, key testKey) {
				sim.RegisterClient(testClientID, testKID, key.signer.Public(), "okta.users.read")
			},
			want:      []string{"did not grant", "okta.logs.read", "Okta API Scopes", "invalid_scope"},
			tokenReqs: 1,
		},
		{
			name: "token without okta.logs.read",
			register: func(t *testing.T, sim *oktasim.Sim, key testKey) {
				sim.RegisterClient(testClientID, testKID, key.signer.Public(), "okta.users.read")
			},
			oauthExtra: "    scopes: [okta.users.read]",
			want:       []string{"refused service app " + testClientID + " access to the System Log", "okta.logs.read", "insufficient_scope", "HTTP 403"},
			tokenReqs:  1,
			apiReqs:    1,
		},
		{
			name: "expired assertion",
			// Okta's clock is 10 minutes ahead: an assertion valid for 5 is already expired.
			opts:      oktasim.Options{Now: func() time.Time { return time.Now().Add(10 * time.Minute) }},
			want:      []string{"client assertion", "as expired or not yet valid", "Okta's clock is", "ahead of this host's", "invalid_client"},
			tokenReqs: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := newECKey(t)
			org := newSimOrg(t, tc.opts)
			if tc.register != nil {
				tc.register(t, org.sim, key)
			} else {
				org.sim.RegisterClient(testClientID, testKID, key.signer.Public(), "okta.logs.read")
			}
			org.backlog(10)
			c := &collector{}
			p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), tc.oauthExtra, ""), key, c)
			waitLog(t, p, tc.want[0])
			time.Sleep(time.Second)
			logs := p.logs.String()
			var line string
			n := 0
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, tc.want[0]) {
					line = l
					n++
				}
			}
			if n != 1 {
				t.Fatalf("the error was logged %d times within a second, want once:\n%s", n, logs)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("the error does not say %q:\n%s", w, line)
				}
			}
			api, token := apiRequests(org)
			if len(token) != tc.tokenReqs || len(api) != tc.apiReqs {
				t.Errorf("%d token and %d API requests, want %d and %d: must not hammer", len(token), len(api), tc.tokenReqs, tc.apiReqs)
			}
			if c.len() != 0 {
				t.Error("events delivered")
			}
			t.Logf("%s", line)
		})
	}
}

func TestOAuthDPoPBacklog20k(t *testing.T) {
	key := newRSAKey(t)
	org := newOAuthOrg(t, oktasim.Options{RateLimit: 1000, RequireDPoP: true, DPoPNonces: true}, key)
	want := org.backlog(testkit.Scaled(20_000, 4))
	c := &collector{}
	start := time.Now()
	p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), "    dpop: always", "  limit: 1000\n  rate_limit_share: 1"), key, c)
	c.waitFor(t, len(want))
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	assertExactlyOnce(t, c, want)
	c.mu.Lock()
	for i := range want {
		if c.uuids[i] != want[i] {
			c.mu.Unlock()
			t.Fatalf("event %d out of order", i)
		}
	}
	c.mu.Unlock()

	st := org.sim.OAuthStats()
	api, _ := apiRequests(org)
	pages := 0
	for i, r := range api {
		switch {
		case r.Status == 200:
			pages++
			if i > 0 && api[i-1].Status == 200 && !strings.Contains(r.URL, "after=") {
				t.Errorf("request %d did not follow a next link: %s", i, r.URL)
			}
		case r.Status == 401 && i == 0:
			// the first call carries no nonce yet
		default:
			t.Fatalf("API request %d (%s) answered %d", i, r.URL, r.Status)
		}
	}
	if pages < len(want)/1000+1 || st.APIProofsAccepted != pages || st.ProofsRejected != 0 || st.TokensRejected != 0 {
		t.Fatalf("%d pages, stats %+v: every page's proof must be accepted", pages, st)
	}
	t.Logf("%d events in %v over %d pages; %d API proofs accepted, %d token-endpoint proofs, %d nonce challenges, 0 rejected",
		len(want), elapsed.Round(time.Millisecond), pages, st.APIProofsAccepted, st.TokenProofsAccepted, st.NonceChallenges)
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", p.logs.String())
	}
}

func TestOAuthInlineKeyAndBadConfig(t *testing.T) {
	key := newECKey(t)
	// An inline PEM with \n escapes, as it arrives from an environment variable.
	escaped := strings.ReplaceAll(strings.TrimSpace(string(key.pem)), "\n", `\n`)
	org := newOAuthOrg(t, oktasim.Options{RateLimit: 1000}, key)
	want := org.backlog(20)
	c := &collector{}
	conf := fmt.Sprintf(`
okta_system_log:
  org_url: %s
  oauth:
    client_id: %s
    private_key: '%s'
  poll_interval: 200ms
`, org.srv.URL, testClientID, escaped)
	startOAuthPipeline(t, conf, key, c)
	c.waitFor(t, len(want))

	pubDER, _ := x509.MarshalPKIXPublicKey(key.signer.Public())
	pubPEM := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), "\n", `\n`)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := strings.ReplaceAll(string(pemKey(t, small).pem), "\n", `\n`)
	cases := map[string]string{
		"api_token: x\n  oauth:\n    client_id: a\n    private_key: b": "set either api_token or oauth, not both",
		"poll_interval: 1m":                             "set api_token",
		"oauth:\n    client_id: ''\n    private_key: x": "oauth.client_id is empty",
		"oauth:\n    client_id: a":                      "set private_key",
		"oauth:\n    client_id: a\n    private_key: x\n    private_key_file: /nope":                 "not both",
		"oauth:\n    client_id: a\n    private_key_file: /does/not/exist.pem":                       "no such file",
		"oauth:\n    client_id: a\n    private_key: not-a-key":                                      "not a PEM block or a JWK",
		"oauth:\n    client_id: a\n    private_key: '" + pubPEM + "'":                               "not the private key",
		"oauth:\n    client_id: a\n    private_key: '" + smallPEM + "'":                             "at least 2048",
		"oauth:\n    client_id: a\n    private_key: '" + escaped + "'\n    dpop: sometimes":         "not a valid option",
		"oauth:\n    client_id: a\n    private_key: '" + escaped + "'\n    scopes: []":              "oauth.scopes is empty",
		"oauth:\n    client_id: a\n    private_key: '{\"kty\":\"EC\",\"crv\":\"P-256\"}'":           "JWK does not parse",
		"api_token: ''\n  oauth:\n    client_id: a\n    private_key: '" + escaped + "'\n  limit: 0": "limit must be between",
	}
	for conf, want := range cases {
		full := "okta_system_log:\n  org_url: https://acme.okta.com\n  " + conf
		b := service.NewStreamBuilder()
		err := b.AddInputYAML(full)
		if err == nil {
			_ = b.AddBatchConsumerFunc(func(context.Context, service.MessageBatch) error { return nil })
			var s *service.Stream
			if s, err = b.Build(); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
				err = s.Run(ctx)
				cancel()
			}
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v, want an error saying %q", conf, err, want)
			continue
		}
		for _, m := range key.secretMarkers()[:2] {
			if strings.Contains(err.Error(), m) {
				t.Errorf("the error quotes the key: %v", err)
			}
		}
	}
}
