package okta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// maxResponseBytes caps one System Log response. A full page of 1,000 events is
// a few MiB; anything far larger is not a System Log page.
const maxResponseBytes = 64 << 20

// authorizer adds credentials to a request bound for the org.
type authorizer interface {
	// authorize sets the request's credentials. It may first obtain them
	// (OAuth: a token request); its failures are *requestError.
	authorize(req *http.Request) error
	// answered sees every response to an authorized request, before its
	// body is read, and says whether sending the request again at once, with
	// credentials authorize refreshes, can succeed.
	answered(resp *http.Response) retryHint
	// rejected rewords the error of a refused request (401, 403, 400) so it
	// names the cause in terms of this credential's settings.
	rejected(e *requestError, h http.Header)
	// secrets are the credentials it sent lately, to redact from anything
	// logged (a server may echo them back).
	secrets() []string
}

// retryHint is why a refused request may succeed if sent again at once. The
// client acts on each hint at most once per request, so a credential Okta
// keeps refusing is reported, not hammered.
type retryHint int

const (
	noRetry        retryHint = iota
	retryWithNonce           // a DPoP nonce challenge: the nonce is now known
	retryRenewed             // the access token was refused: a new one will be fetched
	retryHints
)

// sswsToken authorizes with an Okta API token.
type sswsToken string

func (t sswsToken) authorize(req *http.Request) error {
	req.Header.Set("Authorization", "SSWS "+string(t))
	return nil
}

func (sswsToken) answered(*http.Response) retryHint { return noRetry }

// rejected keeps statusError's wording, which is about api_token.
func (sswsToken) rejected(*requestError, http.Header) {}

func (t sswsToken) secrets() []string { return []string{string(t)} }

// String keeps the token out of any accidental %v.
func (sswsToken) String() string { return "SSWS [redacted]" }

// client performs System Log requests against one org.
type client struct {
	org       *url.URL
	http      *http.Client
	auth      authorizer
	userAgent string
	now       func() time.Time

	// Okta's Date minus the local clock at the last response that had one.
	dateSkew atomic.Int64 // nanoseconds
	dateSeen atomic.Bool

	lastBody atomic.Int64 // the size of the last page's body, to size the next buffer
}

// skew returns Okta's Date minus the local clock, as of the last response
// with a Date header.
func (c *client) skew() (time.Duration, bool) {
	return time.Duration(c.dateSkew.Load()), c.dateSeen.Load()
}

// event is one System Log event exactly as Okta sent it, with the fields the
// input reads for metadata and de-duplication.
type event struct {
	raw       []byte
	uuid      string
	eventType string
	published string
	// badField names a field among the three that is neither a string nor
	// null (Okta never sends one); it is left empty and the event passed on.
	badField string
}

// page is one System Log response.
type page struct {
	events []event
	next   string // the rel="next" link, verbatim; "" when Okta sent none
	rate   rateInfo
}

// rateInfo is what the X-Rate-Limit-* headers said, with the reset moved onto
// the local clock using the response's Date, so a skewed local clock does not
// make the poller wait too little or too long.
type rateInfo struct {
	known     bool   // the headers are present and believable
	present   bool   // some X-Rate-Limit header was sent
	problem   string // why the headers are not used, when !known
	limit     int
	remaining int
	reset     int64     // X-Rate-Limit-Reset as sent: identifies the window
	resetAt   time.Time // the same instant on the local clock
}

// fetch requests one page. link must be on the org's origin. A request the
// authorizer can fix at once (a DPoP nonce challenge, an access token refused
// before its time) is sent again, once per cause. Its errors carry text the
// server sent (error bodies, HTML, headers), so the credentials are redacted
// from them here, the one way out of the client.
func (c *client) fetch(ctx context.Context, link string) (*page, error) {
	p, err := c.fetchOnce(ctx, link)
	return p, redactError(err, c.auth.secrets())
}

func (c *client) fetchOnce(ctx context.Context, link string) (*page, error) {
	var hinted [retryHints]bool
	for {
		req, err := c.newRequest(ctx, link)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, transientError("System Log request to "+c.org.Host+" failed", scrubURLError(err))
		}
		if hint := c.auth.answered(resp); hint != noRetry && !hinted[hint] {
			hinted[hint] = true
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<10))
			resp.Body.Close()
			continue
		}
		return c.read(resp)
	}
}

