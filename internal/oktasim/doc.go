// Package oktasim simulates an Okta org's System Log API, GET /api/v1/logs,
// for tests and demos, and generates realistic events and attack scenarios.
//
// What it reproduces, following Okta's documentation:
//
//   - Polling requests (no until, ascending) walk the log in persistence
//     order from the after cursor; since and until bound persistence time,
//     as Okta documents for polling, so an event persisted late (published
//     long before events already served) still reaches a client that follows
//     its next links. They always carry a rel="next" link; an empty page is
//     [] and its next link is the request itself.
//   - Bounded requests (until set, or sortOrder=DESCENDING) return events
//     published in [since, until) sorted by published, with a next link only
//     while more remain.
//   - limit 1…1000 (default 100), since defaulting to 7 days before until,
//     RFC 3339 times, opaque after cursors shaped like Okta's
//     ("1714675441520_1"), SCIM-style filter and keyword q; anything invalid
//     is a 400 E0000001.
//   - A fixed-window rate limit (default 120 per minute) with
//     X-Rate-Limit-Limit/-Remaining/-Reset and Date on every response, all
//     from the simulator's clock (Options.Now), and 429 E0000047 bodies.
//   - SSWS tokens (401 E0000011), a permission-less token mode (403
//     E0000006), and Okta's error body shape everywhere.
//   - OAuth 2.0 service apps (RegisterClient): POST /oauth2/v1/token with the
//     client-credentials grant and a private_key_jwt client assertion
//     (signature against the registered key, iss = sub, aud, exp, one-time
//     jti), OAuth error bodies (invalid_client, invalid_scope, …), Bearer or
//     DPoP-bound tokens with expires_in (Options.TokenTTL). DPoP (RFC 9449)
//     proofs are validated on the token endpoint and on every API call
//     (signature, typ, htm, htu without query, fresh iat, unique jti, ath,
//     the token's jkt binding), optionally required (Options.RequireDPoP) and
//     with nonces (Options.DPoPNonces: use_dpop_nonce challenges and
//     DPoP-Nonce headers). Tokens without okta.logs.read get a 403 with an
//     insufficient_scope challenge.
//   - Injected faults: 5xx, 429, slow responses, connection resets, truncated
//     JSON, HTML login pages and next links to a foreign origin.
//
// Persistence time: an event appended in published order is treated as
// persisted when it was published (capped at the simulator's now), so a
// backlog of old events looks like history; an event published before the
// log's tail is late and persisted now. Persistence time never decreases.
package oktasim
