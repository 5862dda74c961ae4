package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/detect/ruletest"
	"github.com/oktadetect/oktadetect/internal/oktaschema"
	"github.com/oktadetect/oktadetect/plugin"
)

// rulesCommand is `oktadetect rules test|lint [paths]`. Without paths both
// work on the rule pack embedded in the binary.
func rulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "rules",
		Usage: "Test and lint detection rules (.cel files)",
		Subcommands: []*cli.Command{
			{
				Name:      "test",
				Usage:     "Run the <rule>.test.yaml cases beside each rule; exit 1 on any failure",
				ArgsUsage: "[paths: files, directories, globs; default: the embedded pack]",
				Action: func(c *cli.Context) error {
					return runRulesTest(c.Args().Slice(), c.App.Writer)
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
		},
	}
}

func runRulesTest(paths []string, w io.Writer) error {
	var failed int
	var err error
	if len(paths) == 0 {
		_, failed, err = ruletest.RunTestsFS(plugin.Detection.Pack, plugin.Detection.PackRoot, packOptions(), w)
	} else {
		_, failed, err = ruletest.RunTests(paths, packOptions(), w)
	}
	if err != nil || failed > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func runRulesLint(paths []string, w, errW io.Writer) error {
	var problems []error
	opts := packOptions()
	opts.Vocabulary = oktaschema.Vocabulary{}
	if len(paths) == 0 {
		problems = detect.LintFS(plugin.Detection.Pack, plugin.Detection.PackRoot, opts)
	} else {
		problems = detect.Lint(paths, opts)
	}
	for _, p := range problems {
		fmt.Fprintln(errW, p)
	}
	if len(problems) > 0 {
		return cli.Exit(fmt.Sprintf("%d problem(s)", len(problems)), 1)
	}
	fmt.Fprintln(w, "rules ok")
	return nil
}

// packOptions compile rules as cel_detect does: with the libraries the
// binary hands it.
func packOptions() detect.CompileOptions {
	return detect.CompileOptions{Libraries: plugin.Detection.Libraries}
}