// read turns a response into a page or a classified error, and closes it.
func (c *client) read(resp *http.Response) (*page, error) {
	defer resp.Body.Close()
	received := c.now()
	rate := parseRateHeaders(resp.Header, received)
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		// Date has a resolution of a second and is stamped before the
		// response travels: a clock in sync reads 0 to about -1s.
		c.dateSkew.Store(int64(d.Sub(received)))
		c.dateSeen.Store(true)
	}

	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		e := statusError(resp.StatusCode, body, c.org.Host)
		c.auth.rejected(e, resp.Header)
		e.rate = rate
		return nil, e
	}
	events, err := c.readEvents(resp)
	if err == nil {
		p := &page{events: events, next: nextLink(resp.Header.Values("Link")), rate: rate}
		if err = c.checkNext(p.next); err == nil {
			return p, nil
		}
	}
	// A 200 whose body or link cannot be used still counted against the limit.
	var reqErr *requestError
	if errors.As(err, &reqErr) {
		reqErr.status = resp.StatusCode
		reqErr.rate = rate
	}
	return nil, err
}

func (c *client) newRequest(ctx context.Context, link string) (*http.Request, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("invalid System Log link: %w", err)
	}
	if !sameOrigin(c.org, u) {
		return nil, fmt.Errorf("refusing to send credentials to %s://%s: it is not org_url's origin %s", u.Scheme, u.Host, c.org)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, fmt.Errorf("building System Log request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if err := c.auth.authorize(req); err != nil {
		var reqErr *requestError
		if errors.As(err, &reqErr) {
			return nil, err // a token request's own, already clear, error
		}
		return nil, fmt.Errorf("authorizing System Log request: %w", err)
	}
	return req, nil
}

// checkNext refuses a next link that leaves the org: following it would send
// the token to another host.
func (c *client) checkNext(next string) error {
	if next == "" {
		return nil
	}
	u, err := url.Parse(next)
	if err != nil {
		return malformed(reasonBadNext, "Okta sent an unparseable next link", err)
	}
	if !sameOrigin(c.org, u) {
		return malformed(reasonForeignNext, fmt.Sprintf("refusing next link to %s://%s: it is not org_url's origin %s", u.Scheme, u.Host, c.org), nil)
	}
	return nil
}

// readEvents reads a 200 response body: a JSON array of event objects.
func (c *client) readEvents(resp *http.Response) ([]event, error) {
	body, err := c.readBody(resp)
	if err != nil {
		return nil, transientError("reading System Log response", scrubURLError(err))
	}
	if len(body) > maxResponseBytes {
		return nil, malformed(reasonTooLarge, fmt.Sprintf("System Log response exceeds %d bytes", maxResponseBytes), nil)
	}
	return parseEvents(body, resp.Header.Get("Content-Type"))
}

// readBody reads a 200 response body, at most maxResponseBytes+1 bytes. The
// buffer is sized once, for the Content-Length, or when the body is
// compressed or chunked for the previous page's size, instead of growing
// from 512 bytes by doubling (a full page is a few MiB: that was a dozen
// copies and as much garbage per page). The size taken from a header is
// capped at maxBodyPrealloc, so a claim alone cannot make the input allocate.
func (c *client) readBody(resp *http.Response) ([]byte, error) {
	size := c.lastBody.Load()
	if resp.ContentLength >= 0 {
		size = min(resp.ContentLength, maxBodyPrealloc)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(size, maxResponseBytes)+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err == nil {
		c.lastBody.Store(int64(buf.Len()))
	}
	return buf.Bytes(), err
}

// maxBodyPrealloc bounds the buffer a Content-Length header can make readBody
// allocate before any byte arrives: a few full pages.
const maxBodyPrealloc = 16 << 20

// parseEvents splits a System Log page into events, keeping each event's
// bytes exactly as Okta sent them (slices of body, not copies).
//
// An ordinary page takes two passes: splitPage (nesting bounded, events
// split, each event's uuid, eventType and published read from its top level)
// and one strict validation (fastjson.ValidateBytes). Any other page takes
// parsePageGeneral (tooDeep, validation, split, eventFields), which also
// words every rejection. Both are a fraction of the time of encoding/json
// splitting into RawMessages and unmarshalling each again
// (BenchmarkParsePage).
func parseEvents(body []byte, contentType string) ([]event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, malformed(reasonEmptyBody, fmt.Sprintf("System Log response is not a JSON array: the body is empty (Content-Type %q)", contentType), nil)
	}
	if trimmed[0] != '[' {
		return nil, malformed(reasonNotJSONArray, fmt.Sprintf("System Log response is not a JSON array (Content-Type %q, body starts %q)", contentType, snippet(trimmed)), nil)
	}
	invalid := func(err error) error {
		return malformed(reasonInvalidJSON, fmt.Sprintf("System Log response is not valid JSON (%d bytes)", len(body)), err)
	}
	// The common page, in two passes: one scan that bounds the nesting,
	// splits the events and reads their fields (splitPage), then the strict
	// validation. Anything unusual takes the general path below, which gives
	// every error its precise reason.
	if events, ok := splitPage(trimmed); ok {
		if err := fastjson.ValidateBytes(trimmed); err != nil {
			return nil, invalid(err)
		}
		return events, nil
	}
	return parsePageGeneral(trimmed, len(body))
}

