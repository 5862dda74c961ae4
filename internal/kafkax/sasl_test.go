package kafkax

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// connectionSpec is a config spec of the connection fields alone.
func connectionSpec() *service.ConfigSpec {
	return service.NewConfigSpec().Fields(SeedBrokersField(), ClientIDField(), TLSField(), SASLField())
}

func TestSASLMechanismsBuild(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret #not a comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for yaml, want := range map[string]string{
		"[{mechanism: OAUTHBEARER, token: abc}]":                                                  "OAUTHBEARER",
		"[{mechanism: AWS_MSK_IAM, aws: {access_key_id: AKIA, secret_access_key: s}}]":            "AWS_MSK_IAM",
		"[{mechanism: SCRAM-SHA-256, username: u, password_file: " + pwFile + "}]":                "SCRAM-SHA-256",
		"[{mechanism: OAUTHBEARER}]":                                                              "needs token",
		"[{mechanism: AWS_MSK_IAM, aws: {access_key_id: AKIA}}]":                                  "go together",
		"[{mechanism: PLAIN, username: u, password: p, password_file: " + pwFile + "}]":           "exclusive",
		"[{mechanism: PLAIN, username: u, password_file: " + filepath.Join(dir, "missing") + "}]": "no such file",
	} {
		conf, err := connectionSpec().ParseYAML("seed_brokers: [x:9092]\nsasl: "+yaml+"\n", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if _, err := ParseConnection(conf); err != nil {
			got = err.Error()
		} else {
			mechs, _ := saslMechanisms(conf)
			got = mechs[0].Name()
		}
		if !strings.Contains(got, want) {
			t.Errorf("sasl %s: got %q, want %q", yaml, got, want)
		}
	}
	if s, err := readSecretFile(pwFile); err != nil || s != "s3cret #not a comment" {
		t.Errorf("password_file read as %q, %v", s, err)
	}
}
