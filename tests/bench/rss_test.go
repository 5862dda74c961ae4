package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
	addr, stop := startPageServer(t, n, false)
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
		lastLog := time.Now()
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
			if time.Since(lastLog) >= 30*time.Second {
				lastLog = time.Now()
				p.mu.Lock()
				seq := p.seq
				p.mu.Unlock()
				t.Logf("  progress: cursor at %d of %d, RSS %s, heap %s", seq, n, mib(s.rss), mib(s.heap))
			}
		}
	}()
	elapsed := runStream(t, yaml, p, 55*time.Minute, nil)
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
