package okta

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// tokenPath is the org authorization server's token endpoint: the only
	// one that issues tokens with okta.* scopes.
	tokenPath = "/oauth2/v1/token"
	// assertionLifetime is how long a client assertion is valid. Okta allows
	// up to an hour; each token request signs a new one.
	assertionLifetime = 5 * time.Minute
	// maxRenewAhead caps how long before expiry a token is renewed.
	maxRenewAhead       = time.Minute
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// OAuthConfig is an Okta OAuth 2.0 service app's credentials (an API
// Services app using "Public key / Private key" client authentication).
type OAuthConfig struct {
	ClientID string
	// KeyID is the registered public key's KID, sent as the client
	// assertion's kid; "" sends none.
	KeyID string
	// Key is the app's private key, as ParsePrivateKey returns it.
	Key crypto.Signer
	// Scopes are requested for the access token; reading the System Log
	// needs LogsScope.
	Scopes []string
	DPoP   DPoPMode
}

// DPoPMode says when access tokens are DPoP-bound (RFC 9449).
type DPoPMode string

const (
	// DPoPAuto requests Bearer tokens until Okta answers that the app
	// requires DPoP, then DPoP-bound ones for good.
	DPoPAuto DPoPMode = "auto"
	// DPoPAlways sends a proof from the first token request on.
	DPoPAlways DPoPMode = "always"
	// DPoPNever uses Bearer tokens only.
	DPoPNever DPoPMode = "never"
)

// LogsScope is the only scope reading the System Log needs.
const LogsScope = "okta.logs.read"

// oauthDeps are what an oauthAuth shares with its Client.
type oauthDeps struct {
	http      *http.Client
	log       Logger
	clock     Clock
	userAgent string
}

// oauthAuth authorizes System Log requests with access tokens of an Okta
// OAuth 2.0 service app: client credentials with a private_key_jwt client
// assertion, optionally DPoP-bound. Tokens are fetched on first use, cached,
// and renewed shortly before they expire.
type oauthAuth struct {
	clientID  string
	scopes    []string
	mode      DPoPMode
	tokenURL  *url.URL
	org       string // host, for messages
	assertion jose.Signer
	proofKey  *dpopKey
	oauthDeps

	mu      sync.Mutex
	useDPoP bool   // forced, or detected from the token endpoint's answer
	asNonce string // latest DPoP-Nonce from the token endpoint
	rsNonce string // latest DPoP-Nonce from the API
	tok     *accessToken
	sent    secretRing // recent client assertions and DPoP proofs, for redaction
	tokens  secretRing // recent access tokens (renewed rarely: kept apart from the many proofs)
}

// accessToken is a cached access token. Its value never leaves this package
// except in the Authorization header.
type accessToken struct {
	value   string
	dpop    bool // token_type DPoP: send proofs with it
	renewAt time.Time
}

func (*accessToken) String() string { return "access token [redacted]" }

func newOAuthAuth(org *url.URL, s OAuthConfig, deps oauthDeps) (*oauthAuth, error) {
	switch {
	case s.ClientID == "":
		return nil, errors.New("oauth.client_id is empty")
	case s.Key == nil:
		return nil, errors.New("oauth needs the service app's private key")
	case len(s.Scopes) == 0:
		return nil, fmt.Errorf("oauth.scopes is empty: reading the System Log needs %s", LogsScope)
	}
	switch s.DPoP {
	case DPoPAuto, DPoPAlways, DPoPNever:
	default:
		return nil, fmt.Errorf("oauth.dpop must be auto, always or never, got %q", s.DPoP)
	}
	alg := assertionAlgorithm(s.Key)
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: alg,
		Key:       jose.JSONWebKey{Key: s.Key, KeyID: s.KeyID, Algorithm: string(alg)},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("oauth.private_key cannot sign %s client assertions: %w", alg, err)
	}
	proofKey, err := newDPoPKey()
	if err != nil {
		return nil, err
	}
	u := *org
	u.Path = tokenPath
	u.RawQuery = ""
	return &oauthAuth{
		clientID:  s.ClientID,
		scopes:    s.Scopes,
		mode:      s.DPoP,
		tokenURL:  &u,
		org:       org.Host,
		assertion: signer,
		proofKey:  proofKey,
		useDPoP:   s.DPoP == DPoPAlways,
		oauthDeps: deps,
	}, nil
}

