package e2e

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// OKTA_API_TOKEN and OKTA_ORG_URL ending in a newline, as a Kubernetes secret
// made with `echo` mounts them: the shipped config reads the org.
func TestBinaryTokenWithTrailingNewline(t *testing.T) {
	sim := oktasim.New(oktasim.Options{Token: token})
	evs := oktasim.NewGenerator(17).Backlog(20, time.Now().Add(-10*time.Minute), time.Second)
	sim.Persist(evs...)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	run := startStdout(t, srv.URL, t.TempDir(), "OKTA_API_TOKEN="+token+"\n", "OKTA_ORG_URL="+srv.URL+"\n")
	collect(t, run, map[string]int{}, len(evs), testkit.Patience)
}

// A cursor cache whose directory does not exist (and is not
// $OKTADETECT_STATE_DIR, which the binary creates at start): the binary reads
// nothing (the cursor could not be saved, and a restart would read everything
// again), says which directory to create, and starts reading once it exists.
func TestBinaryMissingCursorDirectory(t *testing.T) {
	sim := oktasim.New(oktasim.Options{Token: token})
	evs := oktasim.NewGenerator(19).Backlog(20, time.Now().Add(-10*time.Minute), time.Second)
	sim.Persist(evs...)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	base := t.TempDir()
	dir := filepath.Join(base, "cursor")
	conf := filepath.Join(base, "c.yaml")
	writeFile(t, conf, `
input:
  okta_system_log:
    org_url: ${OKTA_ORG_URL}
    api_token: ${OKTA_API_TOKEN}
    initial_lookback: 1h
    poll_interval: 300ms
    checkpoint_cache: cursor
cache_resources:
  - label: cursor
    file:
      directory: `+dir+`
output:
  stdout: {}
`)
	run := startBinary(t, environ("OKTA_ORG_URL="+srv.URL, "OKTA_API_TOKEN="+token), "-c", conf)
	testkit.Until(t, "the unsavable cursor to be reported", func() (bool, string) {
		return strings.Contains(run.output.String(), "create its directory"), run.output.String()
	})
	for _, want := range []string{"cannot save the Okta cursor to checkpoint_cache", dir, "the input reads nothing until the cursor can be saved"} {
		if !strings.Contains(run.output.String(), want) {
			t.Fatalf("the error must say %q:\n%s", want, run.output.String())
		}
	}
	if n := len(sim.Requests()); n != 0 || strings.Contains(run.output.String(), `"uuid":`) {
		t.Fatalf("%d requests sent, or events printed, with a cursor that cannot be saved: want none", n)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	testkit.Until(t, "every event to be printed once the directory exists", func() (bool, string) {
		out := run.output.String()
		for _, e := range evs {
			if !strings.Contains(out, e.UUID) {
				return false, "missing " + e.UUID
			}
		}
		return true, ""
	})
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		t.Fatalf("no cursor saved in %s (%v)", dir, err)
	}
}

// An Admin Console URL or a token pasted with its scheme: the binary exits
// at once, naming the fix.
func TestBinaryRefusesAdminURLAndTokenPrefix(t *testing.T) {
	cases := []struct{ orgURL, token, want string }{
		{"https://acme-admin.okta.com", token, "use https://acme.okta.com"},
		{"https://acme.okta.com", "SSWS " + token, `api_token starts with "SSWS ": set only the token itself, without the SSWS prefix`},
	}
	for _, tc := range cases {
		run := startStdout(t, tc.orgURL, t.TempDir(), "OKTA_API_TOKEN="+tc.token)
		select {
		case <-run.done:
		case <-time.After(testkit.Patience):
			t.Fatalf("%s: still running with a config that cannot work", tc.orgURL)
		}
		out := run.stderr.String()
		if !strings.Contains(out, tc.want) {
			t.Fatalf("%s %s: the error must say %q:\n%s", tc.orgURL, strings.Fields(tc.token)[0], tc.want, out)
		}
		if strings.Contains(out, token) {
			t.Fatalf("%s: the token appears in the output", tc.orgURL)
		}
	}
}
