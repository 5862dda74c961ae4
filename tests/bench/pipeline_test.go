package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
	_ "github.com/oktadetect/oktadetect/plugin"
)

// Whole-process pipelines over one file of realistic events (one JSON
// event per line), each run once per benchmark iteration:
//
//	file → drop                                   the floor of any pipeline
//	file → noop → drop                            Benthos' processor stage alone
//	file → cel_detect (one rule) → drop           + decoding each event, the adapter
//	file → mapping: root = this → drop            the baseline
//	file → cel_detect (seed | pack) → drop
//	file → mutation (seed rules in Bloblang) → drop   the Benthos-native peer
//
// Each reports ns/event and events/s. BENCH_EVENTS sets the corpus size
// (default 100,000).

func benchEventCount() int {
	if s := os.Getenv("BENCH_EVENTS"); s != "" {
		var n int
		if _, err := fmt.Sscan(s, &n); err == nil && n > 0 {
			return n
		}
	}
	return 100_000
}

var corpusFile string

func writeCorpus(b *testing.B) (string, int) {
	n := benchEventCount()
	if path := os.Getenv("BENCH_CORPUS"); path != "" {
		return path, countLines(b, path)
	}
	if corpusFile == "" {
		dir, err := os.MkdirTemp("", "oktadetect-bench-")
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, "events.jsonl")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for _, e := range corpus.Events(n) {
			w.Write(e)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		corpusFile = path
	}
	return corpusFile, n
}

// seedBloblang is the five seed rules as a Bloblang mutation: the three
// stateless rules in full (condition, title, severity) and the conditions
// of the two stateful ones (brute force's count over a window and the
// geographic rule's remembered login need caches that a mapping does not
// have), so the peer does less work than cel_detect.
const seedBloblang = `
let et = this.eventType.or("")
let res = this.outcome.result.or("")
let actor = "%s <%s>".format(this.actor.displayName.or("unknown"), this.actor.alternateId.or("unknown"))
let pg = this.debugContext.debugData.privilegeGranted.or("")
let d0 = if $et == "user.account.privilege.grant" && $res == "SUCCESS" && $pg.re_match("[aA]dministrator") {
  [{"id": "Okta.AdminRoleAssigned",
    "title": "%s granted [%s] privileges to %s <%s>".format($actor, $pg, this.target.index(0).displayName.or("MISSING DISPLAY NAME"), this.target.index(0).alternateId.or("MISSING ALTERNATE ID")),
    "severity": if $pg.contains("Super administrator") { "HIGH" } else { "INFO" }}]
} else { [] }
let d1 = if $et == "system.api_token.create" && $res == "SUCCESS" {
  [{"id": "Okta.APIKeyCreated", "title": "%s created a new API key - <%s>".format($actor, this.target.index(0).displayName.or("unknown")), "severity": "MEDIUM"}]
} else { [] }
let d2 = if $et == "system.api_token.revoke" && $res == "SUCCESS" {
  [{"id": "Okta.APIKeyRevoked", "title": "%s revoked an API key - <%s>".format($actor, this.target.index(0).displayName.or("unknown")), "severity": "INFO"}]
} else { [] }
let d3 = if $et == "user.session.start" && $res == "FAILURE" {
  [{"id": "Okta.BruteForceLogins", "title": "Suspected brute force Okta logins to account %s, due to [%s]".format(this.actor.alternateId.or("unknown"), this.outcome.reason.or("unknown")), "severity": "MEDIUM"}]
} else { [] }
let d4 = if $et == "user.session.start" && $res == "SUCCESS" && this.client.geographicalContext.geolocation.lat.or(null) != null && this.client.geographicalContext.geolocation.lon.or(null) != null {
  [{"id": "Okta.GeographicallyImprobableAccess", "severity": "HIGH"}]
} else { [] }
let dets = $d0.concat($d1, $d2, $d3, $d4)
root.detections = if $dets.length() > 0 { $dets } else { deleted() }
meta detection_ids = $dets.map_each(d -> d.id).join(",")
`

func pipelineYAML(path, processors string) string {
	return fmt.Sprintf(`
input:
  file:
    paths: [ %q ]
    scanner:
      lines: {}
pipeline:
  threads: -1
  processors:
%s
output:
  drop: {}
logger:
  level: none
`, path, processors)
}

// runOnce builds the stream and runs it to the end of the file.
func runOnce(b *testing.B, yaml string) time.Duration {
	wall, _ := runOnceCPU(b, yaml)
	return wall
}

// runOnceCPU is runOnce that also returns the CPU time (user and system) the
// process spent meanwhile: on a shared machine, other load lengthens wall
// time far more than it changes the CPU a pipeline needs.
func runOnceCPU(b *testing.B, yaml string) (wall, cpu time.Duration) {
	sb := service.NewStreamBuilder()
	if err := sb.SetYAML(yaml); err != nil {
		b.Fatal(err)
	}
	st, err := sb.Build()
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC() // the previous run's garbage is not this run's cost
	cpu0, start := processCPU(b), time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := st.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), processCPU(b) - cpu0
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runPipeline(b *testing.B, processors string) {
	path, n := writeCorpus(b)
	yaml := pipelineYAML(path, processors)
	var total time.Duration
	for b.Loop() {
		total += runOnce(b, yaml)
	}
	per := float64(total.Nanoseconds()) / float64(b.N) / float64(n)
	b.ReportMetric(per, "ns/event")
	b.ReportMetric(1e9/per, "events/s")
}

