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
