package okta

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// authorizer adds credentials to a request bound for the org.
type authorizer interface {
	// authorize sets the request's credentials. It may first obtain them
	// (OAuth: a token request); its failures are *RequestError.
	authorize(req *http.Request) error
	// answered sees every response to an authorized request, before its
	// body is read, and says whether sending the request again at once, with
	// credentials authorize refreshes, can succeed.
	answered(resp *http.Response) retryHint
	// rejected rewords the error of a refused request (401, 403, 400) so it
	// names the cause in terms of this credential's settings.
	rejected(e *RequestError, h http.Header)
	// secrets are the credentials it sent lately, to redact from anything
	// logged (a server may echo them back).
	secrets() []string
}

// retryHint is why a refused request may succeed if sent again at once. The
// client acts on each hint at most once per request, so a credential Okta
// keeps refusing is reported, not hammered.
type retryHint int

const (
	noRetry        retryHint = iota
	retryWithNonce           // a DPoP nonce challenge: the nonce is now known
	retryRenewed             // the access token was refused: a new one will be fetched
	retryHints
)

// sswsToken authorizes with an Okta API token.
type sswsToken string

func (t sswsToken) authorize(req *http.Request) error {
	req.Header.Set("Authorization", "SSWS "+string(t))
	return nil
}

func (sswsToken) answered(*http.Response) retryHint { return noRetry }

// rejected keeps statusError's wording, which is about api_token.
func (sswsToken) rejected(*RequestError, http.Header) {}

func (t sswsToken) secrets() []string { return []string{string(t)} }

// String keeps the token out of any accidental %v.
func (sswsToken) String() string { return "SSWS [redacted]" }

// checkAPIToken refuses an API token Okta would refuse with a generic 401:
// one pasted with its scheme, or with whitespace inside.
func checkAPIToken(token string) error {
	scheme, _, found := strings.Cut(token, " ")
	if found && (strings.EqualFold(scheme, "SSWS") || strings.EqualFold(scheme, "Bearer")) {
		return fmt.Errorf("api_token starts with %q: set only the token itself, without the %s prefix (the input sends Authorization: SSWS <token>)", scheme+" ", scheme)
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("api_token contains whitespace or control characters: an Okta API token is one word; check how the secret was created (e.g. a Kubernetes secret made with echo, or a value pasted with a line break)")
	}
	return nil
}

// TrimValue removes what a secret mounted from a file or made with `echo`
// carries around a value: whitespace, and the trailing newline that Benthos'
// ${VAR} interpolation turns into the two characters \n (it escapes
// newlines in variables before parsing the YAML). No token, client id or URL
// ends with a backslash, so that reading is safe.
func TrimValue(s string) string {
	for {
		t := strings.TrimSpace(s)
		t = strings.TrimSuffix(t, `\n`)
		if t == s {
			return s
		}
		s = t
	}
}
