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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// The page server: an /api/v1/logs serving the corpus from a child process
// (this test binary re-executed), so that neither the server's CPU for
// building events nor its memory (a simulator holds every event as decoded
// Go maps: ~1.5 GB for the GC to mark at 100,000 events) is in the process
// being measured. Two modes:
//
//   - on demand (TestPollerRSS): each page is generated when the cursor asks
//     for it, two pages held at most; the server can only go forward, so a
//     backlog larger than memory should hold can be drained once;
//   - pregenerated (the throughput benchmarks): every page of n events is
//     built once at start as bytes (a few large objects, nothing for the
//     GC to mark), and any position can be asked for, any number of times,
//     so several drains of the same org cost the server a copy per page.
//
// It speaks just enough of the API for a polling client: after=<ms>_<position>,
// limit, Link rel="self"/"next" (the request itself once drained) and
// X-Rate-Limit-* headers with a limit never reached. Both processes share
// the machine's cores; serving a pregenerated page is a memcpy onto
// loopback (BenchmarkPollerBareHTTP measures it).

const (
	serveEnv       = "OKTADETECT_RSS_SERVE"
	servePregenEnv = "OKTADETECT_SERVE_PREGEN"
)

// startPageServer re-executes this test binary as a page server for n events
// and returns its address and a stop function. pregen serves every page from
// memory built at start (see above).
func startPageServer(tb testing.TB, n int, pregen bool) (string, func()) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPageServer$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", serveEnv, n))
	if pregen {
		cmd.Env = append(cmd.Env, servePregenEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		tb.Fatalf("page server: %v", err)
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

// TestPageServer is the child process.
func TestPageServer(t *testing.T) {
	nStr := os.Getenv(serveEnv)
	if nStr == "" {
		t.Skip("the page server of the benchmarks and TestPollerRSS")
	}
	n, _ := strconv.Atoi(nStr)
	ps := &pageSource{n: n, stream: corpus.NewStream(time.Now().Add(-corpus.Span(n) - time.Hour)), pages: map[int][]byte{}}
	if os.Getenv(servePregenEnv) != "" {
		ps.pregenerate(pageLimit)
	}
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
	_ = http.Serve(ln, ps)
}

// pageLimit is the page size the benchmarks ask for (okta_system_log's limit).
const pageLimit = 1000

type pageSource struct {
	mu       sync.Mutex
	n        int
	stream   *corpus.Stream
	produced int            // events generated so far
	pages    map[int][]byte // first position → body: the last two pages, or all when pregenerated
	limit    int
	keepAll  bool // keep every page generated
	pregen   bool // every page is generated: serve nothing else
}

// pregenerate builds every page of limit events.
func (ps *pageSource) pregenerate(limit int) {
	ps.keepAll = true
	for from := 0; from < ps.n; from += limit {
		_, _, _ = ps.page(from, limit)
	}
	ps.pregen = true
}

// page returns the body of events [from, from+limit).
func (ps *pageSource) page(from, limit int) ([]byte, int, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if body, ok := ps.pages[from]; ok && ps.limit == limit {
		return body, min(limit, ps.n-from), nil
	}
	if ps.pregen {
		return nil, 0, fmt.Errorf("position %d with limit %d: pregenerated pages hold %d events from multiples of it", from, limit, ps.limit)
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
	if !ps.keepAll {
		for k := range ps.pages {
			if k < from-limit {
				delete(ps.pages, k)
			}
		}
	}
	ps.pages[from] = buf.Bytes()
	return buf.Bytes(), count, nil
}

func (ps *pageSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 {
		limit = pageLimit
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
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