// parsePageGeneral is parseEvents' general path, for any page (trimmed,
// starting with '['): the nesting bounded by tooDeep, a strict validation, a
// string-aware split and eventFields on each event, every failure with its
// reason.
func parsePageGeneral(trimmed []byte, bodyLen int) ([]event, error) {
	invalid := func(err error) error {
		return malformed(reasonInvalidJSON, fmt.Sprintf("System Log response is not valid JSON (%d bytes)", bodyLen), err)
	}
	// The validator below recurses once per level: bound the nesting first
	// (encoding/json's limit), so a hostile body cannot exhaust the stack.
	if tooDeep(trimmed, maxJSONDepth) {
		return nil, malformed(reasonTooDeep, fmt.Sprintf("System Log response nests deeper than %d levels (%d bytes)", maxJSONDepth, bodyLen), nil)
	}
	// fastjson's parser is lenient (bad numbers, escapes, control
	// characters): one strict validating pass over the page first.
	if err := fastjson.ValidateBytes(trimmed); err != nil {
		return nil, invalid(err)
	}
	events := make([]event, 0, bytes.Count(trimmed, []byte(`"uuid"`)))
	i := skipWS(trimmed, 1)
	if i < len(trimmed) && trimmed[i] == ']' {
		if skipWS(trimmed, i+1) != len(trimmed) {
			return nil, invalid(fmt.Errorf("data after the array"))
		}
		return events, nil
	}
	for n := 0; ; n++ {
		end, err := valueEnd(trimmed, i)
		if err != nil {
			return nil, invalid(err)
		}
		raw := trimmed[i:end:end]
		ev, err := eventFields(raw, n)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
		i = skipWS(trimmed, end)
		if i >= len(trimmed) {
			return nil, invalid(fmt.Errorf("unterminated array"))
		}
		switch trimmed[i] {
		case ',':
			i = skipWS(trimmed, i+1)
		case ']':
			if skipWS(trimmed, i+1) != len(trimmed) {
				return nil, invalid(fmt.Errorf("data after the array"))
			}
			return events, nil
		default:
			return nil, invalid(fmt.Errorf("unexpected %q after event %d", trimmed[i], n))
		}
	}
}

