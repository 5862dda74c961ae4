package oktasim

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenPath is the org authorization server's token endpoint.
const TokenPath = "/oauth2/v1/token"

// LogsScope is the scope GET /api/v1/logs requires of OAuth access tokens.
const LogsScope = "okta.logs.read"

// AccessTokenPrefix starts every access token the simulator issues, so tests
// can look for leaked tokens.
const AccessTokenPrefix = "oktasim_at_"

// DefaultTokenTTL is the access token lifetime when Options.TokenTTL is 0,
// Okta's for service apps.
const DefaultTokenTTL = time.Hour

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// OAuthStats counts what the token endpoint and the OAuth checks of
// /api/v1/logs did.
type OAuthStats struct {
	TokenRequests       int            // POSTs to the token endpoint
	TokensIssued        int            // of which answered with a token
	DPoPTokensIssued    int            // of which DPoP-bound
	TokenErrors         map[string]int // the others, by OAuth error code
	TokenProofsAccepted int            // DPoP proofs accepted on the token endpoint
	APIProofsAccepted   int            // DPoP proofs accepted on /api/v1/logs
	ProofsRejected      int            // DPoP proofs answered invalid_dpop_proof, anywhere
	NonceChallenges     int            // use_dpop_nonce answers, anywhere
	BearerAccepted      int            // Bearer tokens accepted on /api/v1/logs
	TokensRejected      int            // access tokens refused on /api/v1/logs (unknown, expired, revoked, wrong binding)
}

// oauthClient is a registered service app.
type oauthClient struct {
	keys   map[string]crypto.PublicKey // by kid ("" for a key registered without one)
	scopes []string
}

// issuedToken is what the simulator remembers of an access token.
type issuedToken struct {
	clientID string
	scopes   []string
	jkt      string // DPoP binding (cnf.jkt); "" for Bearer tokens
	expires  time.Time
}

// oauthState is the authorization server's state. Its zero value is ready.
type oauthState struct {
	mu       sync.Mutex
	clients  map[string]*oauthClient
	tokens   map[string]*issuedToken
	jtis     map[string]time.Time // used assertion and proof jtis, until they may be forgotten
	asNonce  string
	rsNonce  string
	stats    OAuthStats
	pruneAt  time.Time
	nonceGen int
}

// RegisterClient registers a service app's public key (RSA or ECDSA) under
// kid and grants it scopes. Calling it again for the same client adds a key
// and replaces the scopes.
func (s *Sim) RegisterClient(clientID, kid string, pub crypto.PublicKey, scopes ...string) {
	o := &s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.clients == nil {
		o.clients = map[string]*oauthClient{}
	}
	c := o.clients[clientID]
	if c == nil {
		c = &oauthClient{keys: map[string]crypto.PublicKey{}}
		o.clients[clientID] = c
	}
	c.keys[kid] = pub
	c.scopes = append([]string(nil), scopes...)
}

// RevokeTokens invalidates every access token issued so far, as deactivating
// and reactivating an app or rotating its keys does.
func (s *Sim) RevokeTokens() {
	o := &s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tokens = nil
}

// RotateDPoPNonce replaces the nonces the token endpoint and the API require
// when Options.DPoPNonces is set; proofs with the old ones are challenged.
func (s *Sim) RotateDPoPNonce() {
	o := &s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asNonce, o.rsNonce = newNonce(), newNonce()
}

// OAuthStats returns the OAuth counters.
func (s *Sim) OAuthStats() OAuthStats {
	o := &s.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.stats
	st.TokenErrors = map[string]int{}
	for k, v := range o.stats.TokenErrors {
		st.TokenErrors[k] = v
	}
	return st
}

func (o *oauthState) count(f func(*OAuthStats)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(&o.stats)
}

// nonces returns the current nonces, making them on first use.
func (o *oauthState) nonces() (as, rs string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.asNonce == "" {
		o.asNonce, o.rsNonce = newNonce(), newNonce()
	}
	return o.asNonce, o.rsNonce
}

// useJTI records a jti until forgetAfter and reports whether it was new.
func (o *oauthState) useJTI(jti string, now, forgetAfter time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.jtis == nil {
		o.jtis = map[string]time.Time{}
	}
	if now.After(o.pruneAt) {
		for k, t := range o.jtis {
			if now.After(t) {
				delete(o.jtis, k)
			}
		}
		for k, t := range o.tokens {
			if now.After(t.expires) {
				delete(o.tokens, k)
			}
		}
		o.pruneAt = now.Add(time.Minute)
	}
	if _, used := o.jtis[jti]; used {
		return false
	}
	o.jtis[jti] = forgetAfter
	return true
}

// oauthErr is an OAuth 2.0 error answer of the token endpoint.
type oauthErr struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthErr) write(w http.ResponseWriter) { writeJSON(w, e.status, e) }

