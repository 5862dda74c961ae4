// Package kafka registers oktadetect's Kafka components with Benthos: the
// kafka_producer output (at-least-once, or exactly-once with the checkpoint
// in the batch's transaction, and dead letters for records Kafka refuses),
// the kafka_consumer input (a consumer group member committing only what
// the pipeline acknowledged) and the kafka_checkpoint cache (the read side of
// the producer's checkpoints). The franz-go plumbing they share lives in
// internal/kafkax.
//
// The names deliberately differ from Redpanda Connect's (kafka, kafka_franz)
// so this package can be linked into a Connect build.
package kafka
