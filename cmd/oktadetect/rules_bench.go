package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/oktasim/corpus"
)

// rulesBenchCommand is `oktadetect rules bench`: what each rule costs per
// event, on the simulator's traffic or on the user's own events, so that a
// rule author sees what a new rule adds before shipping it.
func rulesBenchCommand() *cli.Command {
	return &cli.Command{
		Name: "bench",
		Usage: "Run the rules over events in one thread and print what each rule costs (calls: the events the index " +
			"and field guards let through to it; matches, errors, " +
			"µs per call and per event, share of the rules' time), costliest first. The figures depend on the " +
			"machine and its load: compare rules with each other, and runs made one after the other",
		ArgsUsage: "[paths: files, directories, globs; default: the embedded pack]",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "events", Value: 20000, Usage: "how many events: simulated ones, or the first of --from"},
			&cli.StringFlag{Name: "from", Usage: "a file of your own events, one JSON object per line (as the okta_system_log input emits them)"},
			&cli.BoolFlag{Name: "json", Usage: "print the figures as JSON"},
		},
		Action: func(c *cli.Context) error {
			return runRulesBench(c.Args().Slice(), c.Int("events"), c.String("from"), c.Bool("json"), c.App.Writer)
		},
	}
}

// benchMaxEvents bounds --events: the events are held in memory.
const benchMaxEvents = 1_000_000

// benchMaxLine bounds one line of --from (Okta's events are a few KB).
const benchMaxLine = 4 << 20

// ruleCost is one rule's figures in a bench run.
type ruleCost struct {
	ID         string  `json:"id"`
	Calls      int     `json:"calls"`
	Matches    int     `json:"matches"`
	Errors     int     `json:"errors"`
	NsPerCall  float64 `json:"ns_per_call"`
	NsPerEvent float64 `json:"ns_per_event"`
	Share      float64 `json:"share"` // of all rules' time
	total      time.Duration
}

// benchReport is a bench run.
type benchReport struct {
	Events          int         `json:"events"`
	Source          string      `json:"source"`
	EnabledRules    int         `json:"enabled_rules"`
	NsPerEvent      float64     `json:"ns_per_event"`       // everything cel_detect's engine does
	RulesNsPerEvent float64     `json:"rules_ns_per_event"` // of which in rules
	Rules           []*ruleCost `json:"rules"`              // the rules evaluated at least once
}

func runRulesBench(paths []string, n int, from string, asJSON bool, w io.Writer) error {
	if n < 1 || n > benchMaxEvents {
		return cli.Exit(fmt.Sprintf("rules bench: --events %d: give 1 to %d", n, benchMaxEvents), 2)
	}
	rs, err := loadRules(paths)
	if err != nil {
		return cli.Exit(fmt.Sprintf("rules bench: %v", err), 1)
	}
	events, source := corpus.Events(n), "the simulator's traffic with its attack scenarios"
	if from != "" {
		if events, err = readEventLines(from, n); err != nil {
			return cli.Exit(fmt.Sprintf("rules bench: %v", err), 1)
		}
		source = from
	}
	rep := benchRules(rs, events)
	rep.Source = source
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeBench(w, rep)
}

// benchRules evaluates events in order in a fresh engine, timing each rule.
func benchRules(rs *detect.RuleSet, events [][]byte) *benchReport {
	costs := map[string]*ruleCost{}
	cost := func(id string) *ruleCost {
		c, ok := costs[id]
		if !ok {
			c = &ruleCost{ID: id}
			costs[id] = c
		}
		return c
	}
	e := detect.NewEngine(rs, detect.EngineOptions{Hooks: detect.Hooks{
		Evaluated: func(id string, d time.Duration) { c := cost(id); c.Calls++; c.total += d },
		Match:     func(id string) { cost(id).Matches++ },
		RuleError: func(id string, _ error) { cost(id).Errors++ },
	}})
	began := time.Now()
	for _, ev := range events {
		_, _ = e.Process(ev) // an event that is no JSON object costs its decoding, as in a pipeline
	}
	elapsed := time.Since(began)
	rep := &benchReport{Events: len(events), EnabledRules: len(rs.IDs())}
	var rules time.Duration
	for _, c := range costs {
		rules += c.total
	}
	perEvent := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(len(events)) }
	rep.NsPerEvent, rep.RulesNsPerEvent = perEvent(elapsed), perEvent(rules)
	for _, c := range costs {
		if c.Calls == 0 {
			continue
		}
		c.NsPerCall = float64(c.total.Nanoseconds()) / float64(c.Calls)
		c.NsPerEvent = perEvent(c.total)
		if rules > 0 {
			c.Share = float64(c.total) / float64(rules)
		}
		rep.Rules = append(rep.Rules, c)
	}
	slices.SortFunc(rep.Rules, func(a, b *ruleCost) int { return cmp.Compare(b.total, a.total) })
	return rep
}

func writeBench(w io.Writer, rep *benchReport) error {
	fmt.Fprintf(w, "%d events (%s), %d enabled rules, one thread: %.1f µs per event, of which rules %.1f µs; the rest is decoding, indexing and state upkeep\n",
		rep.Events, rep.Source, rep.EnabledRules, rep.NsPerEvent/1e3, rep.RulesNsPerEvent/1e3)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tCALLS\tMATCHES\tERRORS\tµs/CALL\tµs/EVENT\tSHARE\t")
	for _, c := range rep.Rules {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.3f\t%.1f%%\t\n", c.ID, c.Calls, c.Matches, c.Errors, c.NsPerCall/1e3, c.NsPerEvent/1e3, 100*c.Share)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if idle := rep.EnabledRules - len(rep.Rules); idle > 0 {
		fmt.Fprintf(w, "%d enabled rule(s) were evaluated on none of these events: the index skipped them (their event types did not occur)\n", idle)
	}
	return nil
}

// readEventLines reads up to n events from a file of JSON lines.
func readEventLines(path string, n int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), benchMaxLine)
	var events [][]byte
	for line := 1; len(events) < n && sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if raw[0] != '{' || !json.Valid(raw) {
			return nil, fmt.Errorf("--from %s: line %d is not a JSON object: give one event per line (JSON lines), as the okta_system_log input emits them", path, line)
		}
		events = append(events, bytes.Clone(raw))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--from %s: %w", path, err)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("--from %s: no events in the file", path)
	}
	return events, nil
}