// splitPage is parseEvents' fast path, for the pages Okta sends. In one walk
// over a page (trimmed, starting with '[') it bounds the nesting as tooDeep
// does, slices out the events and reads each one's uuid, eventType and
// published from its top level, as eventFields does. It does not validate:
// the caller validates the page once it succeeds, which the bounded nesting
// makes safe. On anything out of the ordinary (an element that is not an
// object, an escaped key, one of the three fields escaped or neither a string
// nor null, nesting beyond maxJSONDepth, bytes no valid page has there) it
// returns ok false and the caller takes the general path, so the results,
// and the errors, are those of the general path (TestSplitPageMatches,
// FuzzParseEvents).
func splitPage(b []byte) (events []event, ok bool) {
	i := skipWS(b, 1)
	if i < len(b) && b[i] == ']' {
		return []event{}, skipWS(b, i+1) == len(b)
	}
	events = make([]event, 0, len(b)/2048+8)
	for i < len(b) && b[i] == '{' {
		ev, end, ok := splitEvent(b, i)
		if !ok {
			return nil, false
		}
		events = append(events, ev)
		i = skipWS(b, end)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return events, skipWS(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
	return nil, false
}

// splitEvent reads the object starting at b[start] (page depth 2): its
// three fields, and where it ends.
func splitEvent(b []byte, start int) (ev event, end int, ok bool) {
	i := skipWS(b, start+1)
	if i < len(b) && b[i] == '}' {
		ev.raw = b[start : i+1 : i+1]
		return ev, i + 1, true
	}
	for i < len(b) && b[i] == '"' {
		kend := stringEnd(b, i)
		if kend < 0 {
			return ev, 0, false
		}
		key := b[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return ev, 0, false
		}
		i = skipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return ev, 0, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return ev, 0, false
		}
		var dst *string
		switch {
		case bytes.EqualFold(key, keyUUID):
			dst = &ev.uuid
		case bytes.EqualFold(key, keyEventType):
			dst = &ev.eventType
		case bytes.EqualFold(key, keyPublished):
			dst = &ev.published
		}
		if dst != nil {
			switch b[i] {
			case '"':
				vend := stringEnd(b, i)
				if vend < 0 {
					return ev, 0, false
				}
				str := b[i+1 : vend-1]
				if bytes.IndexByte(str, '\\') >= 0 {
					return ev, 0, false
				}
				*dst = validUTF8(str)
				i = vend
			case 'n':
				if !bytes.HasPrefix(b[i:], []byte("null")) {
					return ev, 0, false
				}
				i += 4
			default:
				return ev, 0, false
			}
		} else if i, ok = skipValue(b, i); !ok {
			return ev, 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return ev, 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			ev.raw = b[start : i+1 : i+1]
			return ev, i + 1, true
		default:
			return ev, 0, false
		}
	}
	return ev, 0, false
}

var (
	keyUUID      = []byte("uuid")
	keyEventType = []byte("eventType")
	keyPublished = []byte("published")
)

// stringEnd returns the index after the string starting at b[i] (a '"'), or
// -1 when it is unterminated. A quote preceded by an odd run of backslashes
// is escaped: the same reading as the byte-by-byte scans of tooDeep and
// valueEnd, but with IndexByte's speed over long strings.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index after the value starting at b[i], a member of
// an event (page depth 2): a string, an object or array nested at most to
// maxJSONDepth counted as tooDeep counts, or a scalar made of the bytes
// literals and numbers use. ok is false on anything else.
func skipValue(b []byte, i int) (int, bool) {
	switch c := b[i]; {
	case c == '"':
		end := stringEnd(b, i)
		return end, end >= 0
	case c == '{' || c == '[':
		depth := 2
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := stringEnd(b, j)
				if end < 0 {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				if depth++; depth > maxJSONDepth {
					return 0, false
				}
			case '}', ']':
				if depth--; depth == 2 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) && isScalarByte(b[j]) {
			j++
		}
		return j, j > i
	}
}

// isScalarByte reports the bytes of true, false, null and numbers.
func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the end of the object or array starting at b[i] (a
// string-aware bracket count over a page already validated).
// Scalars end at the next ',' or ']' outside a string.
func valueEnd(b []byte, i int) (int, error) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if depth == 0 {
				return j + 1, nil
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, nil
			}
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j, nil
			}
		}
	}
	return 0, fmt.Errorf("unterminated value")
}

// validUTF8 returns s as a string with each invalid byte replaced by U+FFFD,
// as encoding/json decodes strings.
func validUTF8(s []byte) string {
	if utf8.Valid(s) {
		return string(s)
	}
	return string([]rune(string(s)))
}

