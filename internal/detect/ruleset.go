package detect

import (
	"errors"
	"fmt"
	"sort"

	"github.com/google/cel-go/common/types/ref"
)

// RuleSet is a compiled, immutable set of rules, ordered by id.
type RuleSet struct {
	rules      []*compiledRule // enabled, evaluated
	all        []*compiledRule // every rule loaded, for the catalogue
	exceptions []compiledException
	lists      ref.Val  // the `lists` variable (Tuning.Lists)
	replaced   []string // built-in rules replaced by rules on disk
}

// Replaced lists the ids of built-in rules that rules on disk replaced.
func (rs *RuleSet) Replaced() []string { return rs.replaced }

// Info describes the rule id of the set (enabled or not), or nil.
func (rs *RuleSet) Info(id string) *RuleInfo {
	for _, r := range rs.all {
		if r.ID == id {
			return r.info
		}
	}
	return nil
}

// IDs lists the rule ids in evaluation order.
func (rs *RuleSet) IDs() []string {
	ids := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		ids[i] = r.ID
	}
	return ids
}

// NewRuleSet checks ids are unique, drops disabled rules, orders by id.
func NewRuleSet(rules []*compiledRule) (*RuleSet, error) {
	seen := map[string]string{}
	var errs []error
	rs := &RuleSet{}
	for _, r := range rules {
		if other, dup := seen[r.ID]; dup {
			errs = append(errs, r.errAt(r.header.first, 1, fmt.Sprintf("duplicate rule id %q (also in %s)", r.ID, other)))
			continue
		}
		seen[r.ID] = r.Path
		rs.all = append(rs.all, r)
		if r.Enabled {
			rs.rules = append(rs.rules, r)
		}
	}
	sort.Slice(rs.rules, func(i, j int) bool { return rs.rules[i].ID < rs.rules[j].ID })
	return rs, errors.Join(errs...)
}
