package okta

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseOrgURL(t *testing.T) {
	ok := map[string]string{
		"https://acme.okta.com":         "https://acme.okta.com",
		"https://ACME.okta.com/":        "https://acme.okta.com",
		" https://acme.oktapreview.com": "https://acme.oktapreview.com",
		"https://acme.okta.com:8443":    "https://acme.okta.com:8443",
		"http://127.0.0.1:8089":         "http://127.0.0.1:8089",
		"http://127.8.9.10":             "http://127.8.9.10",
		"http://localhost:1234":         "http://localhost:1234",
		"http://[::1]:1234":             "http://[::1]:1234",
		`https://acme.okta.com\n`:       "https://acme.okta.com", // ${VAR} of a value ending in a newline
		"https://admin.okta.com":        "https://admin.okta.com",
	}
	for in, want := range ok {
		got, err := ParseOrgURL(in)
		if err != nil {
			t.Errorf("ParseOrgURL(%q): %v", in, err)
			continue
		}
		if got.String() != want {
			t.Errorf("ParseOrgURL(%q) = %s, want %s", in, got, want)
		}
	}
	bad := map[string]string{
		"":                                    "org_url is empty",
		"acme.okta.com":                       "absolute URL",
		"http://acme.okta.com":                "only https",
		"http://10.0.0.1":                     "only https",
		"ftp://acme.okta.com":                 "only https",
		"https://acme.okta.com/api/v1/logs":   "without a path",
		"https://acme.okta.com/?x=1":          "without a path, query",
		"https://user:secret@acme.okta.com":   "credentials",
		"https://%zz":                         "not a URL",
		"::garbage::":                         "not a URL",
		"https://acme-admin.okta.com":         "Admin Console, which does not serve the API with an API token: use https://acme.okta.com",
		"https://ACME-admin.oktapreview.com/": "use https://acme.oktapreview.com",
		"https://acme-admin.okta-emea.com":    "use https://acme.okta-emea.com",
	}
	for in, want := range bad {
		_, err := ParseOrgURL(in)
		if err == nil {
			t.Errorf("ParseOrgURL(%q): want error containing %q, got none", in, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseOrgURL(%q) = %v, want it to mention %q", in, err, want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseOrgURL(%q) error leaks the password: %v", in, err)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	org, _ := ParseOrgURL("https://acme.okta.com")
	cases := map[string]bool{
		"https://acme.okta.com/api/v1/logs?after=1":      true,
		"https://ACME.okta.com/api/v1/logs":              true,
		"http://acme.okta.com/api/v1/logs":               false,
		"https://acme.okta.com:444/api/v1/logs":          false,
		"https://evil.example/api/v1/logs":               false,
		"https://acme.okta.com.evil.example/api/v1/logs": false,
		"/api/v1/logs": false,
	}
	for link, want := range cases {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		if got := sameOrigin(org, u); got != want {
			t.Errorf("sameOrigin(%s) = %v, want %v", link, got, want)
		}
	}
}
