package okta

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// dpopKey is the ephemeral key DPoP proofs (RFC 9449) are signed with. One is
// made per process and never leaves it: access tokens bound to it are useless
// to anyone who copies them.
type dpopKey struct {
	signer jose.Signer
}

func newDPoPKey() (*dpopKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the DPoP key: %w", err)
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
	if err != nil {
		return nil, fmt.Errorf("preparing the DPoP key: %w", err)
	}
	return &dpopKey{signer: s}, nil
}

// String keeps the key out of any accidental %v.
func (*dpopKey) String() string { return "DPoP key [redacted]" }

// dpopClaims is a DPoP proof's payload.
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// proof signs a DPoP proof for one request. accessToken is empty on token
// requests; on API calls its hash binds the proof to it (ath).
func (k *dpopKey) proof(method string, u *url.URL, accessToken, nonce string, now time.Time) (string, error) {
	c := dpopClaims{
		JTI:   randomID(),
		HTM:   method,
		HTU:   htu(u),
		IAT:   now.Unix(),
		Nonce: nonce,
	}
	if accessToken != "" {
		c.ATH = accessTokenHash(accessToken)
	}
	s, err := jwt.Signed(k.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing the DPoP proof: %w", err)
	}
	return s, nil
}

// htu is the request URL as a DPoP proof names it: scheme, host and path,
// without query or fragment. Next links carry the after cursor in the query;
// a proof that kept it would be refused on every page but the first.
func htu(u *url.URL) string {
	v := url.URL{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Host), Path: u.Path, RawPath: u.RawPath}
	if v.Path == "" {
		v.Path = "/"
	}
	return v.String()
}

// accessTokenHash is ath: base64url(SHA-256(token)), unpadded.
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// randomID is a 128-bit random jti.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// authChallenge is one WWW-Authenticate challenge: its scheme and params.
type authChallenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads WWW-Authenticate values such as
// `DPoP algs="ES256", error="use_dpop_nonce", error_description="..."`.
// It is lenient: Okta's values are simple, and a value it cannot read only
// loses the hint it carried.
func parseChallenges(values []string) []authChallenge {
	var out []authChallenge
	for _, v := range values {
		s := strings.TrimSpace(v)
		for s != "" {
			// scheme
			i := strings.IndexAny(s, " ,")
			scheme := s
			if i >= 0 {
				scheme, s = s[:i], strings.TrimLeft(s[i:], " ,")
			} else {
				s = ""
			}
			ch := authChallenge{scheme: scheme, params: map[string]string{}}
			// params until the next bare token (a new scheme)
			for s != "" {
				eq := strings.IndexByte(s, '=')
				sp := strings.IndexAny(s, " ,")
				if eq < 0 || (sp >= 0 && sp < eq) {
					break // a new scheme starts here
				}
				name := strings.ToLower(strings.TrimSpace(s[:eq]))
				s = strings.TrimLeft(s[eq+1:], " ")
				var val string
				if strings.HasPrefix(s, `"`) {
					var b strings.Builder
					j := 1
					for ; j < len(s); j++ {
						if s[j] == '\\' && j+1 < len(s) {
							j++
							b.WriteByte(s[j])
							continue
						}
						if s[j] == '"' {
							break
						}
						b.WriteByte(s[j])
					}
					val = b.String()
					if j < len(s) {
						j++
					}
					s = s[j:]
				} else {
					j := strings.IndexAny(s, " ,")
					if j < 0 {
						j = len(s)
					}
					val, s = s[:j], s[j:]
				}
				ch.params[name] = val
				s = strings.TrimLeft(s, " ,")
			}
			out = append(out, ch)
		}
	}
	return out
}

// challengeError returns the error and error_description of the first
// challenge that has an error.
func challengeError(values []string) (scheme, code, description string) {
	for _, ch := range parseChallenges(values) {
		if e := ch.params["error"]; e != "" {
			return ch.scheme, e, ch.params["error_description"]
		}
	}
	return "", "", ""
}
