package oktasim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPollingPagesFollowNextLinks(t *testing.T) {
	f := newFixture(t, Options{})
	events := NewGenerator(1).Backlog(25, t0.Add(-time.Hour), time.Minute)
	f.sim.Persist(events...)

	since := FormatTime(t0.Add(-2 * time.Hour))
	next := f.logsURL(url.Values{"since": {since}, "limit": {"10"}})
	var got []string
	for _, want := range []int{10, 10, 5, 0} {
		r := f.get(t, next)
		page := r.events(t)
		if len(page) != want {
			t.Fatalf("page of %d events, want %d", len(page), want)
		}
		got = append(got, uuids(page)...)
		if self := r.link("self"); self != next {
			t.Errorf("self link %q, want the request %q", self, next)
		}
		n := r.link("next")
		if n == "" {
			t.Fatal("polling response without a next link")
		}
		u, _ := url.Parse(n)
		if u.Query().Get("since") != since || u.Query().Get("limit") != "10" || !strings.HasPrefix(n, f.srv.URL+LogsPath+"?") {
			t.Errorf("next link %q does not preserve the request", n)
		}
		if want > 0 && u.Query().Get("after") == "" {
			t.Errorf("next link %q has no after cursor", n)
		}
		next = n
	}
	if !slices.Equal(got, eventUUIDs(events)) {
		t.Errorf("events not delivered once each in persistence order")
	}
}

func TestEmptyPageLinksToItself(t *testing.T) {
	f := newFixture(t, Options{})
	req := f.logsURL(url.Values{"since": {FormatTime(t0.Add(-time.Minute))}, "limit": {"5"}})
	r := f.get(t, req)
	if string(r.body) != "[]" {
		t.Fatalf("body = %s, want []", r.body)
	}
	if r.link("next") != req || r.link("self") != req {
		t.Errorf("links %v, want self and next = %s", r.Header.Values("Link"), req)
	}

	// The same URL, polled again, yields what was persisted since; an empty
	// page reached through a cursor keeps that cursor.
	f.sim.Persist(NewGenerator(2).Ordinary(t0))
	r = f.get(t, req)
	if n := len(r.events(t)); n != 1 {
		t.Fatalf("%d events after persisting one", n)
	}
	next := r.link("next")
	r = f.get(t, next)
	if string(r.body) != "[]" || r.link("next") != next {
		t.Errorf("drained page: body %s, next %q, want [] and %q", r.body, r.link("next"), next)
	}
}

func TestDefaultLimitIs100(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(3).Backlog(150, t0.Add(-time.Hour), time.Second)...)
	if n := len(f.get(t, f.logsURL(nil)).events(t)); n != 100 {
		t.Errorf("default page has %d events, want 100", n)
	}
	if n := len(f.get(t, f.logsURL(url.Values{"limit": {"1000"}})).events(t)); n != 150 {
		t.Errorf("limit=1000 page has %d events, want 150", n)
	}
}

func TestInvalidParameters(t *testing.T) {
	f := newFixture(t, Options{})
	f.sim.Persist(NewGenerator(4).Backlog(3, t0.Add(-time.Hour), time.Minute)...)
	cursor := f.get(t, f.logsURL(url.Values{"limit": {"1"}})).link("next")
	c, _ := url.Parse(cursor)
	valid := c.Query().Get("after")
	if valid == "" {
		t.Fatal("no cursor to tamper with")
	}
	for name, q := range map[string]url.Values{
		"limit zero":      {"limit": {"0"}},
		"limit too big":   {"limit": {"1001"}},
		"limit not int":   {"limit": {"ten"}},
		"since not time":  {"since": {"yesterday"}},
		"until not time":  {"until": {"2026-13-01T00:00:00Z"}},
		"since > until":   {"since": {FormatTime(t0)}, "until": {FormatTime(t0.Add(-time.Hour))}},
		"sortOrder":       {"sortOrder": {"RANDOM"}},
		"after garbage":   {"after": {"not-a-cursor"}},
		"after unknown":   {"after": {"1700000000000_99"}},
		"after tampered":  {"after": {"1" + valid}},
		"filter unparsed": {"filter": {`eventType eq`}},
		"filter operator": {"filter": {`eventType like "x"`}},
		"filter unquoted": {"filter": {`eventType eq user.session.start`}},
		"filter paren":    {"filter": {`(eventType eq "x"`}},
	} {
		t.Run(name, func(t *testing.T) {
			body := wantOktaError(t, f.get(t, f.logsURL(q)), http.StatusBadRequest, "E0000001")
			if causes, _ := body["errorCauses"].([]any); len(causes) == 0 {
				t.Errorf("no errorCauses: %v", body)
			}
		})
	}
}

