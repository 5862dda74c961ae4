package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// `oktadetect --help` introduces oktadetect, not Benthos, and its examples
// use components this binary has.
func TestHelpIntroducesOktadetect(t *testing.T) {
	out, code := run(t, t.TempDir(), "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	for _, want := range []string{docsURL, "okta_system_log", "cel_detect", "kafka_producer", "oktadetect demo",
		"oktadetect create okta_system_log/cel_detect,detections_to_alerts/kafka_producer", "COMMANDS:", "lint", "GLOBAL OPTIONS:"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, unwanted := range []string{"mundane", "benthos.dev", "create kafka//file"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("--help still says %q", unwanted)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// A stamped build prints its stamps.
func TestVersionPrintsStamps(t *testing.T) {
	out, code := run(t, t.TempDir(), "--version")
	want := "Version: " + testVersion + " (commit " + testCommit + ")\nDate: " + testDate + "\n"
	if code != 0 || out != want {
		t.Fatalf("--version: exit %d, output\n%q\nwant\n%q", code, out, want)
	}
}

// An unstamped build takes its version, commit and date from the build info.
func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(rev, at, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: modified}}
	}
	cases := []struct {
		name               string
		ver, rev, built    string
		info               *debug.BuildInfo
		wantVer, wantBuilt string
	}{
		{"go build in a checkout", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206023027-23b1464adb85+dirty"}, Settings: vcs("23b1464adb85", "2026-12-06T02:30:27Z", "true")},
			"v0.0.0-20261206023027-23b1464adb85+dirty (commit 23b1464adb85, modified)", "2026-12-06T02:30:27Z"},
		{"go build -buildvcs=false", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "unknown"},
		{"go install @v1.2.3", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3", "unknown"},
		{"stamped", "v2.0.0", "abc", "2026-01-01", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("def", "2025", "false")},
			"v2.0.0 (commit abc)", "2026-01-01"},
		{"no build info", "dev", "", "", nil, "dev", "unknown"},
	}
	for _, c := range cases {
		ver, built := describeBuild(c.ver, c.rev, c.built, c.info)
		if ver != c.wantVer || built != c.wantBuilt {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", c.name, ver, built, c.wantVer, c.wantBuilt)
		}
	}
}

// `oktadetect create` output for each of our components, alone and
// together, full and --small, passes `oktadetect lint`.
func TestCreateOutputPassesLint(t *testing.T) {
	dir := t.TempDir()
	exprs := []string{
		"okta_system_log//", "kafka_consumer//", "/cel_detect/", "/detections_to_alerts/", "//kafka_producer",
		"okta_system_log/cel_detect/kafka_producer",
		"okta_system_log/cel_detect,detections_to_alerts/kafka_producer",
		"kafka_consumer/cel_detect,detections_to_alerts/kafka_producer",
	}
	for i, expr := range exprs {
		for _, small := range []bool{true, false} {
			args := []string{"create", expr}
			if small {
				args = []string{"create", "-s", expr}
			}
			conf, code := run(t, dir, args...)
			if code != 0 {
				t.Fatalf("%v: exit %d\n%s", args, code, conf)
			}
			path := filepath.Join(dir, strings.ReplaceAll(expr, "/", "_")+"_"+string(rune('a'+i))+".yaml")
			if small {
				path = strings.TrimSuffix(path, ".yaml") + "_small.yaml"
			}
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, code := run(t, dir, "lint", path); code != 0 {
				t.Errorf("%v output fails lint (exit %d):\n%s\n--- config:\n%s", args, code, out, conf)
			}
		}
	}
}
