package oktaschema

import (
	"bufio"
	_ "embed"
	"sort"
	"strings"
	"sync"
)

var (
	//go:embed data/event-types.tsv
	eventTypesData string
	//go:embed data/legacy-event-types.txt
	legacyEventTypesData string
)

// EventTypeInfo is what the catalogue says about one event type.
type EventTypeInfo struct {
	Name     string
	Category string // the catalogue's grouping, e.g. "core-identity"; "" when unknown
	Since    string // the Okta release that introduced (or first listed) it
	// RetiredAfter is the last catalogue release that listed it; "" while
	// it is listed. Retired event types still appear in older events.
	RetiredAfter string
	Beta         bool
	Internal     bool
}

type catalogue struct {
	byName map[string]EventTypeInfo
	names  []string
	legacy map[string]bool
}

var eventTypes = sync.OnceValue(func() *catalogue {
	c := &catalogue{byName: map[string]EventTypeInfo{}, legacy: map[string]bool{}}
	for _, cols := range dataLines(eventTypesData) {
		info := EventTypeInfo{Name: cols[0]}
		col := func(i int) string {
			if i < len(cols) && cols[i] != "-" {
				return cols[i]
			}
			return ""
		}
		info.Category, info.Since, info.RetiredAfter = col(1), col(2), col(3)
		info.Beta, info.Internal = col(4) == "beta", col(4) == "internal"
		c.byName[info.Name] = info
		c.names = append(c.names, info.Name)
	}
	sort.Strings(c.names)
	for _, cols := range dataLines(legacyEventTypesData) {
		c.legacy[cols[0]] = true
	}
	return c
})

// dataLines splits a data file into tab-separated columns, skipping
// comments and blank lines.
func dataLines(data string) [][]string {
	var out [][]string
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, "\t"))
	}
	return out
}

// EventType reports whether name is an event type of Okta's catalogue,
// listed today or retired.
func EventType(name string) (known bool) {
	_, known = eventTypes().byName[name]
	return known
}

// LookupEventType returns what the catalogue says about name.
func LookupEventType(name string) (EventTypeInfo, bool) {
	info, ok := eventTypes().byName[name]
	return info, ok
}

// EventTypes returns every catalogued event type, sorted.
func EventTypes() []string { return append([]string(nil), eventTypes().names...) }

// LegacyEventType reports whether name is a legacyEventType value (the
// Events API's action objectType, e.g. core.user_auth.login_failed).
func LegacyEventType(name string) (known bool) { return eventTypes().legacy[name] }

// SuggestEventType returns up to three catalogued event types nearest to
// name by edit distance (a misspelling: at most two edits, or a fifth of
// the name), nearest first; none when name is catalogued or nothing is
// close.
func SuggestEventType(name string) []string {
	if EventType(name) {
		return nil
	}
	type scored struct {
		name string
		d    int
	}
	var near []scored
	limit := closeEnough(name)
	for _, n := range eventTypes().names {
		if strings.EqualFold(n, name) {
			near = append(near, scored{n, 0})
			continue
		}
		if abs(len(n)-len(name)) > limit {
			continue
		}
		if d := distance(name, n); d <= limit {
			near = append(near, scored{n, d})
		}
	}
	sort.Slice(near, func(i, j int) bool {
		if near[i].d != near[j].d {
			return near[i].d < near[j].d
		}
		return near[i].name < near[j].name
	})
	var out []string
	for i := 0; i < len(near) && i < 3; i++ {
		out = append(out, near[i].name)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