func TestBoundedRequests(t *testing.T) {
	f := newFixture(t, Options{})
	// Published out of order: bounded results come sorted by published.
	g := NewGenerator(5)
	var events []LogEvent
	for _, m := range []int{50, 10, 40, 20, 30, 5} {
		events = append(events, g.Ordinary(t0.Add(-time.Duration(m)*time.Minute)))
	}
	f.sim.Persist(events...)
	q := url.Values{
		"since": {FormatTime(t0.Add(-45 * time.Minute))},
		"until": {FormatTime(t0.Add(-10 * time.Minute))}, // exclusive
		"limit": {"2"},
	}
	want := []string{events[2].UUID, events[4].UUID, events[3].UUID} // -40, -30, -20
	var got []string
	next := f.logsURL(q)
	for page := 0; next != ""; page++ {
		if page > 3 {
			t.Fatal("bounded paging does not end")
		}
		r := f.get(t, next)
		got = append(got, uuids(r.events(t))...)
		next = r.link("next")
	}
	if !slices.Equal(got, want) {
		t.Errorf("ascending bounded = %v, want %v", got, want)
	}

	q.Set("sortOrder", "DESCENDING")
	q.Set("limit", "10")
	r := f.get(t, f.logsURL(q))
	if got := uuids(r.events(t)); !slices.Equal(got, []string{want[2], want[1], want[0]}) {
		t.Errorf("descending bounded = %v", got)
	}
	if r.link("next") != "" {
		t.Errorf("bounded request with no more results has a next link %q", r.link("next"))
	}
}

func TestLateEventsReachPollingClient(t *testing.T) {
	f := newFixture(t, Options{})
	g := NewGenerator(6)
	f.sim.Persist(g.Ordinary(t0.Add(-10*time.Second)), g.Ordinary(t0.Add(-5*time.Second)))
	next := f.logsURL(url.Values{"since": {FormatTime(t0.Add(-time.Minute))}})
	r := f.get(t, next)
	if n := len(r.events(t)); n != 2 {
		t.Fatalf("first page has %d events", n)
	}
	next = r.link("next")

	f.clock.Advance(2 * time.Minute)
	late := g.Ordinary(t0.Add(-5 * time.Minute)) // published before everything served, and before since
	f.sim.Persist(late)
	r = f.get(t, next)
	if got := uuids(r.events(t)); !slices.Equal(got, []string{late.UUID}) {
		t.Errorf("after the cursor: %v, want the late event %s", got, late.UUID)
	}
}

