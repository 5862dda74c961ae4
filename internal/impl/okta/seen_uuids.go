package okta

// rememberedUUIDs is how many delivered uuids the input remembers to drop
// events it already passed on: several full pages.
const rememberedUUIDs = 20_000

// recentUUIDs is a ring of the most recent uuids delivered, up to a fixed
// number, so an event Okta returns twice (or that a resumed cursor returns
// again) is passed on once. Oldest entries are forgotten first.
type recentUUIDs struct {
	ring  []string
	next  int
	index map[string]struct{}
}

func newRecentUUIDs(capacity int) *recentUUIDs {
	return &recentUUIDs{ring: make([]string, capacity), index: make(map[string]struct{}, capacity)}
}

// add records uuid and reports whether it was new.
func (s *recentUUIDs) add(uuid string) bool {
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
