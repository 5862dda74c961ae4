package oktaschema

import (
	"slices"
	"strings"
)

// Vocabulary is the schema and the catalogue in the shape the rule engine's
// linter asks for (internal/detect.Vocabulary): `oktadetect rules lint`
// hands it in.
type Vocabulary struct{}

// Field says whether the path exists; if not, the nearest known one.
func (Vocabulary) Field(path []string) (bool, string) { return Path(path) }

// EventType says whether name is catalogued; if not, the nearest names. A
// legacyEventType value compared with eventType is still unknown: the two
// fields never share values.
func (Vocabulary) EventType(name string) (bool, []string) {
	if EventType(name) {
		return true, nil
	}
	return false, SuggestEventType(name)
}

// EventTypePrefix says whether some catalogued event type starts with prefix.
func (Vocabulary) EventTypePrefix(prefix string) bool {
	names := eventTypes().names
	i, _ := slices.BinarySearch(names, prefix)
	return i < len(names) && strings.HasPrefix(names[i], prefix)
}
