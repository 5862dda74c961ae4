package oktasim

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
)

// oktaError is Okta's error body. Every API error has this shape; errorLink
// repeats errorCode, and errorId is a per-response id Okta Support can trace.
type oktaError struct {
	status  int
	Code    string       `json:"errorCode"`
	Summary string       `json:"errorSummary"`
	Link    string       `json:"errorLink"`
	ID      string       `json:"errorId"`
	Causes  []errorCause `json:"errorCauses"`
}

type errorCause struct {
	Summary string `json:"errorSummary"`
}

func newOktaError(status int, code, summary string, causes ...string) *oktaError {
	e := &oktaError{status: status, Code: code, Summary: summary, Link: code, ID: errorID(), Causes: []errorCause{}}
	for _, c := range causes {
		e.Causes = append(e.Causes, errorCause{Summary: c})
	}
	return e
}

// The errors the System Log API answers with.
func errValidation(param, cause string) *oktaError {
	return newOktaError(http.StatusBadRequest, "E0000001", "Api validation failed: "+param, param+": "+cause)
}

func errInvalidToken() *oktaError {
	return newOktaError(http.StatusUnauthorized, "E0000011", "Invalid token provided")
}

func errForbidden() *oktaError {
	return newOktaError(http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
}

func errRateLimited() *oktaError {
	return newOktaError(http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
}

func errNotFound(path string) *oktaError {
	return newOktaError(http.StatusNotFound, "E0000007", "Not found: Resource not found: "+path+" (Resource)")
}

func errMethod() *oktaError {
	return newOktaError(http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
}

func errInternal(status int) *oktaError {
	return newOktaError(status, "E0000009", "Internal Server Error")
}

func errUnavailable() *oktaError {
	return newOktaError(http.StatusServiceUnavailable, "E0000010", "Service is in read only mode")
}

// write sends the error; the caller has set any other headers.
func (e *oktaError) write(w http.ResponseWriter) {
	writeJSON(w, e.status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types reach here; failing to encode them is a bug.
		panic("oktasim: encoding response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorID mimics Okta's ids: "oae" and 19 base62 characters.
func errorID() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 19)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "oae" + string(b)
}
