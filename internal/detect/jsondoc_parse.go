package detect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/oktadetect/oktadetect/internal/jsonbytes"
)

// An event is decoded once into the form CEL reads fastest: a flat,
// index-linked tree parsed in one pass, whose objects and arrays are CEL
// values themselves (traits.Mapper, traits.Lister). Reading a field is a
// short scan of the object's keys, no Go map is built, and nothing is
// converted until CEL reads it. The values are exactly those encoding/json
// gives into `any` (numbers are doubles, the last of duplicate keys wins,
// invalid UTF-8 becomes U+FFFD), and the same inputs are rejected.
//
// Strings point into the document's own copy of the event bytes, which the
// garbage collector keeps alive while anything refers to it. Anything kept
// beyond the event (state keys, remembered values, contexts) is copied out
// (toJSONNative, valueString), so state never pins an event's bytes.

// jkind is a JSON value's kind.
type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jObject
	jArray
)

// jnode is one JSON value. For objects and arrays idx is the index into
// the document's objs or arrs.
type jnode struct {
	kind jkind
	idx  int32
	num  float64
	str  string
}

type jmember struct {
	key string
	val jnode
}

// jsonDoc is one decoded event.
type jsonDoc struct {
	buf     []byte
	members []jmember // object members, each object's contiguous
	elems   []jnode   // array elements, each array's contiguous
	objs    []jsonObject
	arrs    []jsonArray
	root    jnode

	// vals and opts hold, per member, the member's value as CEL sees it
	// and that value wrapped as an optional, made on first use: the same
	// fields (eventType, outcome.result, actor.id…) are read by many rules
	// of one event, and each boxing of a string or number into a ref.Val,
	// or of a value into an optional, is an allocation (memberval.go).
	vals, opts []ref.Val
	optArena   []types.Optional // what opts point to, reused from event to event

	// scratch is a buffer for encoding what an event's rules remember; it
	// is copied into the state, and kept from event to event (up to
	// maxScratch).
	scratch []byte

	stackM []jmember // scratch while parsing
	stackE []jnode
}

// jsonObject is a JSON object as a CEL map.
type jsonObject struct {
	doc         *jsonDoc
	first, n    int32
	dupsChecked bool
	hasDups     bool
}

// jsonArray is a JSON array as a CEL list.
type jsonArray struct {
	doc      *jsonDoc
	first, n int32
	idx      int32
}

// maxScratch bounds the scratch buffer a pooled document keeps.
const maxScratch = 64 << 10

var errNotObject = errors.New("decoding event: not a JSON object")

// parseEvent decodes raw, which must be a JSON object, into a document of
// its own (a copy of raw) that the garbage collector keeps while anything
// refers to it.
func parseEvent(raw []byte) (*jsonDoc, error) {
	d := &jsonDoc{buf: make([]byte, len(raw))}
	copy(d.buf, raw)
	// Rough capacities from the size: an Okta event of 2 KB has about 100
	// members and 25 objects.
	d.members = make([]jmember, 0, len(raw)/20+8)
	d.objs = make([]jsonObject, 0, len(raw)/80+4)
	if err := d.parse(); err != nil {
		return nil, err
	}
	d.stackM, d.stackE = nil, nil
	return d, nil
}

// pooledEvent is a decoded event whose document reuses the slices of
// earlier events (see acquireEvent).
type pooledEvent struct {
	ev  event
	doc jsonDoc
}

var eventPool = sync.Pool{New: func() any { return new(pooledEvent) }}

// maxPooledMembers: documents that grew larger (a huge event) are not kept.
const maxPooledMembers = 1 << 14

// acquireEvent decodes raw into a pooled document that does not copy raw:
// its strings point into raw itself. The caller must not change raw, and
// must call releaseEvent once nothing refers to the document any more (all
// that outlives an evaluation is copied out: state keys, remembered values,
// contexts, alert fields).
func acquireEvent(raw []byte) (*pooledEvent, error) {
	pe := eventPool.Get().(*pooledEvent)
	d := &pe.doc
	d.buf = raw
	if cap(d.members) == 0 {
		d.members = make([]jmember, 0, len(raw)/20+8)
		d.objs = make([]jsonObject, 0, len(raw)/80+4)
	}
	if err := d.parse(); err != nil {
		releaseEvent(pe)
		return nil, err
	}
	pe.ev.setDoc(raw, d)
	return pe, nil
}

