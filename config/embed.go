// Package config embeds the shipped pipelines, so the binary's demo runs the
// same YAML a user deploys.
package config

import "embed"

// FS holds the shipped pipeline configs (*.yaml).
//
//go:embed *.yaml
var FS embed.FS
