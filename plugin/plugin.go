// Package plugin registers every oktadetect component with Benthos' global
// environment. Import it for its side effects:
//
//	import _ "github.com/oktadetect/oktadetect/plugin"
package plugin

import (
	// okta_system_log input.
	_ "github.com/oktadetect/oktadetect/plugin/okta"
	// cel_detect processor.
	_ "github.com/oktadetect/oktadetect/plugin/detect"
	// kafka_producer output, kafka_consumer input, kafka_checkpoint cache.
	_ "github.com/oktadetect/oktadetect/internal/impl/kafka"
	// prometheus metrics exporter.
	_ "github.com/oktadetect/oktadetect/internal/impl/prometheus"
)
