package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/oktadetect/oktadetect/plugin/detect"
	"github.com/oktadetect/oktadetect/rules"
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
				Usage:     "Compile rules and check their headers; print file:line:col problems, exit 1 if any",
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
		_, failed, err = detect.RunTestsFS(rules.FS, rules.Root, w)
	} else {
		_, failed, err = detect.RunTests(paths, w)
	}
	if err != nil || failed > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func runRulesLint(paths []string, w, errW io.Writer) error {
	var problems []error
	if len(paths) == 0 {
		problems = detect.LintFS(rules.FS, rules.Root)
	} else {
		problems = detect.Lint(paths)
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
