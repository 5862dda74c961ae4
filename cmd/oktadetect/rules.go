package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// rulesCommand is a placeholder until the rules subcommand lands.
func rulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "rules",
		Usage: "not implemented yet",
		Action: func(*cli.Context) error {
			return errors.New("rules: not implemented yet")
		},
	}
}
