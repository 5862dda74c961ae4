package prometheus

import "strings"

// help says what each metric is, by the name its component gives Benthos
// (before _total/_seconds are added). Benthos' metrics API carries a name
// and labels only, so the exporter is the one place a description can be
// attached; a metric missing here gets a generic text naming its kind.
// TestEveryExportedMetricHasHelp (tests/e2e) fails when a shipped pipeline
// exports a metric this table does not describe.
var help = map[string]string{
	// Benthos inputs.
	"input_received":          "Messages received by the input.",
	"input_latency_ns":        "Time from the input reading a message to the message being acknowledged downstream, in seconds.",
	"input_connection_up":     "Times the input connected to its source.",
	"input_connection_failed": "Failed attempts of the input to connect to its source.",
	"input_connection_lost":   "Times the input lost its connection to its source.",
	// Benthos processors.
	"processor_received":       "Messages received by the processor.",
	"processor_batch_received": "Batches received by the processor.",
	"processor_sent":           "Messages sent on by the processor.",
	"processor_batch_sent":     "Batches sent on by the processor.",
	"processor_error":          "Messages the processor flagged with an error.",
	"processor_latency_ns":     "Time the processor took to process a batch, in seconds.",
	// Benthos outputs.
	"output_sent":              "Messages the output wrote and had acknowledged by its sink.",
	"output_batch_sent":        "Batches the output wrote and had acknowledged by its sink.",
	"output_error":             "Failed writes of the output (the messages are retried or nacked).",
	"output_latency_ns":        "Time the output took to write a batch, in seconds.",
	"output_connection_up":     "Times the output connected to its sink.",
	"output_connection_failed": "Failed attempts of the output to connect to its sink.",
	"output_connection_lost":   "Times the output lost its connection to its sink.",
	// Benthos batching, caches, rate limits, buffers, HTTP clients.
	"batch_created":           "Batches formed by a batching policy, by what closed the batch (mechanism).",
	"cache_success":           "Cache operations that succeeded, by operation.",
	"cache_error":             "Cache operations that failed, by operation.",
	"cache_not_found":         "Cache reads of a key that is not there, by operation.",
	"cache_duplicate":         "Cache adds of a key that already exists, by operation.",
	"cache_latency_ns":        "Time a cache operation took, by operation, in seconds.",
	"rate_limit_checked":      "Checks made against a rate limit resource.",
	"rate_limit_triggered":    "Rate limit checks that made the caller wait.",
	"rate_limit_error":        "Rate limit checks that failed.",
	"buffer_received":         "Messages written to the buffer.",
	"buffer_batch_received":   "Batches written to the buffer.",
	"buffer_sent":             "Messages read from the buffer.",
	"buffer_batch_sent":       "Batches read from the buffer.",
	"buffer_latency_ns":       "Time messages spent in the buffer, in seconds.",
	"http_request_latency_ns": "Time an HTTP client request took, in seconds.",

	// okta_system_log.
	"okta_requests_total":                 "System Log requests sent to Okta, by HTTP status (\"error\": no response).",
	"okta_events_total":                   "Okta System Log events read and passed on.",
	"okta_duplicates_dropped_total":       "Events dropped because their uuid was already delivered (resume boundary, re-read pages).",
	"okta_rate_limit_remaining":           "X-Rate-Limit-Remaining of Okta's latest System Log response: requests left in the org's window.",
	"okta_lag_seconds":                    "Seconds between now and the published time of the newest event read.",
	"okta_last_success_timestamp_seconds": "Unix time of the last System Log request Okta answered with a usable page (0 until the first).",
	"okta_cursor_commits_total":           "Okta cursors saved after every event of their page was acknowledged downstream.",
	"okta_checkpoint_errors_total":        "Failed attempts to save the Okta cursor to the checkpoint cache.",
	"okta_response_errors_total":          "Okta responses with status 200 that could not be used, by reason; the request is retried.",
	"okta_clock_skew_seconds":             "Okta's Date header minus the local clock, in seconds.",
	"okta_unacked_pages":                  "Pages read from Okta and not yet acknowledged by the output.",
	"okta_unacked_oldest_seconds":         "Seconds the oldest unacknowledged page has waited for the output (0 when none waits).",

	// cel_route.
	"cel_route_events_total":        "Events routed to the state keys of the rules they concern.",
	"cel_route_records_total":       "Messages cel_route wrote, one per rule and state key of an event.",
	"cel_route_decode_errors_total": "Messages that are not JSON objects, dropped by cel_route.",
	"cel_route_watermarks_total":    "Watermark messages cel_route wrote: an org's event time, one per repartition partition as it enters a new minute.",
	// cel_detect.
	"cel_detect_events_total":                    "Events evaluated against the rule set.",
	"cel_detect_watermarks_total":                "Watermark records of cel_route read by a detection worker: no rule evaluates them; they move their org's event time.",
	"cel_detect_matches_total":                   "Events tagged, by rule.",
	"cel_detect_rule_errors_total":               "Rule evaluation errors (the event passes on untagged by that rule), by rule.",
	"cel_detect_decode_errors_total":             "Messages that are not JSON objects, passed on unchanged.",
	"cel_detect_eval_ns":                         "Time to evaluate the whole rule set on one event, in seconds.",
	"cel_detect_state_restores_total":            "Partitions whose detection state was restored from the changelog topic.",
	"cel_detect_records_already_evaluated_total": "Re-delivered records dropped because their batch was evaluated and written out before.",
	"cel_detect_records_replayed_total":          "Re-delivered records of the last committed batch, written out again with the tags they first got.",
	"cel_detect_changelog_errors_total":          "Failed restores and commits of the detection state changelog (each is retried).",
	"cel_detect_state_records_total":             "Detection state change records cel_detect appended to batches, for the transactional output to commit with them (state_topic).",
	"cel_detect_records_without_partition_total": "Messages without Kafka partition metadata, passed on untagged with an error.",
	"cel_detect_state_evictions_total":           "Detection state keys evicted because a rule held more than max_state_keys (least recently updated first), by rule.",
	"cel_detect_state_keys":                      "Detection state keys held, by rule (bounded by max_state_keys).",

	// kafka_consumer.
	"kafka_consumer_nacked_batches_total":     "Batches nacked downstream and redelivered before anything later of their partition.",
	"kafka_producer_dead_letters_total":       "Records Kafka refused for good (too large, invalid), written to the dead-letter topic instead, by reason.",
	"kafka_consumer_revoked_partitions_total": "Partitions this consumer gave up in a rebalance (or lost).",
}

// helpText is the HELP line of a metric registered under name (as Benthos
// gave it) of the given kind ("counter", "gauge", "timer").
func helpText(name, kind string) string {
	if h, ok := help[name]; ok {
		return h
	}
	if base, ok := strings.CutSuffix(name, "_total"); ok {
		if h, ok := help[base]; ok {
			return h
		}
	}
	unit := ""
	if kind == "timer" {
		unit = ", in seconds"
	}
	return "Benthos " + kind + " " + name + unit + " (no description: set by a metric processor or an unlisted component)."
}
