package detect

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Tuning adapts a rule set to a site without editing its files, so that the
// pack built into the binary is kept and still tuned (cel_detect's
// `disable`, `enable`, `overrides`, `exceptions` and `lists`).
type Tuning struct {
	// Disable and Enable switch rules off and on by id or glob
	// (path.Match: `Okta.Sigma.*`). A rule's header decides first, then
	// Disable, then Enable, so a family can be switched off and one of it
	// kept.
	Disable, Enable []string
	// Overrides change a rule's severity, threshold or dedup period.
	Overrides map[string]Override
	// Exceptions keep matching events from being tagged by some rules.
	Exceptions []Exception
	// Lists are site data rules read as `lists.<name>` (a list of strings).
	Lists map[string][]string
}

// Override is what a site may change in a rule, by id; zero fields are
// kept as the rule says.
type Override struct {
	Severity        string
	ThresholdCount  int
	ThresholdWindow time.Duration
	DedupPeriod     time.Duration
	// FirstSeenHistory: how far back a first_seen rule looks for the value.
	FirstSeenHistory time.Duration
}

// Exception is an allowlist entry: an event for which When (a CEL bool over
// `event`) holds is not evaluated by the rules it names (ids or globs); it
// counts toward none of their state either.
type Exception struct {
	Rules  []string
	When   string
	Reason string
}

// compiledException is an Exception ready to evaluate.
type compiledException struct {
	rules  []string
	when   cel.Program
	reason string
}

// matchesRule says whether id is one of patterns (ids or globs).
func matchesRule(id string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, id); ok || p == id {
			return true
		}
	}
	return false
}

// applyOverride changes the parsed rule before it is compiled.
func applyOverride(r *Rule, o Override) error {
	var errs []error
	if o.Severity != "" {
		s := strings.ToUpper(strings.TrimSpace(o.Severity))
		if !validSeverity(s) {
			errs = append(errs, fmt.Errorf("severity %q is not one of %s", o.Severity, strings.Join(severityLevels, "|")))
		}
		r.Severity = exprText{Text: s}
	}
	if o.ThresholdCount != 0 || o.ThresholdWindow != 0 {
		if r.Threshold == nil {
			errs = append(errs, errors.New("threshold.count/window given, but the rule has no threshold"))
		} else {
			if o.ThresholdCount < 0 {
				errs = append(errs, fmt.Errorf("threshold.count %d must be positive", o.ThresholdCount))
			} else if o.ThresholdCount > 0 {
				r.Threshold.Count = o.ThresholdCount
			}
			if o.ThresholdWindow < 0 {
				errs = append(errs, fmt.Errorf("threshold.window %v must be positive", o.ThresholdWindow))
			} else if o.ThresholdWindow > 0 {
				r.Threshold.Window = o.ThresholdWindow
			}
		}
	}
	if o.DedupPeriod < 0 {
		errs = append(errs, fmt.Errorf("dedup.period %v must be positive", o.DedupPeriod))
	} else if o.DedupPeriod > 0 {
		if r.Dedup == nil {
			r.Dedup = &DedupSpec{}
		}
		r.Dedup.Period = o.DedupPeriod
	}
	switch {
	case o.FirstSeenHistory < 0:
		errs = append(errs, fmt.Errorf("first_seen.history %v must be positive", o.FirstSeenHistory))
	case o.FirstSeenHistory > 0 && r.FirstSeen == nil:
		errs = append(errs, errors.New("first_seen.history given, but the rule has no first_seen"))
	case o.FirstSeenHistory > 0:
		r.FirstSeen.History = o.FirstSeenHistory
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("overrides[%s]: %w", r.ID, err)
	}
	return nil
}

// tune switches rules on and off, compiles the exceptions, and checks that
// every id and glob the tuning names matches some rule: a typo in a
// tuning entry must not silently tune nothing.
func (t *Tuning) tune(rules []*compiledRule, opts CompileOptions) ([]compiledException, error) {
	ids := make([]string, len(rules))
	for i, r := range rules {
		ids[i] = r.ID
		if matchesRule(r.ID, t.Disable) {
			r.Enabled = false
		}
		if matchesRule(r.ID, t.Enable) {
			r.Enabled = true
		}
	}
	var errs []error
	check := func(field string, patterns []string) {
		for _, p := range patterns {
			if !slices.ContainsFunc(ids, func(id string) bool { return matchesRule(id, []string{p}) }) {
				errs = append(errs, fmt.Errorf("%s: %q matches no rule id", field, p))
			}
		}
	}
	check("disable", t.Disable)
	check("enable", t.Enable)
	overridden := make([]string, 0, len(t.Overrides))
	for id := range t.Overrides {
		overridden = append(overridden, id)
	}
	sort.Strings(overridden)
	for _, id := range overridden {
		if !slices.Contains(ids, id) {
			errs = append(errs, fmt.Errorf("overrides: no rule has id %q", id))
		}
	}
	exceptions, err := t.compileExceptions(opts)
	if err != nil {
		errs = append(errs, err)
	}
	for i, e := range t.Exceptions {
		check(fmt.Sprintf("exceptions[%d].rules", i), e.Rules)
	}
	return exceptions, errors.Join(errs...)
}

func (t *Tuning) compileExceptions(opts CompileOptions) ([]compiledException, error) {
	if len(t.Exceptions) == 0 {
		return nil, nil
	}
	env, err := newEnv(false, opts.Libraries)
	if err != nil {
		return nil, err
	}
	var out []compiledException
	var errs []error
	for i, e := range t.Exceptions {
		if len(e.Rules) == 0 || strings.TrimSpace(e.When) == "" {
			errs = append(errs, fmt.Errorf("exceptions[%d]: needs rules (ids or globs) and when (a CEL condition over event)", i))
			continue
		}
		ast, iss := env.Compile(e.When)
		if iss.Err() != nil {
			errs = append(errs, fmt.Errorf("exceptions[%d].when: %w", i, iss.Err()))
			continue
		}
		if !ast.OutputType().IsExactType(types.BoolType) && !ast.OutputType().IsExactType(types.DynType) {
			errs = append(errs, fmt.Errorf("exceptions[%d].when must be a bool, not %s", i, ast.OutputType()))
			continue
		}
		prg, err := env.Program(ast, cel.CostLimit(costLimitOf(opts)), cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			errs = append(errs, fmt.Errorf("exceptions[%d].when: %w", i, err))
			continue
		}
		out = append(out, compiledException{rules: e.Rules, when: prg, reason: e.Reason})
	}
	return out, errors.Join(errs...)
}

func costLimitOf(opts CompileOptions) uint64 {
	if opts.CostLimit == 0 {
		return DefaultCostLimit
	}
	return opts.CostLimit
}

// listsValue is the `lists` variable rules read, built of CEL values once:
// a Go map would be converted on every read (`lists.x` made a new list, and
// `in` boxed each of its strings), on every event of the rules using it.
func listsValue(lists map[string][]string) ref.Val {
	m := make(map[ref.Val]ref.Val, len(lists))
	for k, v := range lists {
		items := make([]ref.Val, len(v))
		for i, s := range v {
			items[i] = types.String(s)
		}
		m[types.String(k)] = types.NewRefValList(types.DefaultTypeAdapter, items)
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, m)
}
