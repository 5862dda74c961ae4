// Package detect holds the Benthos components over the rule engine
// (internal/detect): the cel_detect processor, which tags each event with
// the rules it matches and keeps detection state in memory, in a snapshot
// file or per Kafka source partition in a changelog topic; and
// detections_to_alerts, which expands a tagged event into the event and one
// alert message per detection for the output.
//
// They are registered by plugin/plugin.go (Register), which hands them the
// rule pack built into the binary and the okta CEL library.
package detect