func invalidClient(desc string) *oauthErr {
	return &oauthErr{status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
}

// serveToken is POST /oauth2/v1/token: the client-credentials grant with a
// private_key_jwt client assertion, optionally with a DPoP proof.
func (s *Sim) serveToken(w *statusWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	s.oauth.count(func(st *OAuthStats) { st.TokenRequests++ })
	tok, oerr := s.grant(w, r)
	if oerr != nil {
		s.oauth.count(func(st *OAuthStats) {
			if st.TokenErrors == nil {
				st.TokenErrors = map[string]int{}
			}
			st.TokenErrors[oerr.Code]++
		})
		oerr.write(w)
		return
	}
	w.accepted = true
	writeJSON(w, http.StatusOK, tok)
}

type tokenAnswer struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

func (s *Sim) grant(w http.ResponseWriter, r *http.Request) (*tokenAnswer, *oauthErr) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &oauthErr{status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "The token endpoint only accepts POST."}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return nil, &oauthErr{status: http.StatusBadRequest, Code: "invalid_request", Description: "The request must be an application/x-www-form-urlencoded POST."}
	}
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		return nil, &oauthErr{status: http.StatusBadRequest, Code: "unsupported_grant_type", Description: fmt.Sprintf("The authorization grant type %q is not supported by this simulator.", gt)}
	}
	if f.Get("client_assertion") == "" {
		return nil, invalidClient("Client authentication failed. Either the client or the client credentials are invalid.")
	}
	if f.Get("client_assertion_type") != jwtBearer {
		return nil, &oauthErr{status: http.StatusBadRequest, Code: "invalid_request", Description: "The client_assertion_type is invalid."}
	}
	now := s.now()
	tokenURL := s.origin(r) + TokenPath
	clientID, client, oerr := s.authenticateClient(f.Get("client_assertion"), f.Get("client_id"), tokenURL, now)
	if oerr != nil {
		return nil, oerr
	}
	requested := strings.Fields(f.Get("scope"))
	if len(requested) == 0 {
		return nil, &oauthErr{status: http.StatusBadRequest, Code: "invalid_scope", Description: "The authorization server resource does not have any configured default scopes, 'scope' must be provided."}
	}
	var missing []string
	for _, sc := range requested {
		if !slices.Contains(client.scopes, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		return nil, &oauthErr{status: http.StatusBadRequest, Code: "invalid_scope", Description: "The following scopes were requested but are not granted to the client: " + strings.Join(missing, " ") + "."}
	}
	jkt := ""
	if len(r.Header.Values("DPoP")) > 0 {
		nonce := ""
		if s.opts.DPoPNonces {
			nonce, _ = s.oauth.nonces()
		}
		var perr *proofError
		if jkt, perr = s.checkProof(r, tokenURL, "", nonce); perr != nil {
			s.countProofError(perr)
			if perr.code == "use_dpop_nonce" {
				w.Header().Set("DPoP-Nonce", nonce)
			}
			return nil, &oauthErr{status: http.StatusBadRequest, Code: perr.code, Description: perr.description}
		}
		s.oauth.count(func(st *OAuthStats) { st.TokenProofsAccepted++ })
	} else if s.opts.RequireDPoP {
		s.countProofError(invalidProof(""))
		return nil, &oauthErr{status: http.StatusBadRequest, Code: "invalid_dpop_proof", Description: "The DPoP proof JWT header is missing."}
	}
	ttl := s.opts.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	value := AccessTokenPrefix + randomString(32)
	o := &s.oauth
	o.mu.Lock()
	if o.tokens == nil {
		o.tokens = map[string]*issuedToken{}
	}
	o.tokens[value] = &issuedToken{clientID: clientID, scopes: requested, jkt: jkt, expires: now.Add(ttl)}
	o.stats.TokensIssued++
	typ := "Bearer"
	if jkt != "" {
		typ = "DPoP"
		o.stats.DPoPTokensIssued++
	}
	o.mu.Unlock()
	return &tokenAnswer{TokenType: typ, ExpiresIn: int64(ttl / time.Second), AccessToken: value, Scope: strings.Join(requested, " ")}, nil
}

