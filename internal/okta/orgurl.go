package okta

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseOrgURL validates org_url and returns it normalised to scheme://host[:port].
//
// The org URL is where the API token is sent, so it is held to a strict shape:
// https only (plain http only for loopback hosts, which tests and the simulator
// use), no credentials, path, query or fragment that could redirect requests.
func ParseOrgURL(raw string) (*url.URL, error) {
	raw = TrimValue(raw)
	if raw == "" {
		return nil, errors.New("org_url is empty: set it to your Okta org, e.g. https://acme.okta.com")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("org_url %q is not a URL: %w", raw, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("org_url %q must be an absolute URL such as https://acme.okta.com", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("org_url %q must not contain credentials", redactUserinfo(u))
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("org_url %q must be the org's origin only, without a path, query or fragment (e.g. https://%s)", raw, u.Host)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("org_url %q uses http: only https is allowed, except for loopback hosts used in tests", raw)
		}
	default:
		return nil, fmt.Errorf("org_url %q has scheme %q: only https is allowed", raw, u.Scheme)
	}
	if org, ok := adminConsoleOrg(u.Hostname()); ok {
		right := "https://" + org
		if u.Port() != "" {
			right += ":" + u.Port()
		}
		return nil, fmt.Errorf("org_url %q is the org's Admin Console, which does not serve the API with an API token: use %s", raw, right)
	}
	return &url.URL{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Host)}, nil
}

// oktaDomains are the domains Okta orgs live under.
var oktaDomains = []string{"okta.com", "oktapreview.com", "okta-emea.com", "okta-gov.com", "okta.mil"}

// adminConsoleOrg reports whether host is an Okta Admin Console host
// (<org>-admin.<okta domain>), and returns the org's own host.
func adminConsoleOrg(host string) (string, bool) {
	host = strings.ToLower(host)
	for _, d := range oktaDomains {
		sub, ok := strings.CutSuffix(host, "."+d)
		if !ok || strings.Contains(sub, ".") {
			continue
		}
		if org, ok := strings.CutSuffix(sub, "-admin"); ok && org != "" {
			return org + "." + d, true
		}
	}
	return "", false
}

// isLoopback reports whether host is localhost or a loopback IP (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin reports whether link is an absolute URL on org's scheme, host and port.
func sameOrigin(org *url.URL, link *url.URL) bool {
	return strings.EqualFold(link.Scheme, org.Scheme) && strings.EqualFold(link.Host, org.Host)
}

func redactUserinfo(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}
