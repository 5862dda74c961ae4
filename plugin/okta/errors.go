package okta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// failureKind says how the poller reacts to a failed request.
type failureKind int

const (
	// failTransient: 5xx, network errors, timeouts, malformed bodies. Retry the
	// same link with backoff; nothing is skipped.
	failTransient failureKind = iota
	// failRateLimited: 429. Wait until the window resets, then retry the same link.
	failRateLimited
	// failConfig: 401, 403, 400, 404 and other answers that retrying soon will
	// not fix. Report clearly and retry slowly, so a token fixed in Okta (or a
	// permission granted) recovers without a restart, and Okta is not hammered.
	failConfig
)

// requestError is a failed System Log request.
type requestError struct {
	kind    failureKind
	status  int      // HTTP status, 0 for transport errors
	code    string   // Okta errorCode, e.g. E0000011
	summary string   // Okta errorSummary
	errorID string   // Okta errorId, quoted to Okta support
	rate    rateInfo // the rate headers of the answer
	msg     string   // what went wrong, in words an admin can act on
	reason  string   // for a 200 that could not be used: okta_response_errors_total's reason
	cause   error
}

func (e *requestError) Error() string {
	var b strings.Builder
	b.WriteString(e.msg)
	if e.status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.status)
		if e.code != "" {
			fmt.Fprintf(&b, " %s: %s", e.code, e.summary)
		}
		if e.errorID != "" {
			fmt.Fprintf(&b, ", errorId %s", e.errorID)
		}
		b.WriteString(")")
	}
	if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	return b.String()
}

func (e *requestError) Unwrap() error { return e.cause }

// oktaErrorBody is the shape of every Okta API error response.
type oktaErrorBody struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
	ErrorID      string `json:"errorId"`
}

// statusError classifies a non-200 response. body is at most a few KiB of it.
func statusError(status int, body []byte, org string) *requestError {
	var ob oktaErrorBody
	_ = json.Unmarshal(body, &ob) // a non-Okta body (a proxy's HTML) just leaves it empty
	e := &requestError{status: status, code: ob.ErrorCode, summary: ob.ErrorSummary, errorID: ob.ErrorID}
	switch {
	case status == http.StatusUnauthorized:
		e.kind = failConfig
		e.msg = "Okta rejected the credentials for " + org + ": check that api_token is a valid, active API token of this org (tokens expire after 30 days unused and die with their admin)"
	case status == http.StatusForbidden:
		e.kind = failConfig
		e.msg = "Okta refused to read the System Log of " + org + ": the token's admin needs a role that can read the System Log (e.g. Read-only Administrator); for OAuth, the access token needs the okta.logs.read scope"
	case status == http.StatusTooManyRequests:
		e.kind = failRateLimited
		e.msg = "Okta rate limit reached for " + org
	case status == http.StatusBadRequest:
		e.kind = failConfig
		e.msg = "Okta rejected the System Log query of " + org + ": check filter, q and limit"
	case status == http.StatusNotFound:
		e.kind = failConfig
		e.msg = "Okta has no System Log API at " + org + ": check org_url"
	case status >= 500:
		e.kind = failTransient
		e.msg = "Okta server error from " + org
	default:
		e.kind = failConfig
		e.msg = fmt.Sprintf("unexpected HTTP %d from %s", status, org)
	}
	return e
}

func transientError(msg string, cause error) *requestError {
	return &requestError{kind: failTransient, msg: msg, cause: cause}
}

// Reasons a 200 response could not be used (okta_response_errors_total).
const (
	reasonEmptyBody    = "empty_body"
	reasonNotJSONArray = "not_json_array" // HTML login pages, proxies' error pages
	reasonInvalidJSON  = "invalid_json"   // truncated or corrupt
	reasonInvalidEvent = "invalid_event"
	// reasonOddField: an event whose uuid, eventType or published is neither
	// a string nor null; the event is passed on with that metadata empty.
	reasonOddField    = "non_string_field"
	reasonTooLarge    = "too_large"
	reasonTooDeep     = "too_deep"
	reasonBadNext     = "bad_next_link"
	reasonForeignNext = "foreign_next_link"
	reasonMissingNext = "missing_next_link"
)

// malformed is a 200 whose body or links cannot be used: retried like a 5xx.
func malformed(reason, msg string, cause error) *requestError {
	return &requestError{kind: failTransient, reason: reason, msg: msg, cause: cause}
}
