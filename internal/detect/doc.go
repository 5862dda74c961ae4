// Package detect is oktadetect's rule engine, a plain library: it loads
// detection rules written as .cel files (a YAML header in // comments, then a
// CEL condition over `event`), compiles and indexes them, evaluates them on
// each JSON event, keeps threshold, dedup and previous state by event time,
// and tags matching events with a top-level "detections" array. See
// rules/README.md for the rule format.
//
// It knows nothing of Benthos or Kafka (internal/layout_test.go checks it).
// Its hosts hand it what is theirs: the CEL libraries rules may call
// (CompileOptions.Libraries; the okta.* functions are
// internal/detect/oktalib), and where state lives: in memory (Engine), in a
// snapshot file (Engine.SaveSnapshot / LoadSnapshot), or per source
// partition in a store such as the Kafka changelog (PartitionEngines over a
// PartitionStore). The cel_detect processor (internal/impl/detect) is the
// Benthos side.
//
// One event's way through: Engine.ProcessWithMeta decodes the bytes once
// into a pooled document (jsondoc_parse.go) that CEL reads in place, asks the
// index (index.go) which rules can match its eventType, evaluates those
// (engine.go, with state.go for thresholds, dedup periods and remembered
// values), and splices the detections into the original bytes.
package detect