// authenticateClient verifies a private_key_jwt client assertion (RFC 7523):
// signed by a key registered for its issuer, iss = sub = the client, aud the
// token endpoint, unexpired, at most an hour long, with a jti never used
// before.
func (s *Sim) authenticateClient(assertion, formClientID, tokenURL string, now time.Time) (string, *oauthClient, *oauthErr) {
	tok, err := jwt.ParseSigned(assertion, signingAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return "", nil, invalidClient("The client_assertion is not a valid signed JWT.")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" {
		return "", nil, invalidClient("The client_assertion token has no 'iss' claim.")
	}
	clientID := unverified.Issuer
	if formClientID != "" && formClientID != clientID {
		return "", nil, invalidClient("The 'client_id' parameter does not match the client_assertion issuer.")
	}
	o := &s.oauth
	o.mu.Lock()
	client := o.clients[clientID]
	var keys []crypto.PublicKey
	if client != nil {
		if kid := tok.Headers[0].KeyID; kid != "" {
			if k, ok := client.keys[kid]; ok {
				keys = append(keys, k)
			}
		} else {
			for _, k := range client.keys {
				keys = append(keys, k)
			}
		}
	}
	o.mu.Unlock()
	if client == nil {
		return "", nil, invalidClient("Invalid value for 'client_id' parameter.")
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if tok.Claims(k, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", nil, invalidClient("The client_assertion signature is invalid.")
	}
	switch {
	case claims.Subject != clientID:
		return "", nil, invalidClient("The client_assertion token's 'sub' claim must be the client_id.")
	case !claims.Audience.Contains(tokenURL):
		return "", nil, invalidClient("The audience claim for client_assertion must be the endpoint invoked for the request.")
	case claims.Expiry == nil:
		return "", nil, invalidClient("The client_assertion token must have an 'exp' claim.")
	case now.After(claims.Expiry.Time()):
		return "", nil, invalidClient("The client_assertion token is expired.")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(time.Minute)):
		return "", nil, invalidClient("The client_assertion token was issued in the future.")
	case claims.Expiry.Time().Sub(now) > time.Hour:
		return "", nil, invalidClient("The client_assertion token has an expiration too far into the future.")
	case claims.ID == "":
		return "", nil, invalidClient("The client_assertion token must have a 'jti' claim.")
	}
	if !o.useJTI("assertion:"+clientID+":"+claims.ID, now, claims.Expiry.Time()) {
		return "", nil, invalidClient("The client_assertion token has already been used.")
	}
	return clientID, client, nil
}

// authorizeOAuth checks an access token presented to /api/v1/logs with the
// Bearer or DPoP scheme, setting the WWW-Authenticate challenge and
// DPoP-Nonce headers its answer needs.
func (s *Sim) authorizeOAuth(w http.ResponseWriter, r *http.Request, scheme, value string) *oktaError {
	origin := s.origin(r)
	h := w.Header()
	challenge := func(code, desc string) {
		h.Set("WWW-Authenticate", fmt.Sprintf(`%s algs="%s", authorization_uri="%s/oauth2/v1/authorize", realm="%s", scope="%s", error="%s", error_description="%s", resource="%s"`,
			scheme, algList(), origin, origin, LogsScope, code, desc, LogsPath))
	}
	now := s.now()
	o := &s.oauth
	o.mu.Lock()
	tok := o.lookup(value)
	o.mu.Unlock()
	dpop := strings.EqualFold(scheme, "DPoP")
	switch {
	case tok == nil:
		challenge("invalid_token", "The access token is invalid.")
		o.count(func(st *OAuthStats) { st.TokensRejected++ })
		return errInvalidToken()
	case now.After(tok.expires):
		challenge("invalid_token", "The access token has expired.")
		o.count(func(st *OAuthStats) { st.TokensRejected++ })
		return errInvalidToken()
	case !dpop && tok.jkt != "":
		challenge("invalid_token", "The access token is DPoP-bound: present it with the DPoP scheme and a proof.")
		o.count(func(st *OAuthStats) { st.TokensRejected++ })
		return errInvalidToken()
	case dpop && tok.jkt == "":
		challenge("invalid_token", "The access token is not DPoP-bound: present it with the Bearer scheme.")
		o.count(func(st *OAuthStats) { st.TokensRejected++ })
		return errInvalidToken()
	}
	if dpop {
		nonce := ""
		if s.opts.DPoPNonces {
			_, nonce = o.nonces()
			h.Set("DPoP-Nonce", nonce)
		}
		jkt, perr := s.checkProof(r, origin+r.URL.Path, value, nonce)
		if perr == nil && subtle.ConstantTimeCompare([]byte(jkt), []byte(tok.jkt)) != 1 {
			perr = invalidProof("The DPoP proof key does not match the access token's binding.")
		}
		if perr != nil {
			s.countProofError(perr)
			challenge(perr.code, perr.description)
			if perr.code == "use_dpop_nonce" {
				return errInvalidToken()
			}
			return newOktaError(http.StatusBadRequest, "E0000011", "Invalid token provided")
		}
		o.count(func(st *OAuthStats) { st.APIProofsAccepted++ })
	} else {
		o.count(func(st *OAuthStats) { st.BearerAccepted++ })
	}
	if !slices.Contains(tok.scopes, LogsScope) {
		challenge("insufficient_scope", "The access token provided does not contain the required scopes.")
		return errForbidden()
	}
	return nil
}

func (o *oauthState) lookup(value string) *issuedToken {
	if !strings.HasPrefix(value, AccessTokenPrefix) {
		return nil
	}
	return o.tokens[value]
}

func (s *Sim) countProofError(e *proofError) {
	s.oauth.count(func(st *OAuthStats) {
		if e.code == "use_dpop_nonce" {
			st.NonceChallenges++
		} else {
			st.ProofsRejected++
		}
	})
}

func algList() string {
	names := make([]string, len(signingAlgs))
	for i, a := range signingAlgs {
		names[i] = string(a)
	}
	return strings.Join(names, " ")
}

func newNonce() string { return randomString(24) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
