package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
)

// docsDir is where the component reference lives in the repository.
const docsDir = "docs/components"

// component is one component this binary registers beyond Benthos' own.
type component struct{ kind, name string }

// ourComponents lists them in the order the index shows. A test compares it
// with the Register calls under plugin/, so a new component is not missed.
var ourComponents = []component{
	{"input", "okta_system_log"},
	{"processor", "cel_detect"},
	{"processor", "cel_route"},
	{"processor", "detections_to_alerts"},
	{"output", "kafka_producer"},
	{"input", "kafka_consumer"},
	{"cache", "kafka_checkpoint"},
	{"metrics", "prometheus"},
}

// docsCommand renders docs/components from the registered specs, as Benthos
// renders its own reference, in plain GitHub Markdown.
func docsCommand() *cli.Command {
	return &cli.Command{
		Name:  "docs",
		Usage: "Write the Markdown reference of oktadetect's components (one page each, from their specs)",
		Description: "Renders each component's summary, description, fields (type, default, description,\n" +
			"examples) and examples into DIR/<name>.md, plus DIR/README.md as an index. The pages in\n" +
			"the repository are made with: go run ./cmd/oktadetect docs --out " + docsDir,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: docsDir, Usage: "directory to write the pages to (created if missing)"},
		},
		Action: func(c *cli.Context) error {
			pages, err := renderComponentDocs()
			if err != nil {
				return err
			}
			return writePages(c.String("out"), pages)
		},
	}
}

// renderComponentDocs returns file name → content for every page.
func renderComponentDocs() (map[string][]byte, error) {
	env := service.GlobalEnvironment()
	pages := map[string][]byte{}
	var index []indexEntry
	for _, c := range ourComponents {
		view, ok := componentView(env, c)
		if !ok {
			return nil, fmt.Errorf("docs: %s %s is not registered: update ourComponents in cmd/oktadetect/docs.go", c.kind, c.name)
		}
		data, err := view.TemplateData()
		if err != nil {
			return nil, fmt.Errorf("docs: %s: %w", c.name, err)
		}
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, pageData{TemplateDataPlugin: data, Kind: c.kind, Command: docsRegenCommand}); err != nil {
			return nil, fmt.Errorf("docs: rendering %s: %w", c.name, err)
		}
		pages[c.name+".md"] = buf.Bytes()
		index = append(index, indexEntry{Name: c.name, Kind: c.kind, Summary: data.Summary})
	}
	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, struct {
		Entries []indexEntry
		Command string
	}{index, docsRegenCommand}); err != nil {
		return nil, fmt.Errorf("docs: rendering the index: %w", err)
	}
	pages["README.md"] = buf.Bytes()
	return pages, nil
}

const docsRegenCommand = "go run ./cmd/oktadetect docs --out " + docsDir

func componentView(env *service.Environment, c component) (*service.ConfigView, bool) {
	switch c.kind {
	case "input":
		return env.GetInputConfig(c.name)
	case "processor":
		return env.GetProcessorConfig(c.name)
	case "output":
		return env.GetOutputConfig(c.name)
	case "cache":
		return env.GetCacheConfig(c.name)
	case "metrics":
		return env.GetMetricsConfig(c.name)
	}
	return nil, false
}

// writePages replaces dir's Markdown pages with pages.
func writePages(dir string, pages map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	for _, f := range old {
		if _, keep := pages[filepath.Base(f)]; !keep {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("docs: removing the stale %s: %w", f, err)
			}
		}
	}
	for name, b := range pages {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("docs: %w", err)
		}
	}
	return nil
}

type pageData struct {
	service.TemplateDataPlugin
	Kind    string
	Command string
}

type indexEntry struct{ Name, Kind, Summary string }

var docsFuncs = template.FuncMap{
	"trim": strings.TrimSpace,
	// list turns the spec's `["A","B"]` categories into "A, B".
	"list": func(s string) string {
		return strings.NewReplacer("[", "", "]", "", `"`, "", ",", ", ").Replace(s)
	},
	// cell keeps a table cell on one line and its pipes literal.
	"cell": func(s string) string {
		return strings.NewReplacer("|", `\|`, "\n", " ").Replace(strings.TrimSpace(s))
	},
	// code renders a value as inline code, even one holding backticks.
	"code": func(s string) string {
		if strings.Contains(s, "`") {
			return "`` " + s + " ``"
		}
		return "`" + s + "`"
	},
}

var pageTemplate = template.Must(template.New("page").Funcs(docsFuncs).Parse(`<!-- Generated from the component's spec by ` + "`{{.Command}}`" + `; do not edit. -->

# {{.Name}}

{{.Kind}} · {{.Status}}{{if .Categories}} · {{list .Categories}}{{end}}

{{trim .Summary}}

` + "```yaml" + `
# Common config fields, showing default values
{{trim .CommonConfigYAML}}
` + "```" + `

<details>
<summary>Full config, with advanced fields</summary>

` + "```yaml" + `
# All config fields, showing default values
{{trim .AdvancedConfigYAML}}
` + "```" + `

</details>
{{if .Description}}
{{trim .Description}}
{{end}}{{if .Examples}}
## Examples
{{range .Examples}}
### {{.Title}}
{{if .Summary}}
{{trim .Summary}}
{{end}}
` + "```yaml" + `
{{trim .Config}}
` + "```" + `
{{end}}{{end}}{{if .Fields}}
## Fields
{{range .Fields}}
### ` + "`{{.FullName}}`" + `

{{trim .Description}}
{{if .IsSecret}}
This field holds a secret: it is redacted when the config is echoed.
{{end}}{{if .IsInterpolated}}
This field supports [interpolation functions](https://docs.redpanda.com/redpanda-connect/configuration/interpolation/#bloblang-queries).
{{end}}
Type: ` + "`{{.Type}}`" + `{{if .DefaultMarshalled}}  
Default: {{code .DefaultMarshalled}}{{end}}
{{if .AnnotatedOptions}}
| Option | Summary |
|---|---|
{{range .AnnotatedOptions}}| ` + "`{{index . 0}}`" + ` | {{cell (index . 1)}} |
{{end}}{{else if .Options}}
Options: {{range $i, $o := .Options}}{{if $i}}, {{end}}` + "`{{$o}}`" + `{{end}}.
{{end}}{{if .ExamplesMarshalled}}
` + "```yaml" + `
# Examples
{{range $i, $e := .ExamplesMarshalled}}{{if $i}}
{{end}}{{trim $e}}
{{end}}` + "```" + `
{{end}}{{end}}{{end}}`))

var indexTemplate = template.Must(template.New("index").Funcs(docsFuncs).Parse(`<!-- Generated from the components' specs by ` + "`{{.Command}}`" + `; do not edit. -->

# Components

The components oktadetect registers, beside Benthos' own (` + "`oktadetect list`" + ` shows them all).
Each page is rendered from the component's spec, the same text ` + "`oktadetect list --format cue`" + ` shows.

| Component | Kind | Summary |
|---|---|---|
{{range .Entries}}| [{{.Name}}]({{.Name}}.md) | {{.Kind}} | {{cell .Summary}} |
{{end}}`))
