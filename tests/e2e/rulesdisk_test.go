package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// rulesPipeline tags a steady stream of {"kind":"x"} events with the rules
// of $RULES (hot reload on) and prints them.
const rulesPipeline = `
input:
  generate:
    interval: 20ms
    mapping: 'root = {"uuid": uuid_v4(), "published": now(), "kind": "x"}'
pipeline:
  processors:
    - cel_detect: {rules: [ "${RULES}" ]}
output:
  stdout: {}
`

func xRule(id string) string { return "// id: " + id + "\nevent.kind == 'x'\n" }

// k8sVolume lays dir out as the kubelet mounts a ConfigMap (files in
// `..<stamp>/`, `..data` linking to it, each key a symlink through
// `..data`), or, called again, swaps `..data` atomically to a new version
// as the kubelet does on an update.
func k8sVolume(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	version := "..2026_12_06_" + stamp
	check := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	check(os.MkdirAll(filepath.Join(dir, version), 0o755))
	for name, src := range files {
		check(os.WriteFile(filepath.Join(dir, version, name), []byte(src), 0o644))
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	check(os.Symlink(version, filepath.Join(dir, "..data_tmp")))
	check(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); os.IsNotExist(err) {
			check(os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
		}
	}
	if old != "" {
		check(os.RemoveAll(filepath.Join(dir, old)))
	}
}

// The binary runs rules from a ConfigMap-style volume, picks up the
// kubelet's atomic `..data` swap (the new rule tags events), reports a FIFO
// dropped into the directory without stalling, and still shuts down
// promptly on SIGTERM.
func TestRulesFromConfigMapVolume(t *testing.T) {
	base := t.TempDir()
	rules := filepath.Join(base, "rules")
	if err := os.Mkdir(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	k8sVolume(t, rules, "01_02_03.123", map[string]string{"a.cel": xRule("Local.A")})
	conf := filepath.Join(base, "pipeline.yaml")
	writeFile(t, conf, rulesPipeline)
	run := startBinary(t, environ("RULES="+rules, "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0"), "-c", conf)
	waitOutput(t, run, `"id":"Local.A"`)

	k8sVolume(t, rules, "01_05_00.456", map[string]string{"a.cel": xRule("Local.A"), "b.cel": xRule("Local.B")})
	waitOutput(t, run, `"id":"Local.B"`)

	fifo := filepath.Join(rules, "stuck.cel")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, run, fifo+" is not a regular file (a FIFO)")
	took := run.terminate(t, testkit.Patience)
	t.Logf("SIGTERM with a FIFO among the rules: exited in %v", took.Round(time.Millisecond))
	if run.err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", run.err, tail(run.output.String(), 3000))
	}
}

// A rule path that is /dev/zero or a FIFO, or a file over 1 MiB: the
// binary refuses to start with an error naming the file, and never hangs
// (it used to run out of memory on /dev/zero and block on the FIFO).
func TestSpecialRuleFilesRefusedAtStart(t *testing.T) {
	base := t.TempDir()
	fifo := filepath.Join(base, "fifo.cel")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(base, "zero.cel")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(base, "big.cel")
	writeFile(t, big, xRule("Big")+"// "+strings.Repeat("x", 1<<20)+"\n")
	conf := filepath.Join(base, "pipeline.yaml")
	writeFile(t, conf, rulesPipeline)
	cases := map[string]string{
		zero: "is not a regular file (a device)",
		fifo: "is not a regular file (a FIFO)",
		big:  fmt.Sprintf("over the limit of %d bytes", 1<<20),
	}
	for path, want := range cases {
		cmd := exec.Command(binary, "-c", conf)
		cmd.Env = environ("RULES="+path, "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0")
		out, err := runWithTimeout(cmd, testkit.Patience)
		if code := exitCode(err); code <= 0 || !strings.Contains(string(out), path) || !strings.Contains(string(out), want) {
			t.Errorf("rules %s: exit %d, want a refusal naming it and saying %q:\n%s", path, code, want, tail(string(out), 2000))
		}
	}
}

// waitOutput waits until the binary has printed want.
func waitOutput(t *testing.T, run *pipelineRun, want string) {
	t.Helper()
	testkit.Until(t, fmt.Sprintf("output containing %q", want), func() (bool, string) {
		select {
		case <-run.done:
			t.Fatalf("oktadetect exited: %v\n%s", run.err, tail(run.output.String(), 3000))
		default:
		}
		out := run.output.String()
		return strings.Contains(out, want), tail(out, 1500)
	})
}
