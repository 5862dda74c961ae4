package oktasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// LogsPath is the System Log API path; TokenPath is the only other path served.
const LogsPath = "/api/v1/logs"

// DemoToken is the SSWS token `oktadetect sim` and the demo accept when none
// is configured. It guards nothing real.
const DemoToken = "00oktasim-demo-token-not-a-secret"

// Options configure a Sim.
type Options struct {
	Token      string           // accepted SSWS token; "" accepts any non-empty SSWS token
	RateLimit  int              // requests per window on /api/v1/logs; 0 = DefaultRateLimit
	RateWindow time.Duration    // fixed window length; 0 = 1 minute
	Now        func() time.Time // simulator clock (Date header, windows, default since); nil = time.Now
	Forbidden  bool             // valid token but lacking permission → 403
	// Scheme of the Link header URLs; "" derives it from the request
	// (https over TLS, else http).
	Scheme string

	// OAuth 2.0 service apps (see RegisterClient and TokenPath).
	RequireDPoP bool          // token requests without a DPoP proof → 400 invalid_dpop_proof
	DPoPNonces  bool          // DPoP proofs must carry the server's nonce (use_dpop_nonce challenges)
	TokenTTL    time.Duration // access token lifetime (expires_in); 0 = DefaultTokenTTL

	// RewriteHeaders, when set, changes every response's headers just
	// before they are sent: a hostile or broken server (or a proxy) in front
	// of the API, e.g. X-Rate-Limit-Reset 50 years ahead, a wrong Date, no
	// rate headers at all. now is the simulator's clock.
	RewriteHeaders func(status int, h http.Header, now time.Time)
}

// Sim is an Okta org's System Log API. It implements http.Handler; every
// method is safe for concurrent use.
type Sim struct {
	opts    Options
	now     func() time.Time
	store   store
	limiter *rateLimiter
	faults  faultQueue
	oauth   oauthState

	reqMu sync.Mutex
	reqs  []Request
}

// Request is one entry of the request log. The credential itself is never
// stored.
type Request struct {
	At         time.Time // simulator time of arrival
	Method     string
	URL        string // absolute URL as requested
	Status     int    // 0 when the connection was reset without a response
	Authorized bool   // an Authorization header was sent
	Accepted   bool   // the credential was valid (Status may still be 403 when Forbidden)
}

// New returns a simulator with an empty log.
func New(opts Options) *Sim {
	if opts.RateLimit <= 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Minute
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Sim{
		opts:    opts,
		now:     now,
		limiter: &rateLimiter{limit: opts.RateLimit, window: opts.RateWindow},
	}
}

// Persist appends events to the log in this order.
func (s *Sim) Persist(events ...LogEvent) {
	recs := make([]*record, 0, len(events))
	for _, e := range events {
		r, err := newRecord(e.JSON())
		if err != nil {
			// A LogEvent always encodes; one without uuid is a caller bug.
			panic("oktasim: Persist: " + err.Error())
		}
		recs = append(recs, r)
	}
	s.store.append(s.now(), recs...)
}

// PersistRaw appends arbitrary JSON events, served byte for byte. Each must
// be an object with a uuid and an RFC 3339 published; nothing is appended
// when any is invalid.
func (s *Sim) PersistRaw(raw ...json.RawMessage) error {
	recs := make([]*record, 0, len(raw))
	for i, r := range raw {
		rec, err := newRecord(r)
		if err != nil {
			return fmt.Errorf("oktasim: raw event %d: %w", i, err)
		}
		recs = append(recs, rec)
	}
	s.store.append(s.now(), recs...)
	return nil
}

// Inject queues faults for the next /api/v1/logs requests, one each, in order.
func (s *Sim) Inject(faults ...Fault) { s.faults.push(faults...) }

// Requests returns a copy of the request log, in arrival order.
func (s *Sim) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Len is the number of persisted events.
func (s *Sim) Len() int { return s.store.len() }

// ServeHTTP serves GET /api/v1/logs and POST /oauth2/v1/token, and answers
// anything else with Okta's 404.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	if rw := s.opts.RewriteHeaders; rw != nil {
		sw.rewrite = func(status int) { rw(status, w.Header(), s.now()) }
	}
	idx := s.logRequest(r)
	defer func() { s.finishRequest(idx, sw.status, sw.accepted) }()
	// Every response's Date comes from the simulator's clock, so clients can
	// be tested for computing waits against Date rather than their own clock.
	sw.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	switch r.URL.Path {
	case LogsPath:
		s.serveLogs(sw, r)
	case TokenPath:
		s.serveToken(sw, r)
	default:
		errNotFound(r.URL.Path).write(sw)
	}
}

