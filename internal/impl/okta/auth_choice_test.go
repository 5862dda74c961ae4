package okta

import (
	"strings"
	"testing"
)

// An empty oauth.client_id (an unset ${OKTA_CLIENT_ID:}) next to a token
// counts as unset, as an empty api_token does next to oauth: one config can
// take either credential from the environment (`oktadetect create` writes
// such a config).
func TestEmptyCredentialCountsAsUnset(t *testing.T) {
	cases := []struct{ fields, wantErr string }{
		{"api_token: 00abcdefghijklmnopqrstuvwxyz0123456789abcd\noauth:\n  client_id: ''\n", ""},
		{"api_token: ''\noauth:\n  client_id: ''\n", "oauth.client_id is empty"},
		{"api_token: 00abcdefghijklmnopqrstuvwxyz0123456789abcd\noauth:\n  client_id: 0oa1\n  private_key_file: /k.pem\n", "set either api_token or oauth, not both"},
	}
	for _, c := range cases {
		conf, err := inputSpec().ParseYAML("org_url: https://acme.okta.com\n"+c.fields, nil)
		if err != nil {
			t.Fatalf("%q: %v", c.fields, err)
		}
		token, oauth, err := parseAuth(conf)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%q: %v", c.fields, err)
		case c.wantErr == "" && token == "" && oauth == nil:
			t.Errorf("%q: no credential", c.fields)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%q: got %v, want %q", c.fields, err, c.wantErr)
		}
	}
}
