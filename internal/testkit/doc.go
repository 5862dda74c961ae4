// Package testkit holds the helpers that tests of several packages share, one
// copy each. Nothing outside _test.go files imports it.
package testkit