// releaseEvent returns pe to the pool, dropping its references to the
// event's bytes.
func releaseEvent(pe *pooledEvent) {
	d := &pe.doc
	if cap(d.members) > maxPooledMembers || cap(d.elems) > maxPooledMembers {
		return
	}
	clear(d.members)
	clear(d.elems)
	clear(d.stackM)
	clear(d.stackE)
	clear(d.vals)
	clear(d.opts)
	clear(d.optArena)
	d.vals, d.opts, d.optArena = d.vals[:0], d.opts[:0], d.optArena[:0]
	d.buf = nil
	d.members, d.elems, d.objs, d.arrs = d.members[:0], d.elems[:0], d.objs[:0], d.arrs[:0]
	d.stackM, d.stackE = d.stackM[:0], d.stackE[:0]
	d.root = jnode{}
	pe.ev = event{}
	eventPool.Put(pe)
}

// setDoc points ev at its decoded document.
func (ev *event) setDoc(raw []byte, d *jsonDoc) {
	ev.raw = raw
	ev.root = &d.objs[d.root.idx]
	ev.act.event = ev.root
	ev.at, ev.timeErr = publishedTime(ev.root)
}

// parse decodes d.buf into d's (empty) slices.
func (d *jsonDoc) parse() error {
	p := parser{d: d, s: d.buf}
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] != '{' {
		// Valid JSON that is not an object (null, a list…) is still checked.
		if _, err := p.value(0); err != nil {
			return err
		}
		if p.skipWS(); p.i != len(p.s) {
			return p.syntax("after top-level value")
		}
		return errNotObject
	}
	root, err := p.value(0)
	if err != nil {
		return err
	}
	if p.skipWS(); p.i != len(p.s) {
		return p.syntax("after top-level value")
	}
	d.root = root
	return nil
}

type parser struct {
	d *jsonDoc
	s []byte
	i int
}

func (p *parser) syntax(what string) error {
	if p.i >= len(p.s) {
		return errors.New("decoding event: unexpected end of JSON input")
	}
	return fmt.Errorf("decoding event: invalid character %q %s at offset %d", p.s[p.i], what, p.i)
}

func (p *parser) skipWS() {
	// One comparison for the usual case: no whitespace at all.
	for p.i < len(p.s) && p.s[p.i] <= ' ' {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (jnode, error) {
	p.skipWS()
	if p.i >= len(p.s) {
		return jnode{}, p.syntax("")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		return jnode{kind: jString, str: s}, err
	case c == 't':
		return jnode{kind: jTrue}, p.lit("true")
	case c == 'f':
		return jnode{kind: jFalse}, p.lit("false")
	case c == 'n':
		return jnode{kind: jNull}, p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return jnode{}, p.syntax("looking for beginning of value")
}

func (p *parser) lit(word string) error {
	if len(p.s)-p.i < len(word) || string(p.s[p.i:p.i+len(word)]) != word {
		p.i++
		return p.syntax("in literal (expecting " + strconv.Quote(word) + ")")
	}
	p.i += len(word)
	return nil
}

func (p *parser) object(depth int) (jnode, error) {
	if depth > jsonbytes.MaxDepth {
		return jnode{}, errors.New("decoding event: exceeded max depth")
	}
	p.i++ // {
	base := len(p.d.stackM)
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return p.d.endObject(base), nil
	}
	for {
		p.skipWS()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return jnode{}, p.syntax("looking for beginning of object key string")
		}
		key, err := p.str()
		if err != nil {
			return jnode{}, err
		}
		p.skipWS()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return jnode{}, p.syntax("after object key")
		}
		p.i++
		v, err := p.value(depth)
		if err != nil {
			return jnode{}, err
		}
		p.d.stackM = append(p.d.stackM, jmember{key: key, val: v})
		p.skipWS()
		if p.i >= len(p.s) {
			return jnode{}, p.syntax("")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			continue
		case '}':
			p.i++
			return p.d.endObject(base), nil
		}
		return jnode{}, p.syntax("after object key:value pair")
	}
}

func (d *jsonDoc) endObject(base int) jnode {
	first := len(d.members)
	d.members = append(d.members, d.stackM[base:]...)
	n := len(d.stackM) - base
	d.stackM = d.stackM[:base]
	d.objs = append(d.objs, jsonObject{doc: d, first: int32(first), n: int32(n)})
	return jnode{kind: jObject, idx: int32(len(d.objs) - 1)}
}

