package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

const token = "00e2eTokenMustNeverBePrinted-31415926"

// stdoutRun is the real binary running config/okta-to-stdout.yaml, with the
// uuid of every complete line it printed.
type stdoutRun struct {
	cmd    *exec.Cmd
	stderr *testkit.Buffer
	lines  chan string
	// done is closed once the process has exited and all of its output is
	// read: stdout scanned, and stderr copied into the buffer (exec copies
	// it until Wait returns, so stdout's end alone does not mean stderr is
	// complete).
	done chan struct{}
}

func startStdout(t *testing.T, orgURL, stateDir string, extraEnv ...string) *stdoutRun {
	t.Helper()
	cmd := exec.Command(binary, "-c", configPath("okta-to-stdout.yaml"))
	cmd.Env = environ(append([]string{
		"OKTA_ORG_URL=" + orgURL,
		"OKTA_API_TOKEN=" + token,
		"OKTADETECT_STATE_DIR=" + stateDir,
		"OKTADETECT_HTTP_ADDRESS=127.0.0.1:0",
		"OKTA_POLL_INTERVAL=200ms",
		"OKTA_INITIAL_LOOKBACK=24h",
	}, extraEnv...)...)
	return runStdout(t, cmd)
}

// runStdout starts cmd, scanning its stdout into lines and keeping its
// stderr; at cleanup it is killed, and its output must not hold the token.
func runStdout(t *testing.T, cmd *exec.Cmd) *stdoutRun {
	t.Helper()
	r := &stdoutRun{cmd: cmd, stderr: &testkit.Buffer{}, lines: make(chan string, 100_000), done: make(chan struct{})}
	cmd.Stderr = r.stderr
	recordOutput(r.stderr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.scan(out)
		_ = cmd.Wait() // after the last read of stdout, as exec requires
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
		if strings.Contains(r.stderr.String(), token) {
			t.Errorf("the API token appears in the binary's output")
		}
		if t.Failed() {
			t.Logf("oktadetect output:\n%s", r.stderr.String())
		}
	})
	return r
}

func (r *stdoutRun) scan(out io.Reader) {
	defer close(r.lines)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		r.lines <- sc.Text()
	}
}

