// Package kafkax is the one place oktadetect's Kafka code sets up franz-go:
// the connection fields every Kafka component shares (seed_brokers,
// client_id, tls, sasl) and the client options built from them, the
// explanation of a failed connection, and the admin requests the components
// need (create or check topics, make a topic compacted, read a topic as a
// read_committed consumer). It knows Benthos only for those config fields
// and for logging; the components themselves live in internal/impl/kafka and
// the state store in internal/changelog.
package kafkax