// snippet returns the first bytes of a body for an error message, printable only.
func snippet(b []byte) string {
	const n = 40
	if len(b) > n {
		b = b[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}

// parseRateHeaders reads X-Rate-Limit-*. Reset is epoch seconds on Okta's
// clock; the wait until then is measured against Okta's Date header and laid
// onto the local clock at the moment the response arrived.
//
// Headers that cannot be believed (a limit of 0 or less, a reset more than
// maxRateWait after Date or before it, as a wrong Date makes it) are not
// used: the answer is unknown, and problem says why.
func parseRateHeaders(h http.Header, received time.Time) rateInfo {
	rawL, rawR, rawS := h.Get("X-Rate-Limit-Limit"), h.Get("X-Rate-Limit-Remaining"), h.Get("X-Rate-Limit-Reset")
	if rawL == "" && rawR == "" && rawS == "" {
		return rateInfo{problem: "no X-Rate-Limit headers"}
	}
	bad := func(format string, args ...any) rateInfo {
		return rateInfo{present: true, problem: fmt.Sprintf(format, args...)}
	}
	limit, errL := strconv.Atoi(rawL)
	remaining, errR := strconv.Atoi(rawR)
	reset, errS := strconv.ParseInt(rawS, 10, 64)
	switch {
	case errL != nil || errR != nil || errS != nil:
		return bad("X-Rate-Limit headers incomplete or not numbers (limit %q, remaining %q, reset %q)", snippet([]byte(rawL)), snippet([]byte(rawR)), snippet([]byte(rawS)))
	case limit <= 0 || remaining < 0:
		return bad("X-Rate-Limit-Limit %d, X-Rate-Limit-Remaining %d", limit, remaining)
	}
	serverNow, clock := received, "the local clock (no Date header)"
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow, clock = d, "the response's Date"
	}
	// Compared in seconds: epoch seconds far from now overflow a Duration.
	untilReset := reset - serverNow.Unix()
	switch {
	case untilReset > int64(maxRateWait/time.Second):
		return bad("X-Rate-Limit-Reset is %s after %s", humanSeconds(untilReset), clock)
	case untilReset < -int64(resetSlack/time.Second):
		return bad("X-Rate-Limit-Reset is %s before %s", humanSeconds(-untilReset), clock)
	}
	wait := max(time.Unix(reset, 0).Sub(serverNow), 0)
	return rateInfo{known: true, present: true, limit: limit, remaining: remaining, reset: reset, resetAt: received.Add(wait)}
}

// humanSeconds words a possibly huge number of seconds.
func humanSeconds(s int64) string {
	const day = 24 * 3600
	if s >= 2*day {
		return fmt.Sprintf("%d days", s/day)
	}
	return (time.Duration(s) * time.Second).String()
}

// scrubURLError drops the URL from a *url.Error: Okta's cursors are not
// secrets, but a proxy-rewritten URL could carry credentials, and the host is
// already in our message.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxJSONDepth is the deepest nesting a page may have: encoding/json's limit,
// and cel_detect's. No System Log event comes near it.
const maxJSONDepth = 10_000

// tooDeep reports whether b nests arrays and objects deeper than limit
// (a string-aware scan, without recursion).
func tooDeep(b []byte, limit int) bool {
	depth := 0
	for j := 0; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// eventFields reads uuid, eventType and published from the top level of
// event n (raw, already validated) without parsing its nested values, so an
// event's depth is bounded only by maxJSONDepth, not by fastjson's parser
// (300). As encoding/json: keys match case-insensitively after unescaping,
// the last duplicate wins, null leaves the field as it was. Any other
// non-string value leaves it empty too and is named in badField: one odd
// event must not stall the input on its page forever.
func eventFields(raw []byte, n int) (event, error) {
	ev := event{raw: raw}
	notObject := func(cause error) error {
		return malformed(reasonInvalidEvent, fmt.Sprintf("System Log event %d is not a JSON object", n), cause)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return ev, notObject(nil)
	}
	i := skipWS(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return ev, nil
	}
	for i < len(raw) {
		kend, err := valueEnd(raw, i)
		if err != nil || raw[i] != '"' {
			return ev, notObject(err)
		}
		key := raw[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(raw[i:kend], &k); err != nil {
				return ev, notObject(err)
			}
			key = []byte(k)
		}
		i = skipWS(raw, kend)
		if i >= len(raw) || raw[i] != ':' {
			return ev, notObject(fmt.Errorf("no ':' after a key"))
		}
		i = skipWS(raw, i+1)
		vend, err := valueEnd(raw, i)
		if err != nil {
			return ev, notObject(err)
		}
		var dst *string
		var name string
		switch k := string(key); {
		case strings.EqualFold(k, "uuid"):
			dst, name = &ev.uuid, "uuid"
		case strings.EqualFold(k, "eventType"):
			dst, name = &ev.eventType, "eventType"
		case strings.EqualFold(k, "published"):
			dst, name = &ev.published, "published"
		}
		if dst != nil {
			switch raw[i] {
			case 'n': // null
			case '"':
				str := raw[i+1 : vend-1]
				if bytes.IndexByte(str, '\\') < 0 {
					*dst = validUTF8(str)
					break
				}
				// Escapes (rare in these fields): decoded exactly as
				// encoding/json does, lone surrogates included.
				if err := json.Unmarshal(raw[i:vend], dst); err != nil {
					return ev, notObject(err)
				}
			default:
				*dst = ""
				if ev.badField == "" {
					ev.badField = name
				}
			}
		}
		i = skipWS(raw, vend)
		if i >= len(raw) {
			break
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return ev, nil
		default:
			return ev, notObject(fmt.Errorf("unexpected %q in an object", raw[i]))
		}
	}
	return ev, notObject(fmt.Errorf("unterminated object"))
}
