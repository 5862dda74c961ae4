package detect

// Metadata in the rules' view of the event: cel_detect's `event_metadata`
// names message metadata that rules read as `event.oktadetect.<name>`
// (e.g. the Okta org of a many-org pipeline), without decoding and
// re-encoding the event to put it there. The event's bytes never change;
// only the decoded view gains the member.

// metaKey is the reserved top-level key the metadata appears under.
const metaKey = "oktadetect"

// MetaField is one metadata value for the rules' view.
type MetaField struct {
	Name, Value string
}

// addMetaView appends to the root object a member metaKey holding an
// object of fields. It comes after the event's own members, so it wins over
// a member of the same name, as the last of duplicate keys does. The root's
// members are the last of d.members (the root object closes last), so they
// are copied once after the new object's members to stay contiguous.
func (d *jsonDoc) addMetaView(fields []MetaField) {
	first := int32(len(d.members))
	for _, f := range fields {
		d.members = append(d.members, jmember{key: f.Name, val: jnode{kind: jString, str: f.Value}})
	}
	d.objs = append(d.objs, jsonObject{doc: d, first: first, n: int32(len(fields))})
	view := jnode{kind: jObject, idx: int32(len(d.objs) - 1)}
	root := &d.objs[d.root.idx]
	rootFirst := int32(len(d.members))
	d.members = append(d.members, d.members[root.first:root.first+root.n]...)
	d.members = append(d.members, jmember{key: metaKey, val: view})
	root.first, root.n = rootFirst, root.n+1
	root.dupsChecked, root.hasDups = false, false
}

// withoutMetaView is the event as a Go map without the metadata member, for
// re-encoding an event that has one.
func withoutMetaView(obj *jsonObject, viewed bool) map[string]any {
	m := obj.native()
	if viewed {
		delete(m, metaKey)
	}
	return m
}
