// Package kafka holds oktadetect's Kafka components for Benthos, built on
// franz-go. Importing it registers the kafka_producer output.
//
// The names deliberately differ from Redpanda Connect's (kafka, kafka_franz)
// so this package can be linked into a Connect build.
package kafka
