package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// simCommand is a placeholder until the sim subcommand lands.
func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "not implemented yet",
		Action: func(*cli.Context) error {
			return errors.New("sim: not implemented yet")
		},
	}
}