func (a *oauthAuth) secrets() []string { return append(a.tokens.list(), a.sent.list()...) }

func (a *oauthAuth) String() string {
	return fmt.Sprintf("OAuth service app %s [credentials redacted]", a.clientID)
}

// authorize sets Authorization (and DPoP) on a System Log request, fetching
// an access token first when none is cached or the cached one is due.
func (a *oauthAuth) authorize(req *http.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok == nil || !a.clock.Now().Before(a.tok.renewAt) {
		tok, err := a.requestToken(req.Context())
		if err != nil {
			return err
		}
		a.tok = tok
	}
	if !a.tok.dpop {
		req.Header.Set("Authorization", "Bearer "+a.tok.value)
		req.Header.Del("DPoP")
		return nil
	}
	proof, err := a.proofKey.proof(req.Method, req.URL, a.tok.value, a.rsNonce, a.clock.Now())
	if err != nil {
		return err
	}
	a.sent.add(proof)
	req.Header.Set("Authorization", "DPoP "+a.tok.value)
	req.Header.Set("DPoP", proof)
	return nil
}

// answered reads every answer to a request authorize prepared: it keeps the
// API's DPoP nonce, and says whether sending the request again at once can
// succeed: after a nonce challenge (with the new nonce), or after a 401 (with
// a renewed token). The client retries each hint at most once per request.
func (a *oauthAuth) answered(resp *http.Response) retryHint {
	a.mu.Lock()
	defer a.mu.Unlock()
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce != "" {
		a.rsNonce = nonce
	}
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
		return noRetry
	}
	_, code, _ := challengeError(resp.Header.Values("WWW-Authenticate"))
	if code == "use_dpop_nonce" {
		if nonce == "" {
			return noRetry
		}
		return retryWithNonce
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return noRetry
	}
	// The token was refused before its time (revoked, the app's keys or
	// grants changed, Okta's clock ahead of ours): drop it, if it is still
	// the cached one, so the retry fetches a new one.
	if a.tok != nil && resp.Request != nil && carries(resp.Request, a.tok) {
		a.tok = nil
	}
	return retryRenewed
}

func carries(req *http.Request, tok *accessToken) bool {
	_, cred, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	return subtle.ConstantTimeCompare([]byte(cred), []byte(tok.value)) == 1
}

// rejected rewrites the message of a refused System Log request in terms of
// the service app, naming the cause where Okta's answer tells it.
func (a *oauthAuth) rejected(e *RequestError, h http.Header) {
	scheme, code, desc := challengeError(h.Values("WWW-Authenticate"))
	detail := ""
	if code != "" {
		detail = fmt.Sprintf(" [%s error=%q", scheme, code)
		if desc != "" {
			detail += fmt.Sprintf(" %q", cleanDescription(desc))
		}
		detail += "]"
	}
	switch {
	case code == "invalid_dpop_proof" || code == "use_dpop_nonce":
		e.Kind = FailConfig
		e.msg = fmt.Sprintf("Okta rejected the DPoP proof of service app %s on the System Log of %s%s: check that this host's clock is right", a.clientID, a.org, detail)
	case e.Status == http.StatusUnauthorized:
		e.msg = fmt.Sprintf("Okta rejected the access token of service app %s for %s even after renewing it%s: check that the app is active and its access token was not revoked", a.clientID, a.org, detail)
	case e.Status == http.StatusForbidden:
		e.msg = fmt.Sprintf("Okta refused service app %s access to the System Log of %s%s: grant the app the %s scope (Okta API Scopes tab), keep it in oauth.scopes (now %v), and give the app an admin role that can read the System Log (e.g. Read-only Administrator)", a.clientID, a.org, detail, LogsScope, a.scopes)
	}
}