func TestFilterAndQ(t *testing.T) {
	f := newFixture(t, Options{})
	g := NewGenerator(7)
	at := t0.Add(-time.Minute)
	brute := g.BruteForce("victim@"+OrgDomain, "185.220.1.2", at, 2)
	grant := g.AdminRoleAssigned(DemoAdmin, "victim@"+OrgDomain, at)
	token := g.APITokenCreated(DemoAdmin, at)
	login := g.sessionStart(at, g.from(staff[0]), "")
	f.sim.Persist(append(brute, grant, token, login)...)

	for filter, want := range map[string][]LogEvent{
		`eventType eq "system.api_token.create"`:                                                {token},
		`eventType eq "user.session.start" and outcome.result eq "FAILURE"`:                     brute,
		`eventType eq "user.session.start" and actor.alternateId eq "victim@` + OrgDomain + `"`: brute,
		`eventType eq "system.api_token.create" or eventType eq "user.account.privilege.grant"`: {grant, token},
		`(outcome.result eq "SUCCESS") AND target.alternateId eq "victim@` + OrgDomain + `"`:    {grant},
		`eventType sw "user.session" and not (outcome.result eq "FAILURE")`:                     {login},
		`debugContext.debugData.privilegeGranted pr`:                                            {grant},
	} {
		r := f.get(t, f.logsURL(url.Values{"filter": {filter}}))
		if got := uuids(r.events(t)); !slices.Equal(got, eventUUIDs(want)) {
			t.Errorf("filter %s = %v, want %v", filter, got, eventUUIDs(want))
		}
		if u, _ := url.Parse(r.link("next")); u == nil || u.Query().Get("filter") != filter {
			t.Errorf("next link %q drops the filter", r.link("next"))
		}
	}
	for q, want := range map[string][]LogEvent{
		"SUPER administrator":    {grant},
		"python-requests victim": brute,
		"no-such-keyword":        nil,
	} {
		r := f.get(t, f.logsURL(url.Values{"q": {q}}))
		if got := uuids(r.events(t)); !slices.Equal(got, eventUUIDs(want)) {
			t.Errorf("q=%s = %v, want %v", q, got, eventUUIDs(want))
		}
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, Options{})
	for name, auth := range map[string]string{
		"missing":     "",
		"wrong token": "SSWS nope",
		"empty SSWS":  "SSWS ",
		"bearer":      "Bearer " + testToken,
	} {
		t.Run(name, func(t *testing.T) {
			body := wantOktaError(t, f.do(t, f.logsURL(nil), auth), http.StatusUnauthorized, "E0000011")
			if body["errorSummary"] != "Invalid token provided" {
				t.Errorf("errorSummary = %v", body["errorSummary"])
			}
		})
	}
	for _, req := range f.sim.Requests() {
		if req.Accepted || req.Status != http.StatusUnauthorized {
			t.Errorf("request log entry %+v, want a rejected 401", req)
		}
	}

	forbidden := newFixture(t, Options{Forbidden: true})
	body := wantOktaError(t, forbidden.get(t, forbidden.logsURL(nil)), http.StatusForbidden, "E0000006")
	if body["errorSummary"] != "You do not have permission to perform the requested action" {
		t.Errorf("errorSummary = %v", body["errorSummary"])
	}

	anyToken := New(Options{Now: f.clock.Now})
	rec := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://okta.test"+LogsPath, nil)
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		anyToken.ServeHTTP(w, req)
		return w.Code
	}
	if rec("SSWS whatever") != http.StatusOK || rec("SSWS") != http.StatusUnauthorized {
		t.Error("Options.Token \"\" must accept any non-empty SSWS token and only those")
	}
}

func TestRequestLog(t *testing.T) {
	f := newFixture(t, Options{})
	f.get(t, f.logsURL(url.Values{"limit": {"5"}}))
	f.do(t, f.logsURL(nil), "")
	reqs := f.sim.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests logged, want 2", len(reqs))
	}
	want := Request{At: t0, Method: http.MethodGet, URL: f.srv.URL + LogsPath + "?limit=5", Status: 200, Authorized: true, Accepted: true}
	if reqs[0] != want {
		t.Errorf("log[0] = %+v, want %+v", reqs[0], want)
	}
	if reqs[1].Authorized || reqs[1].Status != http.StatusUnauthorized {
		t.Errorf("log[1] = %+v", reqs[1])
	}
	b, _ := json.Marshal(reqs)
	if strings.Contains(string(b), testToken) {
		t.Error("the request log holds the token")
	}
}

func TestOtherPathsAndMethods(t *testing.T) {
	f := newFixture(t, Options{})
	wantOktaError(t, f.get(t, f.srv.URL+"/api/v1/users"), http.StatusNotFound, "E0000007")
	req, _ := http.NewRequest(http.MethodPost, f.logsURL(nil), nil)
	req.Header.Set("Authorization", "SSWS "+testToken)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d", resp.StatusCode)
	}
}

func TestPersistRaw(t *testing.T) {
	f := newFixture(t, Options{})
	raw := json.RawMessage(`{"uuid":"u-1","published":"2026-11-25T09:59:00.000Z","eventType":"custom.thing","extra":{"k":[1,2]}}`)
	if err := f.sim.PersistRaw(raw, json.RawMessage(`{"published":"2026-11-25T09:59:00.000Z"}`)); err == nil {
		t.Fatal("an event without uuid was accepted")
	}
	if err := f.sim.PersistRaw(json.RawMessage(`{"uuid":"u-2","published":"yesterday"}`)); err == nil {
		t.Fatal("an event with a bad published was accepted")
	}
	if f.sim.Len() != 0 {
		t.Fatalf("Len = %d after rejected batches", f.sim.Len())
	}
	if err := f.sim.PersistRaw(raw); err != nil {
		t.Fatal(err)
	}
	r := f.get(t, f.logsURL(nil))
	if string(r.body) != "["+string(raw)+"]" {
		t.Errorf("raw event not served verbatim: %s", r.body)
	}
}
