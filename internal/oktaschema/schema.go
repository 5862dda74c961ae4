package oktaschema

import (
	"bufio"
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"
)

//go:embed data/logevent-paths.txt
var pathsData string

// reservedRoot is cel_detect's metadata view inside the event
// (event.oktadetect.org): not Okta's, always accepted.
const reservedRoot = "oktadetect"

// field is one node of the LogEvent tree.
type field struct {
	typ      string
	children map[string]*field // members of an object
	elem     *field            // the element of a list
}

// freeForm reports whether anything below the field is accepted.
func (f *field) freeForm() bool { return f.typ == "map" || f.typ == "any" }

var schema = sync.OnceValue(func() *field {
	root, err := parsePaths(pathsData)
	if err != nil {
		panic("oktaschema: embedded data/logevent-paths.txt: " + err.Error())
	}
	return root
})

// parsePaths reads "a.b[].c type" lines into a tree. A path's parents must
// come before it.
func parsePaths(data string) (*field, error) {
	root := &field{typ: "object", children: map[string]*field{}}
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		path, typ, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("line %d: want \"path type\"", n)
		}
		if err := root.add(splitPath(path), typ); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, path, err)
		}
	}
	return root, sc.Err()
}

// splitPath turns "target[].id" into ["target", "[]", "id"].
func splitPath(p string) []string {
	var segs []string
	for _, s := range strings.Split(p, ".") {
		lists := 0
		for strings.HasSuffix(s, "[]") {
			s, lists = s[:len(s)-2], lists+1
		}
		segs = append(segs, s)
		for ; lists > 0; lists-- {
			segs = append(segs, "[]")
		}
	}
	return segs
}

func (f *field) add(segs []string, typ string) error {
	parent := f
	for _, s := range segs[:len(segs)-1] {
		next := parent.step(s)
		if next == nil {
			return fmt.Errorf("parent %q not declared before", s)
		}
		parent = next
	}
	leaf := &field{typ: typ}
	switch typ {
	case "object":
		leaf.children = map[string]*field{}
	case "map", "any", "list", "string", "number", "bool", "timestamp":
	default:
		return fmt.Errorf("unknown type %q", typ)
	}
	last := segs[len(segs)-1]
	if last == "[]" {
		if parent.typ != "list" {
			return fmt.Errorf("[] of a %s", parent.typ)
		}
		parent.elem = leaf
		return nil
	}
	if parent.children == nil {
		return fmt.Errorf("member of a %s", parent.typ)
	}
	parent.children[last] = leaf
	return nil
}

// step follows one segment without tolerance: "[]" into a list's element,
// a name into an object's member.
func (f *field) step(s string) *field {
	if s == "[]" {
		return f.elem
	}
	return f.children[s]
}

// isElement reports whether a segment stands for a list element.
func isElement(s string) bool {
	if s == "[]" || s == "*" {
		return true
	}
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// resolve walks segments from the root. It returns the field reached, or
// the index of the first segment that does not exist and the field it was
// looked up in. Canonical holds the schema's spelling of the walked part.
func resolve(segs []string) (f *field, bad int, at *field, canonical []string) {
	f = schema()
	if len(segs) > 0 && segs[0] == reservedRoot {
		return &field{typ: "any"}, -1, nil, segs
	}
	for i, s := range segs {
		if f.freeForm() {
			return f, -1, nil, append(canonical, segs[i:]...)
		}
		if isElement(s) {
			if f.typ != "list" {
				return nil, i, f, canonical
			}
			f, canonical = f.elem, append(canonical, "[]")
			continue
		}
		if f.typ == "list" { // a list element's member, index left out
			f, canonical = f.elem, append(canonical, "[]")
		}
		next := f.children[s]
		if next == nil {
			return nil, i, f, canonical
		}
		f, canonical = next, append(canonical, s)
	}
	return f, -1, nil, canonical
}

// Path reports whether segments name a field a System Log event can have.
// When not, suggestion is the nearest existing path (dotted, lists as
// "[]") obtained by correcting misspelt segments, or "" when none is close.
func Path(segments []string) (ok bool, suggestion string) {
	_, bad, _, _ := resolve(segments)
	if bad < 0 {
		return true, ""
	}
	return false, suggestPath(segments)
}

// Type returns the JSON type of the field segments name (see the data
// file's header for the type names).
func Type(segments []string) (typ string, ok bool) {
	f, bad, _, _ := resolve(segments)
	if bad >= 0 {
		return "", false
	}
	return f.typ, true
}

// suggestPath corrects each unknown segment to its nearest sibling, as long
// as one is close enough.
func suggestPath(segs []string) string {
	fixed := append([]string(nil), segs...)
	for range len(segs) + 1 {
		_, bad, at, _ := resolve(fixed)
		if bad < 0 {
			_, _, _, canonical := resolve(fixed)
			return joinPath(canonical)
		}
		if at == nil || at.children == nil || isElement(fixed[bad]) {
			return ""
		}
		best := nearest(fixed[bad], sortedKeys(at.children))
		if best == "" {
			return ""
		}
		fixed[bad] = best
	}
	return ""
}

func sortedKeys(m map[string]*field) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// joinPath renders segments the way the data file writes paths.
func joinPath(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
		if s == "[]" {
			b.WriteString("[]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
