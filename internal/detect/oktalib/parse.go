package oktalib

import (
	"encoding/json"
	"strings"
)

// logOnly returns debugData.logOnlySecurityData as an object, decoding it
// when it is a JSON string.
func logOnly(dd map[string]any) map[string]any {
	switch l := dd["logOnlySecurityData"].(type) {
	case map[string]any:
		return l
	case string:
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			return m
		}
	}
	return nil
}

func behaviors(dd map[string]any) map[string]string {
	out := map[string]string{}
	addPair := func(s string) {
		name, verdict, ok := strings.Cut(s, "=")
		if name = strings.TrimSpace(name); ok && name != "" {
			out[name] = strings.TrimSpace(verdict)
		}
	}
	switch b := dd["behaviors"].(type) {
	case string:
		for _, p := range splitBraced(b) {
			addPair(p)
		}
	case []any:
		for _, p := range b {
			if s, ok := p.(string); ok {
				addPair(s)
			}
		}
	case map[string]any:
		for k, val := range b {
			if s, ok := val.(string); ok {
				out[strings.TrimSpace(k)] = strings.TrimSpace(s)
			} else {
				addPair(k) // {"New IP=POSITIVE": null}
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	if b, ok := logOnly(dd)["behaviors"].(map[string]any); ok {
		for k, val := range b {
			if s, ok := val.(string); ok {
				out[k] = s
			}
		}
	}
	return out
}

func risk(dd map[string]any) string {
	if r, ok := dd["risk"].(string); ok {
		for _, p := range splitBraced(r) {
			if k, v, ok := strings.Cut(p, "="); ok && strings.TrimSpace(k) == "level" {
				return strings.TrimSpace(v)
			}
		}
	}
	if r, ok := logOnly(dd)["risk"].(map[string]any); ok {
		if l, ok := r["level"].(string); ok {
			return l
		}
	}
	return ""
}

// splitBraced splits Okta's Java-map rendering "{a=b, c=d}" into "a=b",
// "c=d". Values holding ", " inside brackets (reasons=[x, y]) stay whole.
func splitBraced(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[', '{', '(':
			depth++
		case ']', '}', ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}
