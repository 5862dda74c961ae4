package oktasim

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Okta's documented parameter rules for /api/v1/logs.
const (
	defaultLimit    = 100
	maxLimit        = 1000
	defaultLookback = 7 * 24 * time.Hour // since defaults to 7 days before until
)

// parseQuery validates the request parameters at simulator time now.
//
// A request is a polling request when it has no until and sorts ascending;
// otherwise it is bounded, with until defaulting to (and capped at) now.
func parseQuery(v url.Values, now time.Time) (*query, *oktaError) {
	q := &query{limit: defaultLimit, until: now}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return nil, errValidation("limit", "The limit must be an integer between 1 and 1000.")
		}
		q.limit = n
	}
	switch so := v.Get("sortOrder"); {
	case so == "" || strings.EqualFold(so, "ASCENDING"):
	case strings.EqualFold(so, "DESCENDING"):
		q.descending = true
	default:
		return nil, errValidation("sortOrder", "sortOrder must be ASCENDING or DESCENDING.")
	}
	if s := v.Get("until"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, errValidation("until", "until must be an RFC 3339 timestamp.")
		}
		if t.Before(now) {
			q.until = t
		}
	}
	q.polling = v.Get("until") == "" && !q.descending
	q.since = q.until.Add(-defaultLookback)
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, errValidation("since", "since must be an RFC 3339 timestamp.")
		}
		q.since = t
	}
	if !q.polling && !q.since.Before(q.until) {
		return nil, errValidation("since", "since must be before until.")
	}
	if s := v.Get("after"); s != "" {
		c, err := parseCursor(s)
		if err != nil {
			return nil, errValidation("after", "The after cursor is invalid.")
		}
		q.after = &c
	}
	if s := v.Get("filter"); s != "" {
		f, err := parseFilter(s)
		if err != nil {
			return nil, errValidation("filter", "Invalid filter expression: "+err.Error())
		}
		q.filter = f
	}
	q.keywords = strings.Fields(strings.ToLower(v.Get("q")))
	return q, nil
}
