// Command oktadetect is a Benthos distribution with the oktadetect plugins
// registered, plus subcommands for rules, the Okta simulator and the demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/redpanda-data/benthos/v4/public/service"

	// Core Benthos components: stdin/stdout/file/http_server, mapping, switch, …
	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/oktadetect/oktadetect/plugin"
)

func main() {
	setAppHelp()
	base := cliOptions()
	benthosCLI := func(args ...string) int {
		opts := append(cliOptions(), service.CLIOptSetArgs(append([]string{os.Args[0]}, args...)...))
		code, err := service.RunCLIToCode(context.Background(), opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return code
	}
	service.RunCLI(context.Background(), append(base, service.CLIOptAddCommand(lintCommand(benthosCLI)))...)
}

// cliOptions is the Benthos CLI with our name, schema and commands; main adds
// its lint, which runs Benthos' own lint through a CLI built from these.
func cliOptions() []service.CLIOptFunc {
	ver, built := buildVersion()
	return []service.CLIOptFunc{
		service.CLIOptSetBinaryName("oktadetect"),
		service.CLIOptSetProductName("oktadetect"),
		service.CLIOptSetDocumentationURL(docsURL),
		service.CLIOptSetVersion(ver, built),
		service.CLIOptSetMainSchemaFrom(mainSchema),
		service.CLIOptOnConfigParse(func(pc *service.ParsedConfig) error {
			if root, err := pc.FieldAny(); err == nil {
				if problem := stateTopicThreadsProblem(root); problem != "" {
					return errors.New(problem)
				}
			}
			return ensureStateDir()
		}),
		service.CLIOptAddCommand(rulesCommand()),
		service.CLIOptAddCommand(simCommand()),
		service.CLIOptAddCommand(demoCommand()),
		service.CLIOptAddCommand(docsCommand()),
	}
}
