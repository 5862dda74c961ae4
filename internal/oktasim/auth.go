package oktasim

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorize checks the request's credential. It is the one place that knows
// credential schemes: SSWS API tokens, and OAuth access tokens with the
// Bearer or DPoP scheme. It sets the challenge headers its answer needs on w.
func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) *oktaError {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "SSWS"):
		if s.validSSWS(cred) {
			return nil
		}
	case strings.EqualFold(scheme, "Bearer"), strings.EqualFold(scheme, "DPoP"):
		return s.authorizeOAuth(w, r, scheme, cred)
	}
	return errInvalidToken()
}

func (s *Sim) validSSWS(token string) bool {
	if token == "" {
		return false
	}
	if s.opts.Token == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Token)) == 1
}
