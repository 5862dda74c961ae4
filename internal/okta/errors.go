package okta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// FailureKind says how a caller reacts to a failed request.
type FailureKind int

const (
	// FailTransient: 5xx, network errors, timeouts, malformed bodies. Retry the
	// same link with backoff; nothing is skipped.
	FailTransient FailureKind = iota
	// FailRateLimited: 429. Wait until the window resets, then retry the same link.
	FailRateLimited
	// FailConfig: 401, 403, 400, 404 and other answers that retrying soon will
	// not fix. Report clearly and retry slowly, so a token fixed in Okta (or a
	// permission granted) recovers without a restart, and Okta is not hammered.
	FailConfig
)

// RequestError is a failed System Log (or token) request, classified.
type RequestError struct {
	Kind    FailureKind
	Status  int      // HTTP status, 0 for transport errors
	Code    string   // Okta errorCode, e.g. E0000011
	Summary string   // Okta errorSummary
	ErrorID string   // Okta errorId, quoted to Okta support
	Rate    RateInfo // the rate headers of the answer
	// Reason is set for a 200 that could not be used: one of the Reason
	// constants.
	Reason string
	msg    string // what went wrong, in words an admin can act on
	cause  error
}

// Unreachable reports a request that got no answer at all (DNS, refused or
// reset connections, TLS failures, timeouts).
func (e *RequestError) Unreachable() bool {
	return e.Kind == FailTransient && e.Status == 0 && e.Reason == ""
}

func (e *RequestError) Error() string {
	var b strings.Builder
	b.WriteString(e.msg)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s: %s", e.Code, e.Summary)
		}
		if e.ErrorID != "" {
			fmt.Fprintf(&b, ", errorId %s", e.ErrorID)
		}
		b.WriteString(")")
	}
	if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	return b.String()
}

func (e *RequestError) Unwrap() error { return e.cause }

// oktaErrorBody is the shape of every Okta API error response.
type oktaErrorBody struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
	ErrorID      string `json:"errorId"`
}

// statusError classifies a non-200 response. body is at most a few KiB of it.
func statusError(status int, body []byte, org string) *RequestError {
	var ob oktaErrorBody
	_ = json.Unmarshal(body, &ob) // a non-Okta body (a proxy's HTML) just leaves it empty
	e := &RequestError{Status: status, Code: ob.ErrorCode, Summary: ob.ErrorSummary, ErrorID: ob.ErrorID}
	switch {
	case status == http.StatusUnauthorized:
		e.Kind = FailConfig
		e.msg = "Okta rejected the credentials for " + org + ": check that api_token is a valid, active API token of this org (tokens expire after 30 days unused and die with their admin)"
	case status == http.StatusForbidden:
		e.Kind = FailConfig
		e.msg = "Okta refused to read the System Log of " + org + ": the token's admin needs a role that can read the System Log (e.g. Read-only Administrator); for OAuth, the access token needs the okta.logs.read scope"
	case status == http.StatusTooManyRequests:
		e.Kind = FailRateLimited
		e.msg = "Okta rate limit reached for " + org
	case status == http.StatusBadRequest:
		e.Kind = FailConfig
		e.msg = "Okta rejected the System Log query of " + org + ": check filter, q and limit"
	case status == http.StatusNotFound:
		e.Kind = FailConfig
		e.msg = "Okta has no System Log API at " + org + ": check org_url"
	case status >= 500:
		e.Kind = FailTransient
		e.msg = "Okta server error from " + org
	default:
		e.Kind = FailConfig
		e.msg = fmt.Sprintf("unexpected HTTP %d from %s", status, org)
	}
	return e
}

func transientError(msg string, cause error) *RequestError {
	return &RequestError{Kind: FailTransient, msg: msg, cause: cause}
}

// Reasons a 200 response could not be used, or could only be used in part:
// RequestError.Reason, and the reason label of okta_response_errors_total.
const (
	ReasonEmptyBody    = "empty_body"
	ReasonNotJSONArray = "not_json_array" // HTML login pages, proxies' error pages
	ReasonInvalidJSON  = "invalid_json"   // truncated or corrupt
	ReasonInvalidEvent = "invalid_event"
	// ReasonOddField: an event whose uuid, eventType or published is neither
	// a string nor null (Event.BadField); the event is passed on with that
	// metadata empty.
	ReasonOddField    = "non_string_field"
	ReasonTooLarge    = "too_large"
	ReasonTooDeep     = "too_deep"
	ReasonBadNext     = "bad_next_link"
	ReasonForeignNext = "foreign_next_link"
	// ReasonMissingNext: a page without a next link; the caller asks for
	// the same link again.
	ReasonMissingNext = "missing_next_link"
)

// malformed is a 200 whose body or links cannot be used: retried like a 5xx.
func malformed(reason, msg string, cause error) *RequestError {
	return &RequestError{Kind: FailTransient, Reason: reason, msg: msg, cause: cause}
}
