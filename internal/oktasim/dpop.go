package oktasim

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// proofWindow is how far a DPoP proof's iat may be from the simulator's
// clock, either way.
const proofWindow = time.Minute

// signingAlgs are the JWS algorithms accepted for client assertions and DPoP
// proofs, as Okta advertises them.
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

// proofError is a refused DPoP proof: invalid_dpop_proof, or use_dpop_nonce
// when only the nonce is missing or stale.
type proofError struct {
	code, description string
}

func invalidProof(desc string) *proofError {
	return &proofError{code: "invalid_dpop_proof", description: desc}
}

// checkProof validates the request's DPoP proof (RFC 9449 §4.3): one DPoP
// header holding a JWS of typ dpop+jwt, signed with an asymmetric algorithm
// by the public JWK in its header; htm the request's method; htu the
// request's URL without query and fragment; iat within proofWindow; jti never
// seen before; ath the hash of accessToken when one is presented; and nonce
// the server's current nonce when nonces are required. It returns the JWK
// thumbprint (jkt) tokens are bound to.
func (s *Sim) checkProof(r *http.Request, wantHTU, accessToken string, nonce string) (string, *proofError) {
	values := r.Header.Values("DPoP")
	if len(values) == 0 {
		return "", invalidProof("The DPoP proof JWT header is missing.")
	}
	if len(values) > 1 {
		return "", invalidProof("Multiple DPoP proof JWT headers were provided.")
	}
	jws, err := jose.ParseSignedCompact(values[0], signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", invalidProof("The DPoP proof JWT is malformed or uses an unsupported algorithm.")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", invalidProof("The DPoP proof JWT 'typ' header must be 'dpop+jwt'.")
	}
	jwk := hdr.JSONWebKey
	if jwk == nil || !jwk.IsPublic() || !jwk.Valid() {
		return "", invalidProof("The DPoP proof JWT 'jwk' header must be a public key.")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return "", invalidProof("The DPoP proof JWT signature is invalid.")
	}
	var c struct {
		JTI   string   `json:"jti"`
		HTM   string   `json:"htm"`
		HTU   string   `json:"htu"`
		IAT   *float64 `json:"iat"`
		ATH   string   `json:"ath"`
		Nonce string   `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", invalidProof("The DPoP proof JWT claims are malformed.")
	}
	if c.HTM != r.Method {
		return "", invalidProof("'htm' claim in the DPoP proof JWT is invalid.")
	}
	if !sameHTU(c.HTU, wantHTU) {
		return "", invalidProof("'htu' claim in the DPoP proof JWT is invalid.")
	}
	now := s.now()
	if c.IAT == nil {
		return "", invalidProof("'iat' claim is missing from the DPoP proof JWT.")
	}
	iat := time.Unix(int64(*c.IAT), 0)
	if iat.Before(now.Add(-proofWindow)) || iat.After(now.Add(proofWindow)) {
		return "", invalidProof("'iat' claim in the DPoP proof JWT is too far from the current time.")
	}
	if c.JTI == "" {
		return "", invalidProof("'jti' claim is missing from the DPoP proof JWT.")
	}
	if !s.oauth.useJTI("dpop:"+c.JTI, now, iat.Add(proofWindow)) {
		return "", invalidProof("'jti' claim in the DPoP proof JWT was used before.")
	}
	if accessToken != "" && c.ATH != accessTokenHash(accessToken) {
		return "", invalidProof("'ath' claim in the DPoP proof JWT is invalid.")
	}
	if nonce != "" && c.Nonce != nonce {
		return "", &proofError{code: "use_dpop_nonce", description: "Server requires nonce in DPoP proof."}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", invalidProof("The DPoP proof JWT 'jwk' header has no thumbprint.")
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// sameHTU compares a proof's htu with the request URL: scheme and host case
// insensitively, path exactly; an htu with a query or fragment never matches
// (the mistake that broke SDKs on every page after the first).
func sameHTU(claim, want string) bool {
	cu, err := url.Parse(claim)
	if err != nil || cu.RawQuery != "" || cu.Fragment != "" || strings.Contains(claim, "?") {
		return false
	}
	wu, err := url.Parse(want)
	if err != nil {
		return false
	}
	return strings.EqualFold(cu.Scheme, wu.Scheme) && strings.EqualFold(cu.Host, wu.Host) && cu.EscapedPath() == wu.EscapedPath()
}

func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
