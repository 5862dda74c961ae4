package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/ruletest"
	"github.com/oktadetect/oktadetect/internal/oktaschema"
	"github.com/oktadetect/oktadetect/plugin"
)

// rulesCommand is `oktadetect rules test|list|lint|bench [paths]`. Without paths both
// work on the rule pack embedded in the binary.
func rulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "rules",
		Usage: "Test and lint detection rules (.cel files)",
		Subcommands: []*cli.Command{
			{
				Name:      "test",
				Usage:     "Run the <rule>.test.yaml cases beside each rule; exit 1 on any failure (a rule error the case does not expect, a rule without tests, a test file that does not parse)",
				ArgsUsage: "[paths: files, directories, globs; default: the embedded pack]",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
					&cli.BoolFlag{Name: "junit", Usage: "print the results as JUnit XML (for CI test reports)"},
				},
				Action: func(c *cli.Context) error {
					format := "text"
					switch {
					case c.Bool("json") && c.Bool("junit"):
						return cli.Exit("rules test: --json and --junit exclude each other", 2)
					case c.Bool("json"):
						format = "json"
					case c.Bool("junit"):
						format = "junit"
					}
					return runRulesTest(c.Args().Slice(), format, c.App.Writer, c.App.ErrWriter)
				},
			},
			{
				Name:      "list",
				Usage:     "Print the rule catalogue: id, severity, kind, state, ATT&CK ids and title of each rule (--json: every field, description and runbook included)",
				ArgsUsage: "[paths: files, directories, globs; default: the embedded pack]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the catalogue as a JSON array"}},
				Action: func(c *cli.Context) error {
					return runRulesList(c.Args().Slice(), c.Bool("json"), c.App.Writer)
				},
			},
			{
				Name:      "lint",
				Usage:     "Compile rules, check their headers, and check every event.… path and eventType literal against Okta's LogEvent schema and event-type catalogue; print file:line:col problems, exit 1 if any",
				ArgsUsage: "[paths: files, directories, globs; default: the embedded pack]",
				Action: func(c *cli.Context) error {
					return runRulesLint(c.Args().Slice(), c.App.Writer, c.App.ErrWriter)
				},
			},
			rulesBenchCommand(),
		},
	}
}

func runRulesTest(paths []string, format string, w, errW io.Writer) error {
	var rep *ruletest.Report
	var err error
	if len(paths) == 0 {
		rep, err = ruletest.RunFS(plugin.Detection.Pack, plugin.Detection.PackRoot, packOptions())
	} else {
		rep, err = ruletest.Run(paths, packOptions())
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("rules test: %v", err), 1)
	}
	write := map[string]func(io.Writer, *ruletest.Report) error{
		"text": ruletest.WriteText, "json": ruletest.WriteJSON, "junit": ruletest.WriteJUnit,
	}[format]
	if err := write(w, rep); err != nil {
		return err
	}
	if !rep.OK() {
		return cli.Exit("", 1)
	}
	return nil
}

func runRulesLint(paths []string, w, errW io.Writer) error {
	var problems, warnings []error
	opts := packOptions()
	opts.Vocabulary = oktaschema.Vocabulary{}
	opts.Warn = func(err error) { warnings = append(warnings, err) }
	if len(paths) == 0 {
		problems = detect.LintFS(plugin.Detection.Pack, plugin.Detection.PackRoot, opts)
	} else {
		problems = detect.Lint(paths, opts)
	}
	for _, p := range append(problems, warnings...) {
		fmt.Fprintln(errW, p)
	}
	if len(problems) > 0 {
		return cli.Exit(fmt.Sprintf("%d problem(s)", len(problems)), 1)
	}
	if len(warnings) > 0 {
		fmt.Fprintf(w, "rules ok, %d warning(s)\n", len(warnings))
		return nil
	}
	fmt.Fprintln(w, "rules ok")
	return nil
}

func runRulesList(paths []string, asJSON bool, w io.Writer) error {
	rs, err := loadRules(paths)
	if err != nil {
		return cli.Exit(fmt.Sprintf("rules list: %v", err), 1)
	}
	cat := rs.Catalogue()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(cat)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tKIND\tSTATE\tMITRE\tTITLE")
	for _, r := range cat {
		state := "on"
		if !r.Enabled {
			state = "off"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, oneLine(r.Severity, 24), r.Kind, state, strings.Join(r.Mitre, ","), oneLine(r.Title, 80))
	}
	fmt.Fprintf(tw, "%d rules\n", len(cat))
	return tw.Flush()
}

// oneLine shortens text for a table cell: a template shows as "dynamic".
func oneLine(s string, max int) string {
	if strings.Contains(s, "{{") && max < 40 {
		return "dynamic"
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

// loadRules compiles the rules of paths, or the embedded pack without any.
func loadRules(paths []string) (*detect.RuleSet, error) {
	if len(paths) == 0 {
		return detect.LoadFS(plugin.Detection.Pack, plugin.Detection.PackRoot, packOptions())
	}
	return detect.LoadPaths(paths, packOptions())
}

// packOptions compile rules as cel_detect does: with the libraries the
// binary hands it.
func packOptions() detect.CompileOptions {
	return plugin.Detection.CompileOptions()
}
