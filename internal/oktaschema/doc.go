// Package oktaschema knows what an Okta System Log event can hold: the field
// paths of Okta's LogEvent object and the catalogue of event types. It lets
// `oktadetect rules lint` tell a rule that reads `event.eventTyp` or
// compares against 'user.sesion.start' that it will never match, with a
// "did you mean".
//
// The data are embedded text files under data/ (see data/README.md for
// their sources and how they were derived): logevent-paths.txt,
// event-types.tsv and legacy-event-types.txt.
//
// Field paths are given as segments, as a rule's `event.a.b` or
// `event.target[0].id` reads them: Path([]string{"target", "[]", "id"}).
// A list element may be written "[]", as an index ("0") or "*", or left
// out (Path([]string{"target", "id"}) holds too), so a linter may drop
// indexes and comprehension variables bound to list elements. Below a
// free-form object (debugContext.debugData, actor.detailEntry,
// target[].detailEntry, target[].changeDetails.from/to, transaction.detail,
// device.device_integrator) every member is accepted. The top-level member
// "oktadetect" is cel_detect's own metadata view (event.oktadetect.org) and
// is accepted with anything below it.
//
// API:
//
//	Path(segments) (ok bool, suggestion string)   // suggestion: the nearest known dotted path, or ""
//	Type(segments) (typ string, ok bool)          // "object", "map", "list", "string", "number", "bool", "timestamp", "any"
//	EventType(name) (known bool)                  // in the catalogue, current or retired
//	LookupEventType(name) (EventTypeInfo, bool)   // category, release, retirement
//	SuggestEventType(name) []string               // up to 3 catalogue names by edit distance
//	EventTypes() []string                         // the whole catalogue, sorted
//	LegacyEventType(name) (known bool)            // a legacyEventType value (Events API objectType)
//
// The package depends only on the standard library and internal/editdist.
package oktaschema
