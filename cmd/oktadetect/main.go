// Command oktadetect is a Benthos distribution with the oktadetect plugins
// registered, plus subcommands for rules, the Okta simulator and the demo.
package main

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	// Core Benthos components: stdin/stdout/file/http_server, mapping, switch, …
	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	_ "github.com/oktadetect/oktadetect/plugin"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	service.RunCLI(context.Background(),
		service.CLIOptSetBinaryName("oktadetect"),
		service.CLIOptSetProductName("oktadetect"),
		service.CLIOptSetVersion(version, ""),
		service.CLIOptSetMainSchemaFrom(mainSchema),
		service.CLIOptOnConfigParse(func(*service.ParsedConfig) error { return ensureStateDir() }),
		service.CLIOptAddCommand(rulesCommand()),
		service.CLIOptAddCommand(simCommand()),
		service.CLIOptAddCommand(demoCommand()),
	)
}
