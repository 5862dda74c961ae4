package oktasim

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorize checks the request's credential. It is the one place that knows
// credential schemes, so OAuth access tokens (Bearer, DPoP) slot in here.
func (s *Sim) authorize(r *http.Request) *oktaError {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "SSWS"):
		if s.validSSWS(cred) {
			return nil
		}
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
