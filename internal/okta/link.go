package okta

import (
	"strings"
)

// nextLink returns the target of the rel="next" link among the Link header
// values, or "" when there is none.
//
// Okta sends one Link header per relation (`<…>; rel="self"`, `<…>; rel="next"`)
// but RFC 8288 also allows several comma-separated links in one header, so both
// forms are accepted. The URL is returned exactly as given: Okta's cursors are
// opaque and must be followed verbatim.
func nextLink(headers []string) string {
	for _, h := range headers {
		for _, link := range splitLinks(h) {
			target, params, ok := parseLink(link)
			if ok && hasRel(params, "next") {
				return target
			}
		}
	}
	return ""
}

// splitLinks splits a Link header value on the commas between links, ignoring
// commas inside <…> and quoted strings.
func splitLinks(h string) []string {
	var (
		out     []string
		start   int
		inURL   bool
		inQuote bool
	)
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case c == '<':
			inURL = true
		case c == '>':
			inURL = false
		case c == '"' && !inURL:
			inQuote = true
		case c == ',' && !inURL:
			out = append(out, h[start:i])
			start = i + 1
		}
	}
	return append(out, h[start:])
}

// parseLink parses one `<target>; param=value; …` link.
func parseLink(link string) (target string, params []string, ok bool) {
	link = strings.TrimSpace(link)
	if !strings.HasPrefix(link, "<") {
		return "", nil, false
	}
	end := strings.IndexByte(link, '>')
	if end < 0 {
		return "", nil, false
	}
	target = strings.TrimSpace(link[1:end])
	for _, p := range strings.Split(link[end+1:], ";") {
		if p = strings.TrimSpace(p); p != "" {
			params = append(params, p)
		}
	}
	return target, params, target != ""
}

// hasRel reports whether the link parameters include relation rel. The rel
// value may be quoted and may list several space-separated relations.
func hasRel(params []string, rel string) bool {
	for _, p := range params {
		name, value, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "rel") {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		for _, r := range strings.Fields(value) {
			if strings.EqualFold(r, rel) {
				return true
			}
		}
	}
	return false
}
