package oktasim

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// filterExpr is a parsed SCIM-style filter as the System Log accepts it:
// attribute paths compared with eq, ne, co, sw, ew, gt, ge, lt, le or tested
// with pr, combined with and, or, not and parentheses.
type filterExpr interface {
	eval(doc map[string]any) bool
}

type andExpr struct{ l, r filterExpr }
type orExpr struct{ l, r filterExpr }
type notExpr struct{ e filterExpr }
type cmpExpr struct {
	path  []string
	op    string
	value any // string, float64, bool or nil
}

func (e andExpr) eval(d map[string]any) bool { return e.l.eval(d) && e.r.eval(d) }
func (e orExpr) eval(d map[string]any) bool  { return e.l.eval(d) || e.r.eval(d) }
func (e notExpr) eval(d map[string]any) bool { return !e.e.eval(d) }

func (e cmpExpr) eval(d map[string]any) bool {
	vals := lookup(d, e.path)
	if e.op == "pr" {
		for _, v := range vals {
			if v != nil {
				return true
			}
		}
		return false
	}
	// An attribute inside an array (target.id) matches when any element does.
	for _, v := range vals {
		if compare(v, e.op, e.value) {
			return true
		}
	}
	return e.op == "ne" && len(vals) == 0 && e.value != nil
}

// lookup resolves a dotted path, flattening arrays on the way.
func lookup(v any, path []string) []any {
	if len(path) == 0 {
		if arr, ok := v.([]any); ok {
			return arr
		}
		return []any{v}
	}
	switch t := v.(type) {
	case map[string]any:
		child, ok := t[path[0]]
		if !ok {
			return nil
		}
		return lookup(child, path[1:])
	case []any:
		var out []any
		for _, el := range t {
			out = append(out, lookup(el, path)...)
		}
		return out
	}
	return nil
}

func compare(have any, op string, want any) bool {
	switch w := want.(type) {
	case nil:
		return (have == nil) == (op == "eq")
	case bool:
		h, ok := have.(bool)
		return ok && ((h == w) == (op == "eq"))
	case float64:
		h, ok := have.(float64)
		if !ok {
			return false
		}
		return ordered(op, h == w, h < w)
	case string:
		h, ok := have.(string)
		if !ok {
			return false
		}
		switch op {
		case "co":
			return strings.Contains(h, w)
		case "sw":
			return strings.HasPrefix(h, w)
		case "ew":
			return strings.HasSuffix(h, w)
		}
		return ordered(op, h == w, h < w)
	}
	return false
}

func ordered(op string, eq, lt bool) bool {
	switch op {
	case "eq":
		return eq
	case "ne":
		return !eq
	case "lt":
		return lt
	case "le":
		return lt || eq
	case "gt":
		return !lt && !eq
	case "ge":
		return !lt
	}
	return false
}

// parseFilter parses the filter query parameter.
func parseFilter(s string) (filterExpr, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at token %d", p.toks[p.pos].text, p.pos+1)
	}
	return e, nil
}

type token struct {
	text   string
	quoted bool
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{text: string(c)})
			i++
		case c == '"':
			str, n, err := scanString(s[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{text: str, quoted: true})
			i += n
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n()\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// scanString reads a double-quoted string with backslash escapes and returns
// its value and length in s.
func scanString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", 0, fmt.Errorf("unterminated string %s", s)
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string %s", s)
}

type filterParser struct {
	toks []token
	pos  int
}

func (p *filterParser) peekWord(w string) bool {
	return p.pos < len(p.toks) && !p.toks[p.pos].quoted && strings.EqualFold(p.toks[p.pos].text, w)
}

func (p *filterParser) or() (filterExpr, error) {
	l, err := p.and()
	for err == nil && p.peekWord("or") {
		p.pos++
		var r filterExpr
		if r, err = p.and(); err == nil {
			l = orExpr{l, r}
		}
	}
	return l, err
}

func (p *filterParser) and() (filterExpr, error) {
	l, err := p.factor()
	for err == nil && p.peekWord("and") {
		p.pos++
		var r filterExpr
		if r, err = p.factor(); err == nil {
			l = andExpr{l, r}
		}
	}
	return l, err
}

func (p *filterParser) factor() (filterExpr, error) {
	switch {
	case p.pos == len(p.toks):
		return nil, fmt.Errorf("unexpected end of filter")
	case p.peekWord("not"):
		p.pos++
		e, err := p.factor()
		return notExpr{e}, err
	case p.peekWord("("):
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.peekWord(")") {
			return nil, fmt.Errorf("missing closing parenthesis")
		}
		p.pos++
		return e, nil
	}
	return p.comparison()
}

var filterOps = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "ge": true, "lt": true, "le": true, "pr": true}

func (p *filterParser) comparison() (filterExpr, error) {
	attr := p.toks[p.pos]
	if attr.quoted || !validPath(attr.text) {
		return nil, fmt.Errorf("expected an attribute, got %q", attr.text)
	}
	p.pos++
	if p.pos == len(p.toks) {
		return nil, fmt.Errorf("missing operator after %s", attr.text)
	}
	op := strings.ToLower(p.toks[p.pos].text)
	if p.toks[p.pos].quoted || !filterOps[op] {
		return nil, fmt.Errorf("unknown operator %q", p.toks[p.pos].text)
	}
	p.pos++
	e := cmpExpr{path: strings.Split(attr.text, "."), op: op}
	if op == "pr" {
		return e, nil
	}
	if p.pos == len(p.toks) {
		return nil, fmt.Errorf("missing value after %s %s", attr.text, op)
	}
	v, err := literal(p.toks[p.pos])
	if err != nil {
		return nil, err
	}
	p.pos++
	e.value = v
	return e, nil
}

func validPath(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for _, r := range part {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
				return false
			}
		}
	}
	return true
}

func literal(t token) (any, error) {
	if t.quoted {
		return t.text, nil
	}
	switch strings.ToLower(t.text) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q: strings must be double-quoted", t.text)
	}
	return f, nil
}