func (s *Sim) logRequest(r *http.Request) int {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.reqs = append(s.reqs, Request{
		At:         s.now(),
		Method:     r.Method,
		URL:        s.origin(r) + r.URL.RequestURI(),
		Authorized: r.Header.Get("Authorization") != "",
	})
	return len(s.reqs) - 1
}

func (s *Sim) finishRequest(idx, status int, accepted bool) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.reqs[idx].Status = status
	s.reqs[idx].Accepted = accepted
}

// serveLogs is GET /api/v1/logs: faults first (they stand for trouble in
// front of the API), then the rate limit, auth, validation and the query.
func (s *Sim) serveLogs(w *statusWriter, r *http.Request) {
	fault, faulty := s.faults.pop()
	if faulty && fault.Kind == FaultSlow {
		sleep(r.Context(), fault.Delay)
	}
	now := s.now()
	rate := s.limiter.take(now)
	h := w.Header()
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	rate.set(h)
	if faulty && s.writeFault(w, r, fault, now) {
		return
	}
	if rate.exceeded {
		errRateLimited().write(w)
		return
	}
	if err := s.authorize(w, r); err != nil {
		err.write(w)
		return
	}
	w.accepted = true
	if s.opts.Forbidden {
		errForbidden().write(w)
		return
	}
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		errMethod().write(w)
		return
	}
	q, oerr := parseQuery(r.URL.Query(), now)
	if oerr != nil {
		oerr.write(w)
		return
	}
	p, err := s.store.page(q)
	if err != nil {
		errValidation("after", err.Error()).write(w)
		return
	}
	body := encodePage(p)
	origin := s.origin(r)
	nextOrigin := origin
	if faulty && fault.Kind == FaultForeignNext {
		nextOrigin = fault.NextOrigin
		if nextOrigin == "" {
			nextOrigin = DefaultForeignOrigin
		}
	}
	s.setLinks(h, r, q, p, origin, nextOrigin)
	if faulty && fault.Kind == FaultNoNext {
		h.Del("Link")
		h.Set("Link", "<"+origin+r.URL.RequestURI()+`>; rel="self"`)
	}
	if faulty && fault.Kind == FaultTruncated {
		body = truncate(body)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeFault answers for faults that replace the response and reports
// whether it did.
func (s *Sim) writeFault(w http.ResponseWriter, r *http.Request, f Fault, now time.Time) bool {
	switch f.Kind {
	case FaultStatus:
		writeStatusFault(w, f.Status)
	case FaultRateLimit:
		rateState{limit: s.limiter.limit, reset: now.Add(f.RetryAfter)}.set(w.Header())
		errRateLimited().write(w)
	case FaultReset:
		resetConn(w)
	case FaultHTML:
		writeHTMLFault(w)
	case FaultEcho:
		writeEcho(w, f.Status, r.Header.Get("Authorization"), r.Header.Get("DPoP"))
	case FaultEmptyBody:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	default:
		return false
	}
	return true
}

// origin is scheme://host as the client addressed us.
func (s *Sim) origin(r *http.Request) string {
	scheme := s.opts.Scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	return scheme + "://" + r.Host
}

// setLinks writes Okta's Link header: always self; next always for polling
// (the request itself when the page is empty) and for bounded requests only
// while more results remain.
func (s *Sim) setLinks(h http.Header, r *http.Request, q *query, p page, origin, nextOrigin string) {
	self := origin + r.URL.RequestURI()
	h.Add("Link", "<"+self+`>; rel="self"`)
	switch {
	case q.polling && len(p.recs) == 0:
		h.Add("Link", "<"+nextOrigin+r.URL.RequestURI()+`>; rel="next"`)
	case p.next != nil:
		v := r.URL.Query()
		v.Set("after", p.next.String())
		u := url.URL{Path: LogsPath, RawQuery: v.Encode()}
		h.Add("Link", "<"+nextOrigin+u.RequestURI()+`>; rel="next"`)
	}
}

func encodePage(p page) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, r := range p.recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r.raw)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// statusWriter remembers the status for the request log. Unwrap lets
// http.ResponseController reach the connection for FaultReset.
type statusWriter struct {
	http.ResponseWriter
	status   int
	accepted bool
	rewrite  func(status int) // Options.RewriteHeaders
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if w.rewrite != nil {
			w.rewrite(code)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
