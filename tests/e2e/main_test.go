// Package e2e runs the real oktadetect binary against the Okta simulator over
// real HTTP (and, for Kafka, kfake over the real Kafka protocol).
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// binary is the oktadetect binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oktadetect-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "oktadetect")
	build := exec.Command("go", "build", "-o", binary, "./cmd/oktadetect")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building oktadetect: %v\n%s", err, out)
		os.Exit(1)
	}
	// Every run of the binary listens on a port of its own unless a test says
	// otherwise: only the test of the default address (binding_test.go) may
	// take 127.0.0.1:4195, so runs in parallel never collide on it.
	if os.Getenv("OKTADETECT_HTTP_ADDRESS") == "" {
		os.Setenv("OKTADETECT_HTTP_ADDRESS", "127.0.0.1:0")
	}
	code := m.Run()
	// The secrets redaction suite, over the output of every run above.
	if leaks := checkRedaction(); leaks != "" {
		fmt.Fprintf(os.Stderr, "SECRETS LEAKED in the binary's output:\n%s\n", leaks)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root, two levels above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func configPath(name string) string {
	return filepath.Join(repoRoot(), "config", name)
}

// environ returns the environment for the binary: ours plus kv pairs.
func environ(kv ...string) []string {
	return append(os.Environ(), kv...)
}
