package detect

import (
	"fmt"
	"maps"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
)

// Config fields of cel_detect that tune a rule set without editing it.
const (
	fieldDisable    = "disable"
	fieldEnable     = "enable"
	fieldOverrides  = "overrides"
	fieldExceptions = "exceptions"
	fieldLists      = "lists"

	// builtinRules in `rules` names the pack built into the binary.
	builtinRules = "builtin"
)

func tuningFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(fieldDisable).
			Description("Rule ids or globs to switch off (`Okta.Sigma.*`). Each must match some rule.").
			Example([]string{"Okta.Sigma.*", "Okta.SupportAccess"}).
			Default([]string{}),
		service.NewStringListField(fieldEnable).
			Description("Rule ids or globs to switch on, also rules shipped off (`enabled: false`). Applied after `disable`, so a family can be switched off and one of it kept.").
			Example([]string{"Okta.Login.Success"}).
			Default([]string{}),
		service.NewObjectMapField(fieldOverrides,
			service.NewStringField("severity").Description("INFO, LOW, MEDIUM, HIGH or CRITICAL.").Optional(),
			service.NewObjectField("threshold",
				service.NewIntField("count").Optional(),
				service.NewDurationField("window").Optional(),
			).Optional(),
			service.NewObjectField("dedup",
				service.NewDurationField("period").Optional(),
			).Optional(),
			service.NewObjectField("first_seen",
				service.NewDurationField("history").Optional(),
			).Optional(),
		).
			Description("Per rule id: a new severity, threshold count or window, dedup period or first_seen history. The rule's file is not changed; an id that matches no rule is an error.").
			Example(map[string]any{"Okta.BruteForceLogins": map[string]any{"threshold": map[string]any{"count": 10}, "severity": "HIGH"}}).
			Default(map[string]any{}),
		service.NewObjectListField(fieldExceptions,
			service.NewStringListField("rules").Description("Rule ids or globs the exception applies to."),
			service.NewStringField("when").Description("A CEL condition over `event`: an event for which it holds is not evaluated by those rules (and counts toward none of their thresholds)."),
			service.NewStringField("reason").Description("Why: for the next reader.").Default(""),
		).
			Description("Allowlist entries. Excepted events are counted in `cel_detect_exceptions_total{rule}`.").
			Example([]any{map[string]any{"rules": []any{"Okta.Anonymizing.VPN.Login"}, "when": "event.?client.?ipAddress.orValue('') == '203.0.113.7'", "reason": "the red team's egress"}}).
			Default([]any{}),
		service.NewAnyMapField(fieldLists).
			Description("Site data rules read as `lists.<name>` (lists of strings); replaces the pack's default of the same name (see rules/lists.yaml: `rogue_countries`, `break_glass_accounts`, `allowed_countries`, `device_hostname_patterns`).").
			Example(map[string]any{"rogue_countries": []any{"Russia", "North Korea", "Iran"}}).
			Default(map[string]any{}),
	}
}

// parseTuning reads the tuning fields; defaults are the product's lists.
func parseTuning(conf *service.ParsedConfig, defaultLists map[string][]string) (detect.Tuning, error) {
	var t detect.Tuning
	var err error
	if t.Disable, err = conf.FieldStringList(fieldDisable); err != nil {
		return t, err
	}
	if t.Enable, err = conf.FieldStringList(fieldEnable); err != nil {
		return t, err
	}
	if t.Overrides, err = parseOverrides(conf); err != nil {
		return t, err
	}
	if t.Exceptions, err = parseExceptions(conf); err != nil {
		return t, err
	}
	t.Lists, err = parseLists(conf, defaultLists)
	return t, err
}

func parseOverrides(conf *service.ParsedConfig) (map[string]detect.Override, error) {
	if !conf.Contains(fieldOverrides) {
		return nil, nil
	}
	objs, err := conf.FieldObjectMap(fieldOverrides)
	if err != nil {
		return nil, err
	}
	out := make(map[string]detect.Override, len(objs))
	for id, o := range objs {
		var ov detect.Override
		if o.Contains("severity") {
			if ov.Severity, err = o.FieldString("severity"); err != nil {
				return nil, err
			}
		}
		if o.Contains("threshold", "count") {
			if ov.ThresholdCount, err = o.FieldInt("threshold", "count"); err != nil {
				return nil, err
			}
			if ov.ThresholdCount <= 0 {
				return nil, fmt.Errorf("%s.%s.threshold.count must be positive", fieldOverrides, id)
			}
		}
		if o.Contains("threshold", "window") {
			if ov.ThresholdWindow, err = o.FieldDuration("threshold", "window"); err != nil {
				return nil, err
			}
		}
		if o.Contains("dedup", "period") {
			if ov.DedupPeriod, err = o.FieldDuration("dedup", "period"); err != nil {
				return nil, err
			}
		}
		if o.Contains("first_seen", "history") {
			if ov.FirstSeenHistory, err = o.FieldDuration("first_seen", "history"); err != nil {
				return nil, err
			}
		}
		out[id] = ov
	}
	return out, nil
}

func parseExceptions(conf *service.ParsedConfig) ([]detect.Exception, error) {
	if !conf.Contains(fieldExceptions) {
		return nil, nil
	}
	objs, err := conf.FieldObjectList(fieldExceptions)
	if err != nil {
		return nil, err
	}
	out := make([]detect.Exception, len(objs))
	for i, o := range objs {
		if out[i].Rules, err = o.FieldStringList("rules"); err != nil {
			return nil, err
		}
		if out[i].When, err = o.FieldString("when"); err != nil {
			return nil, err
		}
		if out[i].Reason, err = o.FieldString("reason"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseLists(conf *service.ParsedConfig, defaults map[string][]string) (map[string][]string, error) {
	lists := maps.Clone(defaults)
	if lists == nil {
		lists = map[string][]string{}
	}
	if !conf.Contains(fieldLists) {
		return lists, nil
	}
	given, err := conf.FieldAnyMap(fieldLists)
	if err != nil {
		return nil, err
	}
	for name, v := range given {
		items, err := v.FieldStringList()
		if err != nil {
			return nil, fmt.Errorf("%s.%s must be a list of strings: %w", fieldLists, name, err)
		}
		lists[name] = items
	}
	return lists, nil
}

// ruleSources splits `rules` into the built-in pack and paths on disk;
// empty means the pack alone.
func ruleSources(paths []string, product Product) (detect.RuleSources, error) {
	var src detect.RuleSources
	useBuiltin := len(paths) == 0
	for _, p := range paths {
		if strings.TrimSpace(p) == builtinRules {
			useBuiltin = true
			continue
		}
		src.Paths = append(src.Paths, p)
	}
	if useBuiltin {
		if product.Pack == nil {
			return src, fmt.Errorf("%s: no rule pack is built in; list rule files or directories", fieldRules)
		}
		src.Builtin, src.BuiltinRoot = product.Pack, product.PackRoot
	}
	return src, nil
}
