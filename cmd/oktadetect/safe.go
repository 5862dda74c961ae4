package main

import (
	"fmt"
	"os"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Environment variables the binary reads itself (the shipped configs read
// them too, so one setting covers every mode).
const (
	envHTTPAddress = "OKTADETECT_HTTP_ADDRESS"
	envStateDir    = "OKTADETECT_STATE_DIR"
)

// defaultHTTPAddress is where the HTTP server (metrics, /ready, debug
// endpoints and, in streams mode, the streams API that can start any
// processor) listens when a config has no http.address: loopback only.
// Benthos' own default is 0.0.0.0:4195, reachable by anyone on the network.
const defaultHTTPAddress = "127.0.0.1:4195"

// mainSchema is Benthos' config schema with http.address defaulting to
// loopback, or to $OKTADETECT_HTTP_ADDRESS when set, so that exposing the
// server is a deliberate choice. The schema's default applies to `run`,
// `streams` (its observability config) and configs without an http block.
func mainSchema() *service.ConfigSchema {
	s := service.GlobalEnvironment().FullConfigSchema(version, "")
	s.SetFieldDefault(httpAddress(), "http", "address")
	return s
}

func httpAddress() string {
	if a := os.Getenv(envHTTPAddress); a != "" {
		return a
	}
	return defaultHTTPAddress
}

// ensureStateDir creates $OKTADETECT_STATE_DIR (0700: cursors and detection
// state are private) before a config runs, so that a missing directory is
// not found by the first failing save, after events have already flowed.
func ensureStateDir() error {
	dir := os.Getenv(envStateDir)
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s=%s: cannot create the state directory: %w; create it (mode 0700) or point %s at a writable directory", envStateDir, dir, err, envStateDir)
	}
	return nil
}
