// Package changelog keeps per-partition state in a compacted Kafka topic,
// Kafka Streams' model: the state of source partition p lives in changelog
// partition p, so whichever worker owns p restores it from there, and each
// batch's changes are committed in one transaction of a producer only the
// partition's current owner may use. cel_detect's partitioned state is its
// user; the package knows nothing of detection.
package changelog
