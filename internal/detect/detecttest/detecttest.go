// Package detecttest holds the small rules and events that the tests of the
// detect engine and of its Benthos processor share, so that both check the
// same behaviour on the same inputs. It imports nothing of the engine.
package detecttest

import (
	"encoding/json"
	"time"
)

// ThresholdRule (id T) tags the third failure of a user within 10 minutes.
const ThresholdRule = `// id: T
// title: "fails of {{ event.user }}"
// threshold: {count: 3, window: 10m, group_by: event.user}
// dedup: {period: 1h}
event.kind == 'fail'
`

// DedupRule (id D) tags every login, one alert per user and hour.
const DedupRule = `// id: D
// title: "login by {{ event.user }}"
// dedup: {key: event.user, period: 1h}
event.kind == 'login'
`

// PreviousRule (id P) tags a login from another city than the user's last.
const PreviousRule = `// id: P
// previous: {key: event.user, when: "event.kind == 'login'", value: "event.city", ttl: 24h}
// title: "{{ event.user }} moved from {{ previous }} to {{ event.city }}"
event.kind == 'login' && previous != null && previous != event.city
`

// Base is the event time offsets count from.
var Base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Event builds an event JSON published at Base+offset with extra fields.
func Event(offset time.Duration, fields map[string]any) []byte {
	m := map[string]any{"published": Base.Add(offset).Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// Fail is a failure of user at Base+offset (ThresholdRule counts them).
func Fail(offset time.Duration, user string) []byte {
	return Event(offset, map[string]any{"kind": "fail", "user": user})
}

// Login is a login of user from city at Base+offset.
func Login(offset time.Duration, user, city string) []byte {
	return Event(offset, map[string]any{"kind": "login", "user": user, "city": city})
}

// DistinctRule (id DC) tags a failure once 3 distinct users failed from one
// IP within 10 minutes.
const DistinctRule = `// id: DC
// title: "spray from {{ event.ip }}"
// threshold: {count: 3, window: 10m, group_by: event.ip, distinct: event.user}
event.kind == 'fail'
`

// SequenceRule (id SQ) tags an approval after 2 denials of the same user
// within 10 minutes.
const SequenceRule = `// id: SQ
// title: "{{ event.user }} approved after denials"
// sequence:
//   by: event.user
//   within: 10m
//   after:
//     - {when: "event.kind == 'deny'", count: 2}
event.kind == 'approve'
`

// FirstSeenRule (id FS) tags a login from a device the user did not use in
// the 24 hours before.
const FirstSeenRule = `// id: FS
// title: "{{ event.user }} on new device {{ event.device }}"
// first_seen: {key: event.user, value: event.device, history: 24h}
event.kind == 'login'
`

// AbsenceRule (id AB) fires when a user's start is not followed by a done
// within 10 minutes (grace 5 minutes).
const AbsenceRule = `// id: AB
// title: "{{ event.user }} never finished"
// absence: {by: event.user, within: 10m, followed_by: "event.kind == 'done'"}
event.kind == 'start'
`

// Of is an event of kind by user at Base+offset with the given uuid (none
// when empty) and extra fields.
func Of(offset time.Duration, uuid, kind, user string, extra map[string]any) []byte {
	m := map[string]any{"kind": kind, "user": user}
	if uuid != "" {
		m["uuid"] = uuid
	}
	for k, v := range extra {
		m[k] = v
	}
	return Event(offset, m)
}
