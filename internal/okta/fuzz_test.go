package okta

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Seed corpora for every fuzz target of the package live in
// testdata/fuzz/<FuzzName>/; run one with e.g.
//   go test -run '^$' -fuzz '^FuzzParseChallenges$' -fuzztime 20s ./internal/okta

// WWW-Authenticate (DPoP challenges) from Okta or anything on the path.
func FuzzParseChallenges(f *testing.F) {
	f.Add(`DPoP algs="ES256 RS256", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
	f.Add(`Bearer realm="okta", DPoP algs="ES256"`)
	f.Add(`DPoP error="invalid_dpop_proof",,, x=`)
	f.Add(`"`)
	f.Fuzz(func(t *testing.T, v string) {
		for _, ch := range parseChallenges([]string{v}) {
			if ch.params == nil {
				t.Fatal("challenge without params map")
			}
			if len(ch.scheme) > len(v) {
				t.Fatalf("scheme %q longer than the header", ch.scheme)
			}
		}
	})
}

// The OAuth token endpoint's 200 body: never a token that is already due
// for renewal (that would hammer the token endpoint), never a panic.
func FuzzAcceptToken(f *testing.F) {
	f.Add([]byte(`{"token_type":"DPoP","expires_in":3600,"access_token":"eyJ.x.y","scope":"okta.logs.read"}`))
	f.Add([]byte(`{"token_type":"Bearer","expires_in":-5,"access_token":"a"}`))
	f.Add([]byte(`{"token_type":"Bearer","expires_in":9223372036854775807,"access_token":"a"}`))
	f.Add([]byte(`{"access_token":""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a := &oauthAuth{clientID: "0oa1"}
		sent := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		tok, err := a.acceptToken(body, sent, http.StatusOK, RateInfo{})
		if err != nil {
			if tok != nil {
				t.Fatal("token returned with an error")
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Fatalf("error leaks the token: %v", err)
			}
			return
		}
		if !tok.renewAt.After(sent) {
			t.Fatalf("token due for renewal at %v, before it was even sent (%v): %s", tok.renewAt, sent, body)
		}
	})
}

// Rate-limit headers from a hostile or broken server.
func FuzzParseRateHeaders(f *testing.F) {
	f.Add("600", "599", "1764064800", "Tue, 25 Nov 2026 10:00:00 GMT")
	f.Add("-1", "x", "99999999999999999999", "")
	f.Add("600", "0", "3341901600", "Tue, 25 Nov 2026 10:00:00 GMT")  // 50 years ahead
	f.Add("600", "10", "1764064800", "Fri, 25 Nov 2033 10:00:00 GMT") // Date 7 years ahead
	f.Fuzz(func(t *testing.T, limit, remaining, reset, date string) {
		h := http.Header{}
		h.Set("X-Rate-Limit-Limit", limit)
		h.Set("X-Rate-Limit-Remaining", remaining)
		h.Set("X-Rate-Limit-Reset", reset)
		h.Set("Date", date)
		now := time.Now()
		r := parseRateHeaders(h, now)
		// Whatever the server sends, a believed window is bounded.
		if r.Known && (r.Limit <= 0 || r.ResetAt.Before(now) || r.ResetAt.Sub(now) > maxRateWait) {
			t.Fatalf("believed %+v", r)
		}
		if !r.Known && r.Problem == "" {
			t.Fatalf("headers not used without a reason: %+v", r)
		}
	})
}