func indent(s string) string {
	out := ""
	for _, line := range splitLines(s) {
		out += "        " + line + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return append(lines, s[start:])
}

var packProcessors = packProcessorsFor("../../rules/okta")

// packProcessorsFor is cel_detect with the rules of dir.
func packProcessorsFor(dir string) string {
	return fmt.Sprintf("    - cel_detect:\n        rules: [ %q ]\n        watch: false", dir)
}

const (
	dropProcessors    = "    []"
	noopProcessors    = "    - noop: {}"
	mappingProcessors = "    - mapping: 'root = this'"
)

func BenchmarkPipelineFileDrop(b *testing.B) {
	runPipeline(b, dropProcessors)
}

func BenchmarkPipelineMappingRootThis(b *testing.B) {
	runPipeline(b, mappingProcessors)
}

func BenchmarkPipelineCELDetectPack(b *testing.B) {
	runPipeline(b, packProcessors)
}

func BenchmarkPipelineCELDetectSeed(b *testing.B) {
	runPipeline(b, seedProcessors(b))
}

// seedProcessors is cel_detect over a directory holding the five seed rules.
func seedProcessors(b *testing.B) string {
	dir := b.TempDir()
	for _, f := range []string{"admin_role_assigned", "api_key_created", "api_key_revoked", "brute_force_logins", "geo_improbable_access"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "rules", "okta", f+".cel"))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f+".cel"), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return fmt.Sprintf("    - cel_detect:\n        rules: [ %q ]\n        watch: false", dir)
}

// oneRuleProcessors is cel_detect over one rule that matches no event: the
// cost of decoding each event and of the processor, without rules.
func oneRuleProcessors(b *testing.B) string {
	dir := b.TempDir()
	const rule = "// id: Bench.Never\n// title: never\n// severity: LOW\nevent.eventType == 'bench.never'\n"
	if err := os.WriteFile(filepath.Join(dir, "never.cel"), []byte(rule), 0o644); err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("    - cel_detect:\n        rules: [ %q ]\n        watch: false", dir)
}

func BenchmarkPipelineBloblangSeed(b *testing.B) {
	runPipeline(b, bloblangProcessors)
}

var bloblangProcessors = "    - mutation: |\n" + indent(seedBloblang)

// BenchmarkPipelineInterleaved runs every shape once per iteration (round),
// one after another, so that all of them see the same background load on
// a shared machine; each shape's figure is its best round. It reports
// ns/event per shape and the ratios the issue sets targets for:
// pack/mapping, pack/drop, seed/bloblang. Use -benchtime Nx for N rounds.
func BenchmarkPipelineInterleaved(b *testing.B) {
	path, n := writeCorpus(b)
	shapes := []struct{ name, processors string }{
		{"drop", dropProcessors},
		{"noop", noopProcessors},
		{"one-rule", oneRuleProcessors(b)},
		{"mapping", mappingProcessors},
		{"pack", packProcessors},
		{"seed", seedProcessors(b)},
		{"bloblang", bloblangProcessors},
	}
	// BENCH_OTHER_PACK names another rule directory measured beside the
	// pack, on the same engine and events (an older pack, a trimmed one).
	other := os.Getenv("BENCH_OTHER_PACK")
	if other != "" {
		shapes = append(shapes, struct{ name, processors string }{"other-pack", packProcessorsFor(other)})
	}
	best, bestCPU := map[string]time.Duration{}, map[string]time.Duration{}
	keepBest := func(m map[string]time.Duration, name string, d time.Duration) {
		if cur, ok := m[name]; !ok || d < cur {
			m[name] = d
		}
	}
	// Rounds also give a ratio each (pack over drop in the same round): the
	// median of those is steadier than the ratio of two best rounds, one of
	// which may have been lucky.
	var roundRatios []float64
	for b.Loop() {
		cpus := map[string]time.Duration{}
		for _, sh := range shapes {
			wall, cpu := runOnceCPU(b, pipelineYAML(path, sh.processors))
			keepBest(best, sh.name, wall)
			keepBest(bestCPU, sh.name, cpu)
			cpus[sh.name] = cpu
		}
		roundRatios = append(roundRatios, float64(cpus["pack"])/float64(cpus["drop"]))
	}
	per := func(name string) float64 { return float64(best[name].Nanoseconds()) / float64(n) }
	cpuPer := func(name string) float64 { return float64(bestCPU[name].Nanoseconds()) / float64(n) }
	for _, sh := range shapes {
		b.ReportMetric(per(sh.name), "ns/event-"+sh.name)
		b.ReportMetric(cpuPer(sh.name), "cpu-ns/event-"+sh.name)
	}
	b.ReportMetric(cpuPer("pack")/cpuPer("drop"), "cpu-pack/drop")
	slices.Sort(roundRatios)
	b.ReportMetric(roundRatios[len(roundRatios)/2], "cpu-pack/drop-median-round")
	b.ReportMetric(per("pack")/per("mapping"), "pack/mapping")
	b.ReportMetric(per("noop")/per("drop"), "noop/drop")
	b.ReportMetric(per("one-rule")/per("drop"), "one-rule/drop")
	b.ReportMetric(per("pack")/per("drop"), "pack/drop")
	b.ReportMetric(per("seed")/per("bloblang"), "seed/bloblang")
	if other != "" {
		b.ReportMetric(per("other-pack")/per("drop"), "other-pack/drop")
	}
}

// countLines is the number of events in a corpus file given by
// BENCH_CORPUS: the same events measured by two versions of the code.
func countLines(b *testing.B, path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte{'\n'})
}
