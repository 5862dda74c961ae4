package okta

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// maxResponseBytes caps one System Log response. A full page of 1,000 events is
// a few MiB; anything far larger is not a System Log page.
const maxResponseBytes = 64 << 20

// Config is everything a Client needs. NewClient takes it whole: nothing is
// set on a Client afterwards.
type Config struct {
	// Org is the org's origin, as ParseOrgURL returns it: the only place
	// credentials are ever sent.
	Org *url.URL
	// APIToken is an Okta API token, sent as SSWS. Set it or OAuth.
	APIToken string
	// OAuth is an OAuth 2.0 service app's credentials. Set it or APIToken.
	OAuth *OAuthConfig
	// HTTPClient sends every request (System Log and token requests). Nil:
	// NewHTTPClient(nil, 30s). It should not follow redirects (see
	// NewHTTPClient).
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Logger receives the few things worth saying outside an error (OAuth
	// switching to DPoP). Nil: nothing is logged.
	Logger Logger
	// Clock stamps responses and signs tokens and proofs. Nil: SystemClock.
	Clock Clock
}

// Client performs System Log requests against one org. Fetch may be called
// from one goroutine at a time; CheckLink, ClockSkew and PollingURL from any.
type Client struct {
	org       *url.URL
	http      *http.Client
	auth      authorizer
	userAgent string
	clock     Clock

	// Okta's Date minus the local clock at the last response that had one.
	dateSkew atomic.Int64 // nanoseconds
	dateSeen atomic.Bool

	lastBody atomic.Int64 // the size of the last page's body, to size the next buffer
}

// NewClient checks cfg and returns its client. It does no I/O: an OAuth
// token is first requested by the first Fetch.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Org == nil {
		return nil, errors.New("okta: no org URL")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(nil, 30*time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = nopLogger{}
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	c := &Client{org: cfg.Org, http: cfg.HTTPClient, userAgent: cfg.UserAgent, clock: cfg.Clock}
	switch {
	case cfg.APIToken != "" && cfg.OAuth != nil:
		return nil, errors.New("okta.Config: set APIToken or OAuth, not both")
	case cfg.APIToken == "" && cfg.OAuth == nil:
		return nil, errors.New("okta.Config: no credentials: set APIToken or OAuth")
	case cfg.OAuth != nil:
		a, err := newOAuthAuth(cfg.Org, *cfg.OAuth, oauthDeps{http: cfg.HTTPClient, log: cfg.Logger, clock: cfg.Clock, userAgent: cfg.UserAgent})
		if err != nil {
			return nil, err
		}
		c.auth = a
	default:
		if err := checkAPIToken(cfg.APIToken); err != nil {
			return nil, err
		}
		c.auth = sswsToken(cfg.APIToken)
	}
	return c, nil
}

// NewHTTPClient returns the HTTP client System Log requests want: proxies
// from HTTPS_PROXY/NO_PROXY, tlsConf (nil: the defaults), timeout per
// request, and no redirects followed: a redirect could carry the
// credentials elsewhere, and Okta does not redirect API calls.
func NewHTTPClient(tlsConf *tls.Config, timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyFromEnvironment
	transport.TLSClientConfig = tlsConf
	return &http.Client{
		Timeout:       timeout,
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CloseIdleConnections closes the HTTP client's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// ClockSkew returns Okta's Date minus the local clock, as of the last
// response with a Date header; ok is false before the first.
func (c *Client) ClockSkew() (skew time.Duration, ok bool) {
	return time.Duration(c.dateSkew.Load()), c.dateSeen.Load()
}

// Query is the first request of a walk through the System Log.
type Query struct {
	Since  time.Time
	Limit  int    // events per page, 1 to 1000
	Filter string // an Okta filter expression, "" for none
	Q      string // keyword search, "" for none
}

// PollingURL is the first request of a walk: events since q.Since, no until,
// ascending — the form for which Okta always returns a next link, and which
// Okta documents as gap-free when its next links are followed.
func (c *Client) PollingURL(q Query) string {
	v := url.Values{}
	v.Set("since", q.Since.UTC().Format("2006-01-02T15:04:05.000Z"))
	v.Set("sortOrder", "ASCENDING")
	v.Set("limit", fmt.Sprint(q.Limit))
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	u := *c.org
	u.Path = "/api/v1/logs"
	u.RawQuery = v.Encode()
	return u.String()
}

// Fetch requests one page. link must be on the org's origin. A request the
// credentials can fix at once (a DPoP nonce challenge, an access token
// refused before its time) is sent again, once per cause. Token requests do
// not carry ctx's values (its httptrace hooks see System Log requests only).
//
// Its errors are *RequestError, or ctx's error once ctx is done. They carry
// text the server sent (error bodies, HTML, headers), so the credentials are
// redacted from them here, the one way out of the client.
func (c *Client) Fetch(ctx context.Context, link string) (*Page, error) {
	p, err := c.fetchOnce(ctx, link)
	if err != nil {
		var reqErr *RequestError
		if !errors.As(err, &reqErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = transientError("System Log request failed", err)
		}
	}
	return p, redactError(err, c.auth.secrets())
}

func (c *Client) fetchOnce(ctx context.Context, link string) (*Page, error) {
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
func (c *Client) read(resp *http.Response) (*Page, error) {
	defer resp.Body.Close()
	received := c.clock.Now()
	rate := parseRateHeaders(resp.Header, received)
	if d, ok := responseDate(resp.Header); ok {
		// Date has a resolution of a second and is stamped before the
		// response travels: a clock in sync reads 0 to about -1s.
		c.dateSkew.Store(int64(d.Sub(received)))
		c.dateSeen.Store(true)
	}

	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		e := statusError(resp.StatusCode, body, c.org.Host)
		c.auth.rejected(e, resp.Header)
		e.Rate = rate
		return nil, e
	}
	events, err := c.readEvents(resp)
	if err == nil {
		p := &Page{Events: events, Next: nextLink(resp.Header.Values("Link")), Rate: rate}
		if err = c.CheckLink(p.Next); err == nil {
			return p, nil
		}
	}
	// A 200 whose body or link cannot be used still counted against the limit.
	var reqErr *RequestError
	if errors.As(err, &reqErr) {
		reqErr.Status = resp.StatusCode
		reqErr.Rate = rate
	}
	return nil, err
}

func (c *Client) newRequest(ctx context.Context, link string) (*http.Request, error) {
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
		var reqErr *RequestError
		if errors.As(err, &reqErr) {
			return nil, err // a token request's own, already clear, error
		}
		return nil, fmt.Errorf("authorizing System Log request: %w", err)
	}
	return req, nil
}

// CheckLink refuses a link that leaves the org (following it would send the
// credentials to another host), or that does not parse. "" passes: no link.
func (c *Client) CheckLink(link string) error {
	if link == "" {
		return nil
	}
	u, err := url.Parse(link)
	if err != nil {
		return malformed(ReasonBadNext, "Okta sent an unparseable next link", err)
	}
	if !sameOrigin(c.org, u) {
		return malformed(ReasonForeignNext, fmt.Sprintf("refusing next link to %s://%s: it is not org_url's origin %s", u.Scheme, u.Host, c.org), nil)
	}
	return nil
}

// readEvents reads a 200 response body: a JSON array of event objects.
func (c *Client) readEvents(resp *http.Response) ([]Event, error) {
	body, err := c.readBody(resp)
	if err != nil {
		return nil, transientError("reading System Log response", scrubURLError(err))
	}
	if len(body) > maxResponseBytes {
		return nil, malformed(ReasonTooLarge, fmt.Sprintf("System Log response exceeds %d bytes", maxResponseBytes), nil)
	}
	return parseEvents(body, resp.Header.Get("Content-Type"))
}

// readBody reads a 200 response body, at most maxResponseBytes+1 bytes. The
// buffer is sized once, for the Content-Length, or when the body is
// compressed or chunked for the previous page's size, instead of growing
// from 512 bytes by doubling (a full page is a few MiB: that was a dozen
// copies and as much garbage per page). The size taken from a header is
// capped at maxBodyPrealloc, so a claim alone cannot make the input allocate.
func (c *Client) readBody(resp *http.Response) ([]byte, error) {
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
