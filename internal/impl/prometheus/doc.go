// Package prometheus registers oktadetect's prometheus metrics exporter
// with Benthos: every metric of Benthos and of oktadetect's components,
// named as Prometheus expects and each with a help text (help.go), served at
// /metrics on Benthos' HTTP server.
package prometheus
