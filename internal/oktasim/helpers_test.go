package oktasim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

const testToken = "00test-token"

type fixture struct {
	sim   *Sim
	srv   *httptest.Server
	clock *testkit.Clock
}

// t0 is on a whole minute so rate windows are predictable.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	c := testkit.NewClock(t0)
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.Token == "" {
		opts.Token = testToken
	}
	sim := New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &fixture{sim: sim, srv: srv, clock: c}
}

// logsURL is the API URL with the given query.
func (f *fixture) logsURL(q url.Values) string {
	u := f.srv.URL + LogsPath
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

type response struct {
	*http.Response
	body []byte
}

func (f *fixture) get(t *testing.T, rawURL string) response {
	t.Helper()
	return f.do(t, rawURL, "SSWS "+testToken)
}

func (f *fixture) do(t *testing.T, rawURL, auth string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", rawURL, err)
	}
	return response{resp, body}
}

var linkRE = regexp.MustCompile(`<([^>]*)>;\s*rel="([^"]*)"`)

// link returns the URL of the Link header with relation rel, or "".
func (r response) link(rel string) string {
	for _, v := range r.Header.Values("Link") {
		for _, m := range linkRE.FindAllStringSubmatch(v, -1) {
			if m[2] == rel {
				return m[1]
			}
		}
	}
	return ""
}

func (r response) events(t *testing.T) []map[string]any {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var out []map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("decoding page: %v: %s", err, r.body)
	}
	return out
}

func uuids(events []map[string]any) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i], _ = e["uuid"].(string)
	}
	return out
}

func eventUUIDs(events []LogEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.UUID
	}
	return out
}

// wantOktaError checks status and Okta's error body shape.
func wantOktaError(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.body)
	}
	for _, k := range []string{"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"} {
		if _, ok := body[k]; !ok {
			t.Errorf("error body lacks %s: %s", k, r.body)
		}
	}
	if body["errorCode"] != code || body["errorLink"] != code {
		t.Errorf("errorCode/errorLink = %v/%v, want %s", body["errorCode"], body["errorLink"], code)
	}
	if id, _ := body["errorId"].(string); len(id) != 22 || id[:3] != "oae" {
		t.Errorf("errorId = %q, want oae + 19 characters", id)
	}
	if _, ok := body["errorCauses"].([]any); !ok {
		t.Errorf("errorCauses is not an array: %s", r.body)
	}
	return body
}