// tokenResponse is the token endpoint's 200 body.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthErrorBody is an OAuth 2.0 error (RFC 6749 §5.2).
type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// requestToken runs the client-credentials grant. In auto mode it starts
// without DPoP and switches for good when Okta says the app requires it; it
// answers one use_dpop_nonce challenge with the nonce Okta sent. Called with
// a.mu held.
func (a *oauthAuth) requestToken(parent context.Context) (*accessToken, error) {
	// Token requests are not System Log requests: they have their own rate
	// limit, and must not count against the System Log budget (whose trace
	// rides on the parent context).
	ctx, cancel := detach(parent)
	defer cancel()
	nonceRetried, switched := false, false
	for {
		sent := a.clock.Now()
		resp, body, err := a.postToken(ctx)
		if err != nil {
			if parent.Err() != nil {
				return nil, parent.Err()
			}
			return nil, transientError("OAuth token request to "+a.tokenURL.Host+" failed", scrubURLError(err))
		}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			a.asNonce = n
		}
		rate := parseRateHeaders(resp.Header, a.clock.Now())
		if resp.StatusCode == http.StatusOK {
			return a.acceptToken(body, sent, resp.StatusCode, rate)
		}
		var oe oauthErrorBody
		_ = json.Unmarshal(body, &oe)
		switch {
		case oe.Error == "use_dpop_nonce" && a.useDPoP && !nonceRetried && resp.Header.Get("DPoP-Nonce") != "":
			nonceRetried = true
			continue
		case (oe.Error == "invalid_dpop_proof" || oe.Error == "use_dpop_nonce") && !a.useDPoP && a.mode == DPoPAuto && !switched:
			switched = true
			a.useDPoP = true
			a.log.Infof("Okta requires DPoP for service app %s: using DPoP-bound access tokens", a.clientID)
			continue
		}
		e := a.tokenError(resp, oe)
		e.Rate = rate
		return nil, e
	}
}

