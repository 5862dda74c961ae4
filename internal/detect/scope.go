package detect

import "strings"

// Scoping and identity: every state key is scoped by the event's org, and
// every count is idempotent by the event's uuid.
//
// The org is the `oktadetect.org` member of the rules' view of the event
// (cel_detect's event_metadata, metaview.go), so one cel_detect serving
// many orgs never mixes their counts, memories or alerts. An event without
// it is unscoped: its keys are the rule's keys as they are, which is also
// what state written before scoping holds.

// orgMember is the member of the metadata view naming the org.
const orgMember = "org"

// org is the event's org, or "" (looked up once per event).
func (ev *event) org() string {
	if !ev.orgDone {
		ev.orgDone = true
		if n, ok := ev.root.lookup(metaKey); ok && n.kind == jObject {
			if o, ok := ev.root.doc.objs[n.idx].lookup(orgMember); ok && o.kind == jString {
				ev.orgName = o.str
			}
		}
	}
	return ev.orgName
}

// scoped is key within the event's org. Scoped keys start with a NUL, which
// no unscoped key of a rule in practice does, so the two never meet.
func (ev *event) scoped(key string) string {
	org := ev.org()
	if org == "" {
		return key
	}
	return "\x00" + org + "\x00" + key
}

// scopedOrg is the org a state key is scoped by, and whether it is scoped
// (the inverse of scoped).
func scopedOrg(key string) (string, bool) {
	if len(key) > 1 && key[0] == 0 {
		if i := strings.IndexByte(key[1:], 0); i >= 0 {
			return key[1 : 1+i], true
		}
	}
	return "", false
}

// stateKey is scoped(key) as a copy that state may keep: keys may point
// into the event's bytes, and storing under an existing map key replaces
// the map's key too.
func (ev *event) stateKey(key string) string {
	if ev.org() == "" {
		return strings.Clone(key)
	}
	return ev.scoped(key)
}

// uuidOf is the event's top-level uuid, or "" (looked up once per event).
func (ev *event) uuidOf() string {
	if !ev.uuidDone {
		ev.uuidDone = true
		if n, ok := ev.root.lookup("uuid"); ok && n.kind == jString {
			ev.uuid = n.str
		}
	}
	return ev.uuid
}

// eventID is the event's identity in state: a 64-bit hash of its uuid, or 0
// for an event without one (counted every time it is seen, as before uuids
// were tracked). The hash is FNV-1a, stable across processes, so restored
// state recognises re-delivered events.
func (ev *event) eventID() uint64 {
	u := ev.uuidOf()
	if u == "" {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a offset basis
	for i := 0; i < len(u); i++ {
		h ^= uint64(u[i])
		h *= 1099511628211 // FNV prime
	}
	if h == 0 {
		return 1
	}
	return h
}

// bucketStart is the start of the period-long interval, aligned to the Unix
// epoch, holding t: the opening of the alerts of stateful rules, which
// therefore does not depend on which event happened to arrive last (see
// rules/README.md, "Arrival order").
func bucketStart(t, period int64) int64 {
	b := t - t%period
	if t%period < 0 {
		b -= period
	}
	return b
}
