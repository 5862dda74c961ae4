package okta

import "testing"

func TestNextLink(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"okta separate headers", []string{
			`<https://acme.okta.com/api/v1/logs?limit=1000&since=2026-01-01T00%3A00%3A00.000Z>; rel="self"`,
			`<https://acme.okta.com/api/v1/logs?limit=1000&after=1700000000000_1>; rel="next"`,
		}, "https://acme.okta.com/api/v1/logs?limit=1000&after=1700000000000_1"},
		{"one header, comma separated", []string{
			`<https://a/x?p=1,2>; rel="self", <https://a/y?after=3>; rel="next"`,
		}, "https://a/y?after=3"},
		{"unquoted rel and spacing", []string{`  <https://a/n> ;rel=next`}, "https://a/n"},
		{"several relations", []string{`<https://a/n>; rel="prev next"`}, "https://a/n"},
		{"quoted comma in a parameter", []string{`<https://a/s>; title="a, b"; rel="self", <https://a/n>; rel="next"`}, "https://a/n"},
		{"no next", []string{`<https://a/s>; rel="self"`}, ""},
		{"none", nil, ""},
		{"garbage", []string{`rel="next"`, `<unterminated; rel="next"`}, ""},
		{"empty target", []string{`<>; rel="next"`}, ""},
	}
	for _, c := range cases {
		if got := nextLink(c.headers); got != c.want {
			t.Errorf("%s: nextLink = %q, want %q", c.name, got, c.want)
		}
	}
}

func FuzzNextLink(f *testing.F) {
	f.Add(`<https://acme.okta.com/api/v1/logs?after=1>; rel="next"`)
	f.Add(`<a>; rel="self", <b>; rel="next"`)
	f.Add(`<"\`)
	f.Fuzz(func(t *testing.T, h string) {
		next := nextLink([]string{h})
		if len(next) > len(h) {
			t.Fatalf("next link %q longer than header %q", next, h)
		}
	})
}