// collect reads uuids until want distinct ones have arrived (counting repeats
// in seen), or the timeout.
func collect(t *testing.T, r *stdoutRun, seen map[string]int, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for len(seen) < want {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatalf("oktadetect stopped after %d events:\n%s", len(seen), r.stderr.String())
			}
			if strings.Contains(line, token) {
				t.Fatal("the API token appears on stdout")
			}
			var ev struct {
				UUID string `json:"uuid"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				continue // the last line of a killed process may be cut short
			}
			seen[ev.UUID]++
		case <-deadline:
			t.Fatalf("%d of %d events within %v:\n%s", len(seen), want, timeout, r.stderr.String())
		}
	}
}

// SIGKILL mid-backlog, then start again on the same checkpoint: nothing is
// missing, and exactly the events delivered after the stored cursor's page
// are delivered twice. How many that is depends on the instant of the kill
// (the pages in flight, one more when the kill tears the cursor's write), so
// the test reads the stored cursor rather than assuming a number.
func TestKillMidBacklogResumesFromCheckpoint(t *testing.T) {
	const total, page = 20_000, 200
	sim := oktasim.New(oktasim.Options{Token: token, RateLimit: 10, RateWindow: time.Second})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	evs := oktasim.NewGenerator(7).Backlog(total, time.Now().Add(-3*time.Hour), 100*time.Millisecond)
	sim.Persist(evs...)
	state := t.TempDir()
	env := []string{"OKTA_PAGE_LIMIT=200", "OKTA_RATE_LIMIT_SHARE=1"}

	seen := map[string]int{}
	first := startStdout(t, srv.URL, state, env...)
	collect(t, first, seen, total/3, 60*time.Second)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	for line := range first.lines { // what it printed before dying counts too
		var ev struct{ UUID string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.UUID != "" {
			seen[ev.UUID]++
		}
	}
	beforeKill := len(seen)
	resumeAfter := storedCursorPage(t, state, evs)
	wantDups := 0
	for _, e := range evs[resumeAfter+1:] {
		wantDups += seen[e.UUID]
	}

	second := startStdout(t, srv.URL, state, env...)
	collect(t, second, seen, total, 90*time.Second)
	time.Sleep(500 * time.Millisecond) // a couple of idle ticks: nothing more may come
	for drained := false; !drained; {
		select {
		case line := <-second.lines:
			var ev struct{ UUID string }
			if json.Unmarshal([]byte(line), &ev) == nil {
				seen[ev.UUID]++
			}
		default:
			drained = true
		}
	}

	dups := 0
	for _, e := range evs {
		n := seen[e.UUID]
		if n == 0 {
			t.Fatalf("event %s is missing after the restart", e.UUID)
		}
		dups += n - 1
	}
	t.Logf("killed after %d events, cursor stored past event %d; after the restart %d duplicates (page size %d)", beforeKill, resumeAfter+1, dups, page)
	if dups != wantDups {
		t.Fatalf("%d duplicates after a SIGKILL, want %d: the events delivered after the stored cursor's page", dups, wantDups)
	}
}

// storedCursorPage reads the cursor slots the file cache holds in dir, as the
// input will at its next start (the readable slot with the highest seq), and
// returns the index in evs of the last event of the cursor's page.
func storedCursorPage(t *testing.T, dir string, evs []oktasim.LogEvent) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best struct {
		Seq   uint64   `json:"seq"`
		UUIDs []string `json:"uuids"`
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "okta-cursor-") {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		var cp struct {
			Seq   uint64   `json:"seq"`
			UUIDs []string `json:"uuids"`
		}
		if json.Unmarshal(raw, &cp) == nil && len(cp.UUIDs) > 0 && cp.Seq >= best.Seq {
			best = cp
		}
	}
	if len(best.UUIDs) == 0 {
		t.Fatalf("no readable cursor in %s after the kill", dir)
	}
	last := best.UUIDs[len(best.UUIDs)-1]
	for i, e := range evs {
		if e.UUID == last {
			return i
		}
	}
	t.Fatalf("the stored cursor's last event %s is not in the backlog", last)
	return 0
}

func TestBinaryConfigErrorsAreClear(t *testing.T) {
	cases := map[string]string{
		"http://acme.okta.com":              "only https",
		"https://acme.okta.com/api/v1/logs": "without a path",
		"not a url at all":                  "must be an absolute URL",
	}
	for orgURL, want := range cases {
		cmd := exec.Command(binary, "-c", configPath("okta-to-stdout.yaml"))
		cmd.Env = environ("OKTA_ORG_URL="+orgURL, "OKTA_API_TOKEN="+token, "OKTADETECT_STATE_DIR="+t.TempDir(), "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("org_url %q: oktadetect exited 0", orgURL)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("org_url %q: output does not say %q:\n%s", orgURL, want, out)
		}
		if strings.Contains(string(out), token) {
			t.Errorf("org_url %q: the token appears in the output", orgURL)
		}
	}
}

func TestBinaryBadTokenIsClear(t *testing.T) {
	sim := oktasim.New(oktasim.Options{Token: "a-different-token"})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	run := startStdout(t, srv.URL, t.TempDir())
	deadline := time.Now().Add(testkit.Patience)
	for !strings.Contains(run.stderr.String(), "rejected the credentials") {
		if time.Now().After(deadline) {
			t.Fatalf("no clear error for a bad token:\n%s", run.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(run.stderr.String(), "rejected the credentials"); n != 1 {
		t.Fatalf("the error was logged %d times in the first seconds; one request, one message:\n%s", n, run.stderr.String())
	}
}
