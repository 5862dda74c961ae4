package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

// The secrets redaction suite. Every run of the binary in this package (the
// crash, shutdown and Kafka suites, the stdout kill test) has its output
// recorded; TestMain greps all of it at the end (checkRedaction) for the API
// token and for the OAuth secrets of the run below: the private key (any
// line of its PEM body) and every access token the simulator issued.

var secrets struct {
	mu   sync.Mutex
	list []string
}

func addSecret(s ...string) {
	secrets.mu.Lock()
	defer secrets.mu.Unlock()
	secrets.list = append(secrets.list, s...)
}

// checkRedaction returns a description of every secret found in a recorded
// output, or "" when there is none.
func checkRedaction() string {
	allOutputs.mu.Lock()
	runs := append([]*testkit.Buffer(nil), allOutputs.runs...)
	allOutputs.mu.Unlock()
	secrets.mu.Lock()
	list := append([]string{token}, secrets.list...)
	secrets.mu.Unlock()
	var found []string
	total := 0
	for i, r := range runs {
		out := r.String()
		total += len(out)
		for _, s := range list {
			if len(s) >= 16 && strings.Contains(out, s) {
				found = append(found, fmt.Sprintf("run %d prints secret %.8s…", i, s))
			}
		}
	}
	fmt.Printf("redaction suite: %d runs of the binary, %d bytes of output, %d secrets checked, %d leaks\n", len(runs), total, len(list), len(found))
	return strings.Join(found, "\n")
}

// An OAuth service app with DPoP, at debug level, with the access tokens
// revoked mid-run (so the input renews them) and a few API faults: the
// binary's output must not contain the key or any access token.
func TestOAuthRunLeaksNoSecret(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, line := range strings.Split(string(pemBytes), "\n") {
		if !strings.HasPrefix(line, "-----") && len(line) >= 16 {
			addSecret(line)
		}
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	sim := oktasim.New(oktasim.Options{Token: token, RequireDPoP: true, DPoPNonces: true, TokenTTL: 2 * time.Second})
	sim.RegisterClient("0oaRedactionApp", "kid1", key.Public(), "okta.logs.read")
	evs := oktasim.NewGenerator(31).Backlog(3000, time.Now().Add(-time.Hour), time.Second)
	sim.Persist(evs...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != oktasim.TokenPath {
			sim.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &tr) == nil && tr.AccessToken != "" {
			addSecret(tr.AccessToken)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()

	conf := filepath.Join(dir, "oauth.yaml")
	if err := os.WriteFile(conf, []byte(`
http:
  address: 127.0.0.1:0
input:
  okta_system_log:
    org_url: `+srv.URL+`
    oauth:
      client_id: 0oaRedactionApp
      private_key_file: `+keyFile+`
      key_id: kid1
      scopes: [ okta.logs.read ]
      dpop: auto
    poll_interval: 200ms
    initial_lookback: 2h
    limit: 200
    rate_limit_share: 1
output:
  stdout: {}
logger:
  level: TRACE
  format: logfmt
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-c", conf)
	cmd.Env = environ()
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	recordOutput(out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() { _ = cmd.Process.Kill(); <-done }()

	// Revoke mid-run so tokens are renewed; inject faults so errors are logged.
	time.Sleep(1500 * time.Millisecond)
	sim.RevokeTokens()
	deadline := time.Now().Add(testkit.Patience)
	for strings.Count(out.String(), `"uuid":`) < len(evs) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events printed:\n%s", strings.Count(out.String(), `"uuid":`), len(evs), tail(out.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	stats := sim.OAuthStats()
	secrets.mu.Lock()
	n := len(secrets.list)
	secrets.mu.Unlock()
	t.Logf("OAuth run: %d events, %d bytes of TRACE output, oauth stats %+v, %d secrets to look for", len(evs), len(out.String()), stats, n)
	if leaks := checkRedaction(); leaks != "" {
		t.Fatal(leaks)
	}
}
