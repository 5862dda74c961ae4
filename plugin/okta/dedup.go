package okta

// uuidSet remembers the most recent uuids delivered, up to a fixed number, so
// an event Okta returns twice (or that a resumed cursor returns again) is
// passed on once. Oldest entries are forgotten first.
type uuidSet struct {
	ring  []string
	next  int
	index map[string]struct{}
}

func newUUIDSet(capacity int) *uuidSet {
	return &uuidSet{ring: make([]string, capacity), index: make(map[string]struct{}, capacity)}
}

// add records uuid and reports whether it was new.
func (s *uuidSet) add(uuid string) bool {
	if _, dup := s.index[uuid]; dup {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.index, old)
	}
	s.ring[s.next] = uuid
	s.index[uuid] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
	return true
}
