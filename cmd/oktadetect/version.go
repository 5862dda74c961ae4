package main

import (
	"runtime/debug"
	"strings"
)

// Stamped at build time (the Dockerfile does, from its build args):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD) -X main.date=…"
//
// Unstamped builds take them from the build info Go records: the module
// version for `go install …@version`, the VCS revision and time for builds
// from a git checkout.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildVersion returns the version line and build date `--version` prints.
func buildVersion() (string, string) {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, date, info)
}

// describeBuild merges the stamped values with the build info: a stamped
// value wins, an empty or placeholder one is filled in.
func describeBuild(ver, rev, built string, info *debug.BuildInfo) (string, string) {
	modified := false
	if info != nil {
		if ver == "" || ver == "dev" {
			if mv := info.Main.Version; mv != "" && mv != "(devel)" {
				ver = mv
			}
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				if built == "" {
					built = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if ver == "" {
		ver = "dev"
	}
	if rev != "" {
		detail := "commit " + rev
		if modified {
			detail += ", modified"
		}
		// Go's pseudo-versions already end in the short commit; the full
		// one is still worth printing.
		if !strings.Contains(ver, "commit ") {
			ver += " (" + detail + ")"
		}
	}
	if built == "" {
		built = "unknown"
	}
	return ver, built
}
