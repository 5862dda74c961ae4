// Package meta names the message metadata keys oktadetect's components
// exchange. A key set by one component and read by another is a contract
// between them (and with users' Bloblang and the shipped configs): it is
// spelled once, here.
package meta

// Set by okta_system_log on every event.
const (
	OktaUUID      = "okta_uuid"       // the event's uuid
	OktaEventType = "okta_event_type" // the event's eventType
	OktaPublished = "okta_published"  // the event's published
	OktaOrg       = "okta_org"        // the org's host, e.g. acme.okta.com
)

// Set by okta_system_log on the last event of each page, read by
// kafka_producer in exactly-once mode: the checkpoint that moves past the
// page, and the key it is stored under.
const (
	OktaCursor    = "okta_cursor"
	OktaCursorKey = "okta_cursor_key"
)

// Set by cel_detect: the ids of the rules an event matched, comma-separated
// (empty when none).
const DetectionIDs = "detection_ids"

// Set by cel_detect on a tagged event, read by detections_to_alerts: the
// descriptions of the rules that matched ([]*detect.RuleInfo, a structured
// value, in the order of the detections), which alerts carry as `rule`.
const DetectionRules = "detection_rules"

// Set by cel_detect to "true" on the messages it emits for an absence (an
// expectation no closing event met in time): the opening event again with
// the absence's detection. detections_to_alerts writes such a message as
// alerts only, never as a second copy of the event.
const DetectionDeferred = "detection_deferred"

// Set by cel_route on each message it writes, read by cel_detect (from the
// Kafka header of the same name): the one rule to evaluate on the event,
// and the record key of the repartition topic (the rule and the state key
// it keeps the event under).
const (
	DetectRule     = "detect_rule"
	DetectRouteKey = "detect_route_key"
)

// Set by cel_detect (state_topic) to "true" on the messages it appends to a
// batch carrying the batch's detection state changes, for a transactional
// kafka_producer to commit with the batch. They are not events:
// detections_to_alerts passes them on untouched.
const DetectionState = "detection_state"

// Read by kafka_producer: "true" writes the record with a null value (a
// tombstone, which deletes its key from a compacted topic), whatever the
// message's bytes.
const KafkaTombstone = "kafka_tombstone"

// Read by kafka_producer: "true" means the record must reach its topic as it
// is. Kafka refusing it for good (too large) fails the batch, with an error
// saying why, instead of replacing it with a dead letter: a lost state record
// would silently change what is detected.
const KafkaNoDeadLetter = "kafka_no_dead_letter"

// Set by kafka_consumer on every record, read by cel_detect's partitioned
// state (topic, partition, offset) and by detections_to_alerts' outputs
// (topic, key).
const (
	KafkaKey           = "kafka_key"
	KafkaTopic         = "kafka_topic"
	KafkaPartition     = "kafka_partition"
	KafkaOffset        = "kafka_offset"
	KafkaTimestampUnix = "kafka_timestamp_unix"
)
