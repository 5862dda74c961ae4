// Package okta is the okta_system_log Benthos input: a thin adapter over the
// System Log client in internal/okta.
//
// Data comes from internal/okta's Client (one page per request) and goes to
// Benthos as one batch per page, one message per event, its bytes as Okta
// sent them and its uuid, eventType, published and org in metadata
// (internal/meta). What the input adds to the client is the part that needs
// Benthos:
//   - the tick loop: follow next links while pages are full, wait
//     poll_interval after a short one, within the rate budget and retry
//     schedules (poll.go);
//   - acknowledgements: pages are numbered as read, and a page's cursor is
//     committed only once it and every earlier page are acknowledged
//     (ack_tracker.go);
//   - the cursor: stored in a Benthos cache, alternating between two slots
//     so a torn write loses one page at most, and carried on the last message
//     of each page for an output that commits it with the events (cursor.go);
//   - de-duplication of events read again, by uuid (seen_uuids.go);
//   - metrics (metrics.go) and readiness (connect.go).
package okta
