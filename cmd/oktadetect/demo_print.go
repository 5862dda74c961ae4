package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/oktasim"
	"github.com/oktadetect/oktadetect/plugin"
)

// alertPrinter prints one line per alert id. Later detections grouped into
// the same alert (a brute force's sixth failure, say) are counted on that
// line: in place on a terminal, and in the summary otherwise, where lines
// cannot be rewritten.
type alertPrinter struct {
	out   io.Writer
	tty   bool
	width int // terminal columns (0: unknown); alert lines are cut to fit, as a wrapped line would break the rewinding
	lines int // lines printed so far

	seen     map[string]*alertLine
	expected map[string]string // alert id → rule id of the scenario's attacks
	shown    int               // expected alerts printed
	next     []string          // what to try once the attacks are shown
	done     bool
}

type alertLine struct {
	line  int // index among printed lines
	count int
	rec   alertRecord
}

func newAlertPrinter(out io.Writer, tty bool) *alertPrinter {
	p := &alertPrinter{out: out, tty: tty, seen: map[string]*alertLine{}}
	if f, ok := out.(*os.File); ok && tty {
		p.width = terminalWidth(f)
	}
	return p
}

func (p *alertPrinter) println(s string) {
	fmt.Fprintln(p.out, s)
	p.lines++
}

// maxRewind bounds how far up a line is rewritten: further up it may have
// scrolled off the screen.
const maxRewind = 40

func (p *alertPrinter) alert(a alertRecord) {
	if l, ok := p.seen[a.AlertID]; ok {
		l.count++
		if up := p.lines - l.line; p.tty && up <= maxRewind {
			// Up to the alert's line, rewrite it, back down to the bottom.
			fmt.Fprintf(p.out, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, p.format(l), up)
		}
		return
	}
	l := &alertLine{line: p.lines, count: 1, rec: a}
	p.seen[a.AlertID] = l
	p.println(p.format(l))
	if _, ok := p.expected[a.AlertID]; ok {
		p.shown++
	}
	p.checkDone()
}

// checkDone prints, once, that the scenario's attacks have all been shown
// and what to try next.
func (p *alertPrinter) checkDone() {
	if p.done || p.shown < len(p.expected) {
		return
	}
	p.done = true
	if len(p.expected) == 0 {
		p.println("This scenario has no attacks: alerts appear only if ordinary traffic trips a rule. Next, try:")
	} else {
		p.println(fmt.Sprintf("All %d alerts of the scenario's attacks are shown. Next, try (the demo keeps running):", len(p.expected)))
	}
	for _, n := range p.next {
		p.println("  " + n)
	}
}

var severityColour = map[string]string{
	"CRITICAL": "\x1b[1;31m", "HIGH": "\x1b[31m", "MEDIUM": "\x1b[33m", "LOW": "\x1b[36m", "INFO": "\x1b[2m",
}

func (p *alertPrinter) format(l *alertLine) string {
	head := fmt.Sprintf("%-24s  %-8s  %-36s  ", l.rec.Event.Published, l.rec.Severity, l.rec.ID)
	tail := ""
	if l.count > 1 {
		tail = fmt.Sprintf("  ×%d", l.count)
	}
	title := []rune(l.rec.Title)
	if room := p.width - 1 - len(head) - len([]rune(tail)); p.width > 0 && len(title) > room {
		title = append(title[:max(room-1, 0)], '…')
	}
	line := head + string(title) + tail
	if c, ok := severityColour[l.rec.Severity]; ok && p.tty {
		sev := fmt.Sprintf("%-8s", l.rec.Severity)
		line = strings.Replace(line, sev, c+sev+"\x1b[0m", 1)
	}
	return line
}

// nextSteps are the commands the demo suggests once the attacks are shown,
// each with what it shows, aligned.
func nextSteps(brokers, metricsURL string) []string {
	first := strings.Split(brokers, ",")[0]
	steps := [][2]string{
		{fmt.Sprintf("kcat -b %s -C -t %s -e -X isolation.level=read_committed", first, demoAlertsTopic), "the alerts, read by another Kafka client"},
		{fmt.Sprintf("kcat -b %s -C -t %s -e -c 3", first, demoEventsTopic), "the first events"},
		{"oktadetect rules test rules/", "the rule pack's own tests (from a checkout)"},
		{fmt.Sprintf("curl -s %s | grep -E '^(okta|cel_detect)_'", metricsURL), "the metrics a dashboard reads"},
	}
	width := 0
	for _, s := range steps {
		width = max(width, len(s[0]))
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = fmt.Sprintf("%-*s  # %s", width, s[0], s[1])
	}
	return out
}

// attackAlerts evaluates the embedded rule pack over the scenario offline and
// returns the alerts its attacks raise: detections on events that are not
// the scenario's ordinary traffic (the "quiet" scenario with the same seed
// and start, which every attack scenario is built on). org is the org's host,
// as okta_system_log puts it in okta_org: state and alert ids are scoped by
// it, so the ids computed here are those the pipeline gives.
func attackAlerts(scenario string, seed int64, start time.Time, timeline []oktasim.Timed, org string) (map[string]string, error) {
	quiet, err := oktasim.Scenario("quiet", oktasim.NewGenerator(seed), start)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	ordinary := map[string]bool{}
	for _, te := range quiet {
		ordinary[te.Event.UUID] = true
	}
	rs, err := detect.LoadFS(plugin.Detection.Pack, plugin.Detection.PackRoot, plugin.Detection.CompileOptions())
	if err != nil {
		return nil, fmt.Errorf("demo: the embedded rule pack: %w", err)
	}
	engine := detect.NewEngine(rs, detect.EngineOptions{})
	ordered := append([]oktasim.Timed(nil), timeline...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Event.Published.Before(ordered[j].Event.Published) })
	expected := map[string]string{}
	for _, te := range ordered {
		res, err := engine.ProcessWithMeta(te.Event.JSON(), []detect.MetaField{{Name: "org", Value: org}})
		if err != nil || ordinary[te.Event.UUID] {
			continue
		}
		for _, d := range res.Detections {
			expected[d.AlertID] = d.ID
		}
	}
	return expected, nil
}

// isTerminal reports whether w is a terminal that takes colour: a character
// device, and NO_COLOR unset (https://no-color.org).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// orgHost is the host of an org URL, as okta_system_log's okta_org metadata
// names the org.
func orgHost(orgURL string) string {
	u, err := url.Parse(orgURL)
	if err != nil {
		return ""
	}
	return u.Host
}
