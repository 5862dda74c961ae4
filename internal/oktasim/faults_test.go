package oktasim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestStatusFaults(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Inject(Fault{Kind: FaultStatus}, Fault{Kind: FaultStatus, Status: 502},
		Fault{Kind: FaultStatus, Status: 503}, Fault{Kind: FaultStatus, Status: 504})
	wantOktaError(t, f.get(t, f.logsURL(nil)), 500, "E0000009")
	// A gateway's 502 is HTML, not Okta JSON.
	r := f.get(t, f.logsURL(nil))
	if r.StatusCode != 502 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "Bad Gateway") {
		t.Errorf("502 fault: %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	wantOktaError(t, f.get(t, f.logsURL(nil)), 503, "E0000010")
	if r := f.get(t, f.logsURL(nil)); r.StatusCode != 504 {
		t.Errorf("504 fault: %d", r.StatusCode)
	}
	// Faults are consumed: the next request is served normally.
	if r := f.get(t, f.logsURL(nil)); r.StatusCode != 200 || r.Header.Get("X-Rate-Limit-Limit") == "" {
		t.Errorf("after the faults: %d", r.StatusCode)
	}
}

func TestRateLimitFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Inject(Fault{Kind: FaultRateLimit, RetryAfter: 30 * time.Second})
	r := f.get(t, f.logsURL(nil))
	wantOktaError(t, r, http.StatusTooManyRequests, "E0000047")
	if _, remaining, reset := rateHeaders(t, r); remaining != 0 || reset != t0.Add(30*time.Second).Unix() {
		t.Errorf("remaining %d reset %d, want 0 %d", remaining, reset, t0.Add(30*time.Second).Unix())
	}
}

func TestSlowFaultOutlastsClientTimeout(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Inject(Fault{Kind: FaultSlow, Delay: time.Minute})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodGet, f.logsURL(nil), nil)
	req.Header.Set("Authorization", "SSWS "+testToken)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a slow response arrived before the client's timeout")
	}
	// The handler gives up with the client, so the next request is served.
	if r := f.get(t, f.logsURL(nil)); r.StatusCode != http.StatusOK {
		t.Errorf("after the slow fault: %d", r.StatusCode)
	}
}

func TestSlowFaultStillServes(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(1).Ordinary(t0))
	f.sim.Inject(Fault{Kind: FaultSlow, Delay: 10 * time.Millisecond})
	if n := len(f.get(t, f.logsURL(nil)).events(t)); n != 1 {
		t.Errorf("slow response has %d events", n)
	}
}

func TestResetFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Inject(Fault{Kind: FaultReset})
	req, _ := http.NewRequest(http.MethodGet, f.logsURL(nil), nil)
	req.Header.Set("Authorization", "SSWS "+testToken)
	resp, err := f.srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d) from a reset connection", resp.StatusCode)
	}
	if reqs := f.sim.Requests(); len(reqs) != 1 || reqs[0].Status != 0 {
		t.Errorf("request log %+v, want one entry with status 0", reqs)
	}
}

func TestTruncatedFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(1).Backlog(3, t0.Add(-time.Minute), time.Second)...)
	f.sim.Inject(Fault{Kind: FaultTruncated}, Fault{Kind: FaultTruncated})
	r := f.get(t, f.logsURL(nil))
	var v any
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(r.body, &v) == nil {
		t.Errorf("truncated fault: %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	// An empty page truncates too.
	r = f.get(t, f.logsURL(url.Values{"since": {FormatTime(t0.Add(time.Hour))}}))
	if json.Unmarshal(r.body, &v) == nil {
		t.Errorf("truncated empty page parses: %s", r.body)
	}
}

func TestHTMLFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Inject(Fault{Kind: FaultHTML})
	r := f.get(t, f.logsURL(nil))
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<html") {
		t.Errorf("html fault: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

func TestForeignNextFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(1).Ordinary(t0))
	f.sim.Inject(Fault{Kind: FaultForeignNext}, Fault{Kind: FaultForeignNext, NextOrigin: "https://evil.test:8443"})
	r := f.get(t, f.logsURL(nil))
	if n := r.link("next"); !strings.HasPrefix(n, DefaultForeignOrigin+LogsPath+"?") || !strings.Contains(n, "after=") {
		t.Errorf("next = %q", n)
	}
	if s := r.link("self"); !strings.HasPrefix(s, f.srv.URL) {
		t.Errorf("self = %q", s)
	}
	if n := f.get(t, f.logsURL(nil)).link("next"); !strings.HasPrefix(n, "https://evil.test:8443"+LogsPath) {
		t.Errorf("next = %q", n)
	}
}

func TestFaultKindString(t *testing.T) {
	for k := FaultStatus; k <= FaultNoNext; k++ {
		if s := k.String(); s == "unknown" || s == "" {
			t.Errorf("FaultKind(%d) has no name", k)
		}
	}
	if FaultKind(99).String() != "unknown" {
		t.Error("out-of-range kind")
	}
}

func TestEmptyBodyFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(1).Ordinary(t0))
	f.sim.Inject(Fault{Kind: FaultEmptyBody})
	r := f.get(t, f.logsURL(nil))
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" || len(r.body) != 0 {
		t.Errorf("empty body fault: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	if n := len(f.get(t, f.logsURL(nil)).events(t)); n != 1 {
		t.Errorf("after the fault: %d events, want 1", n)
	}
}

func TestNoNextFault(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(1).Ordinary(t0))
	f.sim.Inject(Fault{Kind: FaultNoNext})
	r := f.get(t, f.logsURL(nil))
	if n := len(r.events(t)); n != 1 {
		t.Errorf("no-next fault: %d events, want the real page (1)", n)
	}
	if n := r.link("next"); n != "" {
		t.Errorf("no-next fault: next = %q", n)
	}
	if s := r.link("self"); !strings.HasPrefix(s, f.srv.URL) {
		t.Errorf("self = %q", s)
	}
	if n := f.get(t, f.logsURL(nil)).link("next"); n == "" {
		t.Error("after the fault: no next link")
	}
}
