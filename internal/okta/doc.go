// Package okta is a client of Okta's System Log API (GET /api/v1/logs): it
// reads one org's log a page at a time, the way Okta documents as gap-free.
//
// Data comes from the org over HTTPS: a Client built whole from a Config
// (org, credentials, HTTP client, logger, clock) fetches a link and returns
// a Page: the events exactly as Okta sent them (slices of the body, split by
// internal/jsonbytes, with uuid, eventType and published read), the
// rel="next" link to request next, and the X-Rate-Limit headers laid onto
// the local clock. What a Page goes to is the caller's business; in this
// product it is the okta_system_log input (internal/impl/okta), which makes
// each page a Benthos batch.
//
// Around that one job:
//   - credentials: an API token (SSWS), or an OAuth 2.0 service app with a
//     private_key_jwt client assertion and optionally DPoP-bound tokens
//     (ParsePrivateKey reads its key); they are only ever sent to the org's
//     origin (ParseOrgURL, CheckLink), and redacted from every error;
//   - failures: every error Fetch returns is a *RequestError whose Kind says
//     how to react (retry, wait for the window, or ask a human), in words an
//     admin can act on;
//   - rate limits: RateInfo is what Okta said, RateBudget keeps a reader
//     within its share of the org's window, on Okta's clock (its Date), not
//     the local one.
//
// It imports neither Benthos nor a Kafka client (internal/layout_test.go).
package okta
