// Package rules holds oktadetect's rule pack. It is embedded into the binary
// and is what cel_detect runs when its `rules` field is unset or says
// `builtin`.
package rules

import (
	"embed"
	"fmt"

	"gopkg.in/yaml.v3"
)

// FS holds the pack: okta/*.cel with their okta/*.test.yaml.
//
//go:embed okta
var FS embed.FS

// Root is the directory in FS that holds the rules.
const Root = "okta"

//go:embed lists.yaml
var listsYAML []byte

// Lists are the defaults of the site data the pack's rules read as
// `lists.<name>` (lists.yaml); cel_detect's `lists` field replaces them by
// name.
func Lists() (map[string][]string, error) {
	var lists map[string][]string
	if err := yaml.Unmarshal(listsYAML, &lists); err != nil {
		return nil, fmt.Errorf("rules/lists.yaml: %w", err)
	}
	return lists, nil
}
