package okta

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedactErrorRemovesSecretsAndFragments(t *testing.T) {
	assertion := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJhcHAifQ.c2lnbmF0dXJlLW9mLXRoZS1hc3NlcnRpb24"
	token := "00aSecretTokenValue-0123456789abcdef"
	secrets := []string{token, assertion}
	cause := fmt.Errorf("wrapped: %w", errors.New("peer said "+token))
	e := &RequestError{
		Kind: FailConfig, Status: 400, msg: "refused " + assertion[:30] + "…", Code: "E1 " + token,
		Summary: "client_assertion " + assertion + " is invalid", ErrorID: token[10:], cause: cause,
	}
	got := redactError(e, secrets)
	text := got.Error()
	for _, frag := range []string{token[:minSecretLen], token[10 : 10+minSecretLen], assertion[:minSecretLen], assertion[40 : 40+minSecretLen]} {
		if strings.Contains(text, frag) {
			t.Fatalf("%q survives redaction: %s", frag, text)
		}
	}
	var re *RequestError
	if !errors.As(got, &re) || re.Kind != FailConfig || re.Status != 400 {
		t.Fatalf("redaction lost the error's type: %#v", got)
	}
	if !strings.Contains(text, "refused "+redacted) || !strings.Contains(text, "HTTP 400") {
		t.Fatalf("the message around the secret must stay: %s", text)
	}
	if plain := errors.New("nothing secret here"); redactError(plain, secrets) != plain {
		t.Fatal("an error without secrets must be returned as is")
	}
	if got := redactString("short", []string{"abc"}); got != "short" {
		t.Fatalf("secrets shorter than %d bytes are not redacted, got %q", minSecretLen, got)
	}
}
