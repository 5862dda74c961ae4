package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// switchOrg serves one of two simulated orgs at one address: one that
// refuses the binary's token (401) and one that accepts it, so a test can
// break and fix the credential while the binary runs.
type switchOrg struct {
	refusing, accepting *oktasim.Sim
	accept              atomic.Bool
}

func (s *switchOrg) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.accept.Load() {
		s.accepting.ServeHTTP(w, r)
		return
	}
	s.refusing.ServeHTTP(w, r)
}

// /ready follows whether the org can be read: never 200 while Okta answers
// 401, 200 once the token is accepted (without a restart, on the input's
// slow retry schedule), and not 200 again when Okta refuses it later. While
// nothing can be read, okta_lag_seconds keeps growing, and
// okta_last_success_timestamp_seconds says when the last page was read.
func TestReadyFollowsWhetherOktaCanBeRead(t *testing.T) {
	org := &switchOrg{
		refusing:  oktasim.New(oktasim.Options{Token: "a-different-token"}),
		accepting: oktasim.New(oktasim.Options{Token: token}),
	}
	g := oktasim.NewGenerator(13)
	evs := g.Backlog(50, time.Now().Add(-10*time.Minute), 100*time.Millisecond)
	org.accepting.Persist(evs...)
	srv := httptest.NewServer(org)
	defer srv.Close()
	run, addr := startOutageStdout(t, srv.URL)

	testkit.Until(t, "the 401 to be reported while /ready is not 200", func() (bool, string) {
		if st := readyStatus(addr); st == http.StatusOK {
			t.Fatalf("/ready answered 200 while Okta refuses the token:\n%s", run.stderr.String())
		}
		return strings.Contains(run.stderr.String(), "rejected the credentials") && len(org.refusing.Requests()) > 0, run.stderr.String()
	})
	if st := readyStatus(addr); st == http.StatusOK || st == 0 {
		t.Fatalf("/ready = %d after a 401, want the binary up and not ready", st)
	}
	if v, _ := metricValue(testkit.Scrape(t, "http://"+addr+"/metrics"), "okta_last_success_timestamp_seconds"); v != 0 {
		t.Fatalf("okta_last_success_timestamp_seconds = %v before any page was read, want 0", v)
	}

	org.accept.Store(true) // the token is fixed in Okta
	seen := map[string]int{}
	collect(t, run, seen, len(evs), testkit.Patience)
	testkit.Until(t, "/ready to answer 200 once Okta accepts the token", func() (bool, string) {
		st := readyStatus(addr)
		return st == http.StatusOK, fmt.Sprintf("/ready %d", st)
	})
	body := testkit.Scrape(t, "http://"+addr+"/metrics")
	if v, _ := metricValue(body, "okta_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("okta_last_success_timestamp_seconds = %v after pages were read, want about now", v)
	}
	lag, _ := metricValue(body, "okta_lag_seconds")

	org.accept.Store(false) // the token is revoked: an outage
	testkit.Until(t, "/ready to stop answering 200, and the lag to grow, while Okta refuses the token", func() (bool, string) {
		st := readyStatus(addr)
		now, _ := metricValue(testkit.Scrape(t, "http://"+addr+"/metrics"), "okta_lag_seconds")
		return st != http.StatusOK && st != 0 && now >= lag+3, fmt.Sprintf("/ready %d, okta_lag_seconds %v (was %v)", st, now, lag)
	})
	stillRunning(t, run)
}
