package detect

import (
	"slices"
	"sort"
)

// RuleInfo is what a rule says about itself: the catalogue `rules list`
// prints. Its AlertRule part is the `rule` object alerts carry, so that an
// analyst has the description, the ATT&CK ids and the runbook at hand.
type RuleInfo struct {
	AlertRule
	FalsePositives []string `json:"falsepositives,omitempty"`
	// Kind is how the rule decides: single (one event), threshold,
	// distinct, sequence, first_seen, absence, previous (the state it
	// keeps).
	Kind    string `json:"kind"`
	Enabled bool   `json:"enabled"`
	File    string `json:"file"`
}

// newRuleInfo describes a compiled rule. Title and severity are as written
// (a template when they depend on the event).
func newRuleInfo(r *compiledRule) *RuleInfo {
	return &RuleInfo{
		AlertRule: AlertRule{
			ID: r.ID, Title: r.Title.Text, Description: r.Description, Severity: r.Severity.Text,
			Mitre: r.Mitre, References: r.References, Runbook: r.Runbook, Tags: r.Tags,
			Author: r.Author, License: r.License, Status: r.Status, Version: r.fingerprint,
		},
		FalsePositives: r.FalsePositives, Kind: ruleKind(r.Rule), Enabled: r.Enabled, File: r.Path,
	}
}

func ruleKind(r *Rule) string {
	switch {
	case r.Threshold != nil && r.Threshold.Distinct != nil:
		return "distinct"
	case r.Threshold != nil:
		return "threshold"
	case r.Sequence != nil:
		return "sequence"
	case r.FirstSeen != nil:
		return "first_seen"
	case r.Absence != nil:
		return "absence"
	case r.Previous != nil:
		return "previous"
	}
	return "single"
}

// Catalogue describes every rule of the set, those switched off included,
// ordered by id.
func (rs *RuleSet) Catalogue() []*RuleInfo {
	out := make([]*RuleInfo, 0, len(rs.all))
	for _, r := range rs.all {
		info := *r.info
		info.Enabled = slices.Contains(rs.rules, r)
		out = append(out, &info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AlertRule is the `rule` object an alert carries.
type AlertRule struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Severity    string   `json:"severity"`
	Mitre       []string `json:"mitre,omitempty"`
	References  []string `json:"references,omitempty"`
	Runbook     string   `json:"runbook,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Author      []string `json:"author,omitempty"`
	License     string   `json:"license,omitempty"`
	Status      string   `json:"status,omitempty"`
	// Version is a hash of the rule file: it changes with any edit.
	Version string `json:"version"`
}

// ForAlert is the rule as alerts carry it.
func (r *RuleInfo) ForAlert() AlertRule { return r.AlertRule }
