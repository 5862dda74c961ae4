package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Stamps the test binary is built with, as the Dockerfile stamps releases.
const (
	testVersion = "v9.8.7"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
	testDate    = "2026-01-02T03:04:05Z"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// testBinary builds the real oktadetect binary once for the package's tests.
func testBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "oktadetect-cmd-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "oktadetect")
		cmd := exec.Command("go", "build", "-o", binPath, "-ldflags",
			"-X main.version="+testVersion+" -X main.commit="+testCommit+" -X main.date="+testDate, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// run runs the binary in dir and returns its combined output and exit code.
func run(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("oktadetect %v: %v", args, err)
	}
	return string(out), 0
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
