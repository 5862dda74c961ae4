package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// docsURL is where the binary sends people for documentation.
const docsURL = "https://github.com/oktadetect/oktadetect"

// appUsage and appDescription introduce the product in `oktadetect --help`.
const appUsage = "Okta System Log → CEL detection rules → Kafka - " + docsURL

const appDescription = `oktadetect polls an Okta org's System Log (input okta_system_log), tags events
with CEL detection rules (processor cel_detect, the Okta rule pack built in) and
writes events and alerts to Kafka (output kafka_producer). It is a Benthos
distribution: every Benthos command below works on configs using our components.

Try it on a simulated org, with an embedded Kafka:

  oktadetect demo

Run the shipped pipeline, or start a config of your own from our components:

  oktadetect -c config/okta-to-kafka.yaml
  oktadetect create okta_system_log/cel_detect,detections_to_alerts/kafka_producer > ./config.yaml
  oktadetect lint ./config.yaml
  oktadetect run ./config.yaml
  oktadetect rules test rules/
  oktadetect docs --out docs/components

Component reference: ` + docsURL + `/tree/main/docs/components`

// setAppHelp makes the root help introduce oktadetect. Benthos' CLI has no
// option for its own usage line and description (it always says "A stream
// processor for mundane tasks" and shows a `kafka` example this binary does
// not have), so the root help template, urfave/cli's documented hook, prints
// ours in their place. Subcommand help is untouched.
func setAppHelp() {
	t := cli.AppHelpTemplate
	t = strings.Replace(t, `{{template "helpNameTemplate" .}}`, `{{.HelpName}} - `+appUsage, 1)
	t = strings.Replace(t, `{{template "descriptionTemplate" .}}`, indent(appDescription, "   "), 1)
	cli.AppHelpTemplate = t
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if i > 0 && l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}