// postToken sends one token request with a fresh client assertion (and
// proof). It returns at most 64 KiB of the body.
func (a *oauthAuth) postToken(ctx context.Context) (*http.Response, []byte, error) {
	assertion, err := a.clientAssertion()
	if err != nil {
		return nil, nil, err
	}
	form := url.Values{}
	form.Set("grant_type", "client_credentials")
	form.Set("scope", strings.Join(a.scopes, " "))
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", assertion)
	a.sent.add(assertion)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", a.userAgent)
	if a.useDPoP {
		proof, err := a.proofKey.proof(http.MethodPost, a.tokenURL, "", a.asNonce, a.clock.Now())
		if err != nil {
			return nil, nil, err
		}
		a.sent.add(proof)
		req.Header.Set("DPoP", proof)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// clientAssertion signs a private_key_jwt client assertion (RFC 7523).
func (a *oauthAuth) clientAssertion() (string, error) {
	now := a.clock.Now()
	claims := jwt.Claims{
		Issuer:   a.clientID,
		Subject:  a.clientID,
		Audience: jwt.Audience{a.tokenURL.String()},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
		ID:       randomID(),
	}
	s, err := jwt.Signed(a.assertion).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return s, nil
}

func (a *oauthAuth) acceptToken(body []byte, sent time.Time, status int, rate RateInfo) (*accessToken, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		e := transientError("Okta's token endpoint answered 200 without an access token", nil)
		e.Status, e.Rate = status, rate
		return nil, e
	}
	a.tokens.add(tr.AccessToken)
	tok := &accessToken{value: tr.AccessToken}
	switch {
	case strings.EqualFold(tr.TokenType, "DPoP"):
		tok.dpop = true
	case strings.EqualFold(tr.TokenType, "Bearer") || tr.TokenType == "":
	default:
		e := &RequestError{Kind: FailConfig, Status: status, Rate: rate,
			msg: fmt.Sprintf("Okta issued service app %s an access token of unsupported type %q", a.clientID, cleanDescription(tr.TokenType))}
		return nil, e
	}
	if a.useDPoP && !tok.dpop && a.mode == DPoPAlways {
		return nil, &RequestError{Kind: FailConfig, Status: status, Rate: rate,
			msg: fmt.Sprintf("oauth.dpop is always, but Okta issued service app %s a Bearer token: turn on \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" on the app, or set oauth.dpop to auto", a.clientID)}
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour // Okta's default for service apps
	}
	// Renew a little before expiry, measured from when the request was sent,
	// so a token is never presented after Okta considers it expired.
	tok.renewAt = sent.Add(ttl - min(maxRenewAhead, ttl/5))
	return tok, nil
}

// tokenError explains a refused token request: one message per cause, each
// naming what to fix. Okta's error and error_description are kept; the
// assertion, the key and any token never are.
func (a *oauthAuth) tokenError(resp *http.Response, oe oauthErrorBody) *RequestError {
	desc := cleanDescription(oe.Description)
	e := &RequestError{Kind: FailConfig, Status: resp.StatusCode, Code: oe.Error, Summary: desc}
	if oe.Error == "" {
		e.Code, e.Summary = "", ""
	}
	app := "service app " + a.clientID
	lower := strings.ToLower(desc)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Kind = FailRateLimited
		e.msg = "Okta rate limit reached on the token endpoint of " + a.org
	case resp.StatusCode >= 500:
		e.Kind = FailTransient
		e.msg = "Okta server error from the token endpoint of " + a.org
	case oe.Error == "invalid_client" && (strings.Contains(lower, "expired") || strings.Contains(lower, "future") ||
		strings.Contains(lower, "not yet valid") || strings.Contains(lower, "issued")):
		e.msg = fmt.Sprintf("Okta rejected the client assertion of %s as expired or not yet valid: this host's clock disagrees with Okta's%s; sync it (NTP)", app, skew(resp.Header, a.clock.Now()))
	case oe.Error == "invalid_client" && strings.Contains(lower, "client_id"):
		e.msg = fmt.Sprintf("Okta does not know oauth.client_id %q in %s: set it to the Client ID of the API Services app, from the same org as org_url", a.clientID, a.org)
	case oe.Error == "invalid_client" && (strings.Contains(lower, "signature") || strings.Contains(lower, "kid") || strings.Contains(lower, "key")):
		e.msg = fmt.Sprintf("Okta could not verify the client assertion of %s with the app's public keys: oauth.private_key must be the private half of a public key registered on the app (General → Public Keys), and oauth.key_id, when set, that key's KID", app)
	case oe.Error == "invalid_client":
		e.msg = fmt.Sprintf("Okta rejected the client authentication of %s: the app must use \"Public key / Private key\" client authentication with the public half of oauth.private_key registered", app)
	case oe.Error == "invalid_scope":
		e.msg = fmt.Sprintf("Okta did not grant %s the scopes %v: grant %s to the app on its Okta API Scopes tab", app, a.scopes, LogsScope)
	case oe.Error == "unauthorized_client" || oe.Error == "unsupported_grant_type":
		e.msg = fmt.Sprintf("%s may not use the client credentials grant: create an API Services app (Applications → Create App Integration → API Services)", app)
	case oe.Error == "invalid_dpop_proof" && a.mode == DPoPNever:
		e.msg = fmt.Sprintf("%s requires DPoP, but oauth.dpop is never: set it to auto or always", app)
	case oe.Error == "invalid_dpop_proof" || oe.Error == "use_dpop_nonce":
		e.msg = fmt.Sprintf("Okta rejected the DPoP proof of %s on the token endpoint: check that this host's clock is right%s", app, skew(resp.Header, a.clock.Now()))
	case oe.Error == "access_denied":
		e.msg = fmt.Sprintf("Okta denied %s an access token: check the app's assigned admin roles and policies", app)
	default:
		e.msg = fmt.Sprintf("Okta refused the token request of %s at %s", app, a.tokenURL.Host)
		if resp.StatusCode == http.StatusNotFound {
			e.msg += ": check org_url (the org authorization server's token endpoint is " + tokenPath + ")"
		}
	}
	return e
}

// skew describes how far Okta's clock (its Date header) is from ours.
func skew(h http.Header, now time.Time) string {
	d, ok := responseDate(h)
	if !ok {
		return ""
	}
	// Date has whole seconds: the true offset is up to a second above.
	off := (d.Sub(now) + 500*time.Millisecond).Round(time.Second)
	switch {
	case off > 2*time.Second:
		return fmt.Sprintf(" (Okta's clock is %v ahead of this host's)", off)
	case off < -2*time.Second:
		return fmt.Sprintf(" (Okta's clock is %v behind this host's)", -off)
	}
	return " (the clocks agree within a few seconds)"
}

// cleanDescription keeps an error_description printable and short.
func cleanDescription(s string) string {
	const n = 200
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// detach returns a context cancelled with parent but carrying none of its
// values (so no httptrace hooks).
func detach(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(parent, cancel)
	return ctx, func() { stop(); cancel() }
}
