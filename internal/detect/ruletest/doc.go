// Package ruletest runs the tests of detection rules: each rule's
// <name>.test.yaml beside its .cel file, single events and ordered sequences
// with the tags they must give. `oktadetect rules test` and the pack's own
// tests (rules/) call it.
package ruletest
