package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/tests/bench/corpus"
)

// TestPollerRSS measures the memory of okta_system_log draining a large
// backlog: peak RSS (VmHWM) and peak Go heap of this process, sampled as the
// backlog is drained, for 100,000 and 1,000,000 events, so it shows whether
// memory stays flat as the backlog grows.
//
// The org is served from a child process (this test binary re-executed) that
// generates the corpus page by page as the cursor asks for it, so neither the
// server nor a simulator holding a million events is in the measured process.
//
// It runs only when asked:
//
//	OKTADETECT_RSS=1 go test -run TestPollerRSS -v -timeout 30m .
//	OKTADETECT_RSS=1 OKTADETECT_RSS_EVENTS=100000,1000000 OKTADETECT_RSS_DETECT=1 …  (cel_detect pack before drop)
func TestPollerRSS(t *testing.T) {
	if os.Getenv("OKTADETECT_RSS") == "" {
		t.Skip("set OKTADETECT_RSS=1 to measure peak RSS over a 1,000,000-event backlog (minutes)")
	}
	sizes := []int{100_000, 1_000_000}
	if s := os.Getenv("OKTADETECT_RSS_EVENTS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	detect := os.Getenv("OKTADETECT_RSS_DETECT") != ""
	base := rssSample()
	t.Logf("before any stream: RSS %s, Go heap %s", mib(base.rss), mib(base.heap))
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) { measureRSS(t, n, detect) })
	}
}

func measureRSS(t *testing.T, n int, detect bool) {
	addr, stop := startPageServer(t, n)
	defer stop()

	runtime.GC()
	debug.FreeOSMemory()
	resetHWM(t)
	start := rssSample()

	run, p := newRun(n)
	yaml := oktaInputYAML("http://"+addr, 1, run)
	if detect {
		yaml += detectProcessors
	}
	yaml += "output:\n  drop: {}\n"

	var (
		mu       sync.Mutex
		peak     memSample
		quarters [4]memSample // peaks within each quarter of the backlog
	)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			s := rssSample()
			p.mu.Lock()
			q := min(3, p.seq*4/n)
			p.mu.Unlock()
			mu.Lock()
			peak = peak.max(s)
			quarters[q] = quarters[q].max(s)
			mu.Unlock()
		}
	}()
	elapsed := runStream(t, yaml, p, 30*time.Minute, nil)
	close(stopSampling)
	<-sampled
	hwm := readStatusKB(t, "VmHWM")

	t.Logf("%d events in %v (%.0f events/s), %d cursor commits", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), p.commits)
	t.Logf("at start: RSS %s, Go heap %s", mib(start.rss), mib(start.heap))
	t.Logf("peak: VmHWM %s, sampled RSS %s, Go heap objects %s, Go total mapped %s",
		mib(hwm), mib(peak.rss), mib(peak.heap), mib(peak.total))
	for i, q := range quarters {
		t.Logf("  quarter %d of the backlog: peak RSS %s, heap %s", i+1, mib(q.rss), mib(q.heap))
	}
}

type memSample struct{ rss, heap, total uint64 }

func (a memSample) max(b memSample) memSample {
	return memSample{max(a.rss, b.rss), max(a.heap, b.heap), max(a.total, b.total)}
}

var memMetrics = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/total:bytes"},
}

func rssSample() memSample {
	s := make([]metrics.Sample, len(memMetrics))
	copy(s, memMetrics)
	metrics.Read(s)
	return memSample{rss: readStatusKB(nil, "VmRSS"), heap: s[0].Value.Uint64(), total: s[1].Value.Uint64()}
}

// readStatusKB reads a /proc/self/status field, in bytes.
func readStatusKB(t *testing.T, field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		if t != nil {
			t.Fatal(err)
		}
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetHWM resets VmHWM to the current RSS (Linux clear_refs "5").
func resetHWM(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("cannot reset VmHWM (%v): the peak includes earlier runs", err)
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// ---------------------------------------------------------------------------
// The page server, in a child process.

const serveEnv = "OKTADETECT_RSS_SERVE"

// startPageServer re-executes this test binary as a page server for n events
// and returns its address.
func startPageServer(t *testing.T, n int) (string, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestPageServer$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", serveEnv, n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("page server: %v", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	return addr, func() {
		stdin.Close() // the server exits when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}

// TestPageServer is the child process: an /api/v1/logs that serves n corpus
// events in persistence order, generating each page when the cursor asks for
// it, holding two pages at most. It speaks
// just enough of the API for a polling client: after=<ms>_<position>,
// limit, Link rel="next" (the request itself once drained) and rate-limit
// headers with a limit never reached.
func TestPageServer(t *testing.T) {
	nStr := os.Getenv(serveEnv)
	if nStr == "" {
		t.Skip("the page server of TestPollerRSS")
	}
	n, _ := strconv.Atoi(nStr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	os.Stdout.Sync()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	ps := &pageSource{n: n, stream: corpus.NewStream(time.Now().Add(-corpus.Span(n) - time.Hour)), pages: map[int][]byte{}}
	_ = http.Serve(ln, ps)
}

type pageSource struct {
	mu       sync.Mutex
	n        int
	stream   *corpus.Stream
	produced int            // events generated so far
	pages    map[int][]byte // first position → body, the last two pages
	limit    int
}

// page returns the body of events [from, from+limit).
func (ps *pageSource) page(from, limit int) ([]byte, int, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if body, ok := ps.pages[from]; ok && ps.limit == limit {
		return body, min(limit, ps.n-from), nil
	}
	if from != ps.produced {
		return nil, 0, fmt.Errorf("position %d: the server can only go forward (at %d)", from, ps.produced)
	}
	ps.limit = limit
	count := min(limit, ps.n-from)
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range count {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(ps.stream.Next())
	}
	buf.WriteByte(']')
	ps.produced += count
	for k := range ps.pages {
		if k < from-limit {
			delete(ps.pages, k)
		}
	}
	ps.pages[from] = buf.Bytes()
	return buf.Bytes(), count, nil
}

func (ps *pageSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 {
		limit = 1000
	}
	from := 0
	if a := q.Get("after"); a != "" {
		_, pos, _ := strings.Cut(a, "_")
		from, _ = strconv.Atoi(pos)
	}
	h := w.Header()
	h.Set("X-Rate-Limit-Limit", "1000000")
	h.Set("X-Rate-Limit-Remaining", "999999")
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	h.Set("Content-Type", "application/json")
	self := "http://" + r.Host + r.URL.RequestURI()
	h.Add("Link", "<"+self+`>; rel="self"`)
	if from >= ps.n {
		h.Add("Link", "<"+self+`>; rel="next"`)
		_, _ = w.Write([]byte("[]"))
		return
	}
	body, count, err := ps.page(from, limit)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q.Set("after", "0_"+strconv.Itoa(from+count))
	h.Add("Link", "<http://"+r.Host+"/api/v1/logs?"+q.Encode()+`>; rel="next"`)
	_, _ = w.Write(body)
}