func (p *parser) array(depth int) (jnode, error) {
	if depth > jsonbytes.MaxDepth {
		return jnode{}, errors.New("decoding event: exceeded max depth")
	}
	p.i++ // [
	base := len(p.d.stackE)
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return p.d.endArray(base), nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return jnode{}, err
		}
		p.d.stackE = append(p.d.stackE, v)
		p.skipWS()
		if p.i >= len(p.s) {
			return jnode{}, p.syntax("")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			continue
		case ']':
			p.i++
			return p.d.endArray(base), nil
		}
		return jnode{}, p.syntax("after array element")
	}
}

func (d *jsonDoc) endArray(base int) jnode {
	first := len(d.elems)
	d.elems = append(d.elems, d.stackE[base:]...)
	n := len(d.stackE) - base
	d.stackE = d.stackE[:base]
	d.arrs = append(d.arrs, jsonArray{doc: d, first: int32(first), n: int32(n), idx: int32(len(d.arrs))})
	return jnode{kind: jArray, idx: int32(len(d.arrs) - 1)}
}

// str reads a string. Plain strings (no escapes, valid UTF-8) point into
// the document's bytes; others are decoded by encoding/json itself, so that
// escapes, surrogates and invalid UTF-8 come out exactly as it makes them.
func (p *parser) str() (string, error) {
	start := p.i
	p.i++ // "
	// Fast path: printable ASCII without escapes, eight bytes at a time,
	// to the first byte that is not (the closing quote, if plain).
	for s := p.s; p.i+8 <= len(s); p.i += 8 {
		if m := strSpecial(binary.LittleEndian.Uint64(s[p.i:])); m != 0 {
			p.i += bits.TrailingZeros64(m) / 8
			goto special
		}
	}
	for p.i < len(p.s) && plainASCII[p.s[p.i]] {
		p.i++
	}
special:
	if p.i < len(p.s) && p.s[p.i] == '"' {
		p.i++
		body := p.s[start+1 : p.i-1]
		return unsafe.String(unsafe.SliceData(body), len(body)), nil
	}
	plain, ascii := true, true
	for {
		if p.i >= len(p.s) {
			return "", p.syntax("in string literal")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			body := p.s[start+1 : p.i-1]
			if plain && (ascii || utf8.Valid(body)) {
				return unsafe.String(unsafe.SliceData(body), len(body)), nil
			}
			var s string
			if err := json.Unmarshal(p.s[start:p.i], &s); err != nil {
				return "", fmt.Errorf("decoding event: %w", err)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.i++
			if p.i >= len(p.s) {
				return "", p.syntax("in string literal")
			}
			switch p.s[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				for range 4 {
					if p.i >= len(p.s) || !isHex(p.s[p.i]) {
						return "", p.syntax("in \\u hexadecimal character escape")
					}
					p.i++
				}
			default:
				return "", p.syntax("in string escape code")
			}
		case c < 0x20:
			return "", p.syntax("in string literal")
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			p.i++
		}
	}
}

// plainASCII marks the bytes a string may hold as they are, that are not
// multi-byte UTF-8: printable ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// strSpecial marks, in the high bit of each of the eight bytes of w, the
// bytes that are a quote, a backslash, a control character or not ASCII
// (SWAR). Marks above the lowest may be false (a borrow runs upwards), the
// lowest never is: it is the first such byte.
func strSpecial(w uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := w ^ (lo * '"')
	b := w ^ (lo * '\\')
	zero := (q-lo)&^q | (b-lo)&^b
	ctrl := (w - lo*0x20) &^ w
	return (zero | ctrl | w) & hi
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a JSON number (RFC 8259 grammar) as a float64.
func (p *parser) number() (jnode, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.i < len(p.s) && isDigit(p.s[p.i]):
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			p.i++
		}
	default:
		return jnode{}, p.syntax("in numeric literal")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if p.i >= len(p.s) || !isDigit(p.s[p.i]) {
			return jnode{}, p.syntax("after decimal point in numeric literal")
		}
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			p.i++
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.i >= len(p.s) || !isDigit(p.s[p.i]) {
			return jnode{}, p.syntax("in exponent of numeric literal")
		}
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			p.i++
		}
	}
	lit := p.s[start:p.i]
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(lit), len(lit)), 64)
	if err != nil {
		return jnode{}, fmt.Errorf("decoding event: json: cannot unmarshal number %s into Go value of type float64", lit)
	}
	return jnode{kind: jNumber, num: f}, nil
}
