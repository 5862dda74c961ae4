// Package rules holds oktadetect's rule pack. It is embedded into the binary
// and is what cel_detect runs when its `rules` field is unset.
package rules

import "embed"

// FS holds the pack: okta/*.cel with their okta/*.test.yaml.
//
//go:embed okta
var FS embed.FS

// Root is the directory in FS that holds the rules.
const Root = "okta"
