package oktasim

import (
	"bytes"
	"context"
	"html"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind selects what an injected Fault does to a /api/v1/logs request.
type FaultKind int

const (
	// FaultStatus answers with Fault.Status (default 500): 500 carries Okta's
	// E0000009 body, 503 Okta's E0000010 body, 502 and 504 the HTML page a
	// gateway in front of Okta sends.
	FaultStatus FaultKind = iota
	// FaultRateLimit answers 429 E0000047 with X-Rate-Limit-Reset at
	// simulator now + Fault.RetryAfter, whatever the window's real state.
	FaultRateLimit
	// FaultSlow waits Fault.Delay (or until the client gives up), then serves
	// the request normally.
	FaultSlow
	// FaultReset closes the connection without a response (a TCP reset).
	FaultReset
	// FaultTruncated serves the real page with a 200 but cuts its JSON body
	// short, as a dropped connection behind a proxy does.
	FaultTruncated
	// FaultHTML answers 200 text/html, like a captive portal or SSO login
	// page in front of the org.
	FaultHTML
	// FaultForeignNext serves the real page but its next link points to
	// Fault.NextOrigin (default https://attacker.example), which a client
	// must refuse to send its token to.
	FaultForeignNext
	// FaultEmptyBody answers 200 application/json with an empty body (no
	// bytes at all), as a proxy that lost the upstream response may.
	FaultEmptyBody
	// FaultNoNext serves the real page without its rel="next" link (the
	// self link stays), as a proxy that strips or truncates headers may.
	FaultNoNext
	// FaultEcho answers Fault.Status (default 401) with the request's
	// Authorization header (and DPoP proof) echoed back, as careless servers and debugging
	// proxies do: in Okta's JSON error body (errorSummary, errorCauses) and
	// a WWW-Authenticate error_description, or, for Status 200, in an HTML
	// page. A client must not log what it reads there.
	FaultEcho
)

var faultNames = [...]string{"status", "rate_limit", "slow", "reset", "truncated", "html", "foreign_next", "empty_body", "no_next", "echo"}

func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return "unknown"
}

// Fault is one injected misbehaviour, consumed by the next /api/v1/logs
// request (any request, authorised or not).
type Fault struct {
	Kind       FaultKind
	Status     int           // FaultStatus: HTTP status, default 500
	Delay      time.Duration // FaultSlow
	RetryAfter time.Duration // FaultRateLimit: reset = now + RetryAfter
	NextOrigin string        // FaultForeignNext: scheme://host of the next link
}

// DefaultForeignOrigin is the next-link origin FaultForeignNext uses when
// Fault.NextOrigin is empty.
const DefaultForeignOrigin = "https://attacker.example"

// faultQueue is a FIFO shared by concurrent requests.
type faultQueue struct {
	mu     sync.Mutex
	faults []Fault
}

func (q *faultQueue) push(f ...Fault) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faults = append(q.faults, f...)
}

func (q *faultQueue) pop() (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.faults) == 0 {
		return Fault{}, false
	}
	f := q.faults[0]
	q.faults = q.faults[1:]
	return f, true
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// writeStatusFault answers a FaultStatus.
func writeStatusFault(w http.ResponseWriter, status int) {
	switch status {
	case 0:
		errInternal(http.StatusInternalServerError).write(w)
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		// Gateways answer with their own HTML, not Okta's JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		text := http.StatusText(status)
		_, _ = w.Write([]byte("<html>\r\n<head><title>" + strconv.Itoa(status) + " " + text + "</title></head>\r\n<body>\r\n<center><h1>" +
			strconv.Itoa(status) + " " + text + "</h1></center>\r\n</body>\r\n</html>\r\n"))
	case http.StatusServiceUnavailable:
		errUnavailable().write(w)
	default:
		errInternal(status).write(w)
	}
}

const loginPage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign In</title></head>
<body>
<form method="post" action="/login/do-login">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign In</button>
</form>
</body>
</html>
`

// writeEcho answers a FaultEcho, echoing the credential headers (the
// Authorization header, and the DPoP proof when there is one).
func writeEcho(w http.ResponseWriter, status int, auth, proof string) {
	if status == 0 {
		status = http.StatusUnauthorized
	}
	if status == http.StatusOK {
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><pre>" + html.EscapeString(auth) + "\n" + html.EscapeString(proof) + "</pre></html>"))
		return
	}
	_, cred, _ := strings.Cut(auth, " ")
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="token `+strings.ReplaceAll(cred, `"`, "")+` is not valid"`)
	e := newOktaError(status, "E0000011", "Invalid token provided: "+auth+" "+proof, "the request carried "+cred)
	e.Code = "E0000011 " + cred
	e.ID = cred
	e.write(w)
}

func writeHTMLFault(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(loginPage))
}

// resetConn drops the connection without a response. SO_LINGER 0 makes the
// close a TCP RST, which clients see as "connection reset by peer".
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hijack; aborting the handler resets the stream.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// truncate cuts a JSON page so it cannot parse.
func truncate(body []byte) []byte {
	if len(body) <= 2 {
		return []byte(`[{"uuid":"`)
	}
	cut := body[:len(body)/2]
	return bytes.TrimRight(cut, "]")
}
