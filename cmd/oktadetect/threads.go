package main

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// A cel_detect keeping its state in a state_topic relies on batches reaching
// the transactional output in the order it evaluated them: with several
// pipeline threads a later batch can commit first, and a crash between the
// two commits would leave the topic holding state of events never
// committed. Benthos' default is one thread per CPU, so leaving `threads`
// out is the usual way to get this wrong; it is refused before the pipeline
// starts rather than found in the alerts.

// stateTopicThreadsProblem returns what is wrong with a whole config
// (decoded YAML), or "".
func stateTopicThreadsProblem(root any) string {
	if !hasStateTopic(root) {
		return ""
	}
	threads, set := pipelineThreads(root)
	if threads == 1 {
		return ""
	}
	now := fmt.Sprintf("it is %d", threads)
	switch {
	case !set:
		now = "it is not set, which means one per CPU"
	case threads < 1:
		now += ", which means one per CPU"
	}
	return "cel_detect with state_topic needs pipeline.threads: 1 (" + now + "): batches of several threads can commit out of order, and the state topic would hold state of events not committed; set `pipeline: {threads: 1}`"
}

// hasStateTopic reports whether some cel_detect in v sets state_topic.
func hasStateTopic(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if cd, ok := x["cel_detect"].(map[string]any); ok {
			// As cel_detect decides: the block is on when it lists brokers.
			if st, ok := cd["state_topic"].(map[string]any); ok && listsBrokers(st["seed_brokers"]) {
				return true
			}
		}
		for _, c := range x {
			if hasStateTopic(c) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if hasStateTopic(c) {
				return true
			}
		}
	case *yaml.Node: // Benthos keeps components as nodes in a parsed config
		var decoded any
		return x.Decode(&decoded) == nil && hasStateTopic(decoded)
	}
	return false
}

func listsBrokers(v any) bool {
	switch x := v.(type) {
	case string:
		return x != ""
	case []any:
		for _, b := range x {
			if s, _ := b.(string); s != "" {
				return true
			}
		}
	}
	return false
}

// pipelineThreads returns pipeline.threads and whether it is set (Benthos'
// default, -1, is one per CPU).
func pipelineThreads(root any) (int, bool) {
	m, _ := root.(map[string]any)
	p, _ := m["pipeline"].(map[string]any)
	switch t := p["threads"].(type) {
	case int:
		return t, true
	case float64:
		return int(t), true
	case string:
		if n, err := strconv.Atoi(t); err == nil {
			return n, true
		}
	}
	return -1, false
}
