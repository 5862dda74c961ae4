package okta_test

import (
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/oktasim"
)

// A server echoing a DPoP-bound access token and its proof back (in Okta's
// JSON error fields, WWW-Authenticate and an HTML page): the errors are
// reported, the access token and every proof stay out of the logs
// (startOAuthPipeline checks every marker of them after the run).
func TestOAuthEchoedCredentialsAreRedacted(t *testing.T) {
	key := newECKey(t)
	org := newOAuthOrg(t, oktasim.Options{RateLimit: 1000, RequireDPoP: true}, key)
	want := org.backlog(30)
	for _, status := range []int{500, 502, 200, 401, 500} {
		org.sim.Inject(oktasim.Fault{Kind: oktasim.FaultEcho, Status: status})
	}
	c := &collector{}
	p := startOAuthPipeline(t, oauthInputConf(org, key.file(t), "    dpop: always", ""), key, c)
	c.waitForAll(t, want)
	assertExactlyOnce(t, c, want)
	for _, s := range []string{"HTTP 500", "HTTP 502", "not a JSON array", "[redacted]"} {
		waitLog(t, p, s)
	}
	if strings.Contains(p.logs.String(), oktasim.AccessTokenPrefix) {
		t.Fatalf("an access token appears in the logs:\n%s", p.logs.String())
	}
}
