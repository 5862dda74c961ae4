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
	known     bool
	limit     int
	remaining int
	reset     int64     // X-Rate-Limit-Reset as sent: identifies the window
	resetAt   time.Time // the same instant on the local clock
}

// fetch requests one page. link must be on the org's origin. A request the
// authorizer can fix at once (a DPoP nonce challenge, an access token refused
// before its time) is sent again, once per cause.
func (c *client) fetch(ctx context.Context, link string) (*page, error) {
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
	events, err := readEvents(resp)
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
func readEvents(resp *http.Response) ([]event, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, transientError("reading System Log response", scrubURLError(err))
	}
	if len(body) > maxResponseBytes {
		return nil, malformed(reasonTooLarge, fmt.Sprintf("System Log response exceeds %d bytes", maxResponseBytes), nil)
	}
	return parseEvents(body, resp.Header.Get("Content-Type"))
}

// parseEvents splits a System Log page into events in one pass, keeping each
// event's bytes exactly as Okta sent them (slices of body, not copies).
//
// The page's nesting is bounded (tooDeep), then it is validated strictly once
// (fastjson.ValidateBytes), split by a string-aware scan, and each event's
// uuid, eventType and published read from its top level only (eventFields),
// without building values for the rest: a fraction of the time of
// encoding/json splitting into RawMessages and unmarshalling each again
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
	// The validator below recurses once per level: bound the nesting first
	// (encoding/json's limit), so a hostile body cannot exhaust the stack.
	if tooDeep(trimmed, maxJSONDepth) {
		return nil, malformed(reasonTooDeep, fmt.Sprintf("System Log response nests deeper than %d levels (%d bytes)", maxJSONDepth, len(body)), nil)
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
func parseRateHeaders(h http.Header, received time.Time) rateInfo {
	limit, errL := strconv.Atoi(h.Get("X-Rate-Limit-Limit"))
	remaining, errR := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	reset, errS := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if errL != nil || errR != nil || errS != nil {
		return rateInfo{}
	}
	serverNow := received
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow = d
	}
	untilReset := time.Unix(reset, 0).Sub(serverNow)
	if untilReset < 0 {
		untilReset = 0
	}
	return rateInfo{known: true, limit: limit, remaining: remaining, reset: reset, resetAt: received.Add(untilReset)}
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
// the last duplicate wins, null leaves the field empty, and any other
// non-string value is an error.
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
		switch k := string(key); {
		case strings.EqualFold(k, "uuid"):
			dst = &ev.uuid
		case strings.EqualFold(k, "eventType"):
			dst = &ev.eventType
		case strings.EqualFold(k, "published"):
			dst = &ev.published
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
				return ev, notObject(fmt.Errorf("field %s is not a string", key))
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
