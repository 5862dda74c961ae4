// Package detect is the cel_detect processor: it loads detection rules
// written as .cel files (a YAML header in // comments, then a CEL condition
// over `event`), evaluates them on each JSON event, keeps threshold, dedup
// and previous state by event time, and tags matching events with a
// top-level "detections" array. See rules/README.md for the rule format.
package detect
