package testkit

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Promtool returns the path of promtool (Debian package prometheus). On CI
// (CI set) a missing promtool fails the test, since .ci/run installs it;
// elsewhere the test is skipped, like the kcat tests.
func Promtool(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed: .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("promtool not installed (CI installs it: apt-get install prometheus)")
	}
	return path
}

var (
	grafanaVar    = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	stringLit     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchers      = regexp.MustCompile(`\{[^}]*\}`)
	ranges        = regexp.MustCompile(`\[[^\]]*\]`)
	grouping      = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	labelValues   = regexp.MustCompile(`\blabel_values\s*\(([^,)]*)(,[^)]*)?\)`)
	identifier    = regexp.MustCompile(`(^|[^A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)`)
	promqlKeyword = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true,
	}
)

// MetricNames returns the metric names a PromQL expression (or a Grafana
// query such as label_values(metric, label), with $variables) reads, sorted.
// Function and aggregation names, keywords, label names and values are not
// metric names; a histogram's name keeps its _bucket/_sum/_count suffix.
func MetricNames(expr string) []string {
	e := grafanaVar.ReplaceAllString(expr, "")
	e = stringLit.ReplaceAllString(e, `""`)
	e = matchers.ReplaceAllString(e, " ")
	e = ranges.ReplaceAllString(e, " ")
	e = labelValues.ReplaceAllString(e, " $1 ")
	e = grouping.ReplaceAllString(e, " ")
	seen := map[string]bool{}
	for _, m := range identifier.FindAllStringSubmatchIndex(e, -1) {
		name := e[m[4]:m[5]]
		rest := strings.TrimLeft(e[m[5]:], " \t\n")
		if promqlKeyword[name] || strings.HasPrefix(rest, "(") {
			continue
		}
		seen[name] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DeployQueries returns every PromQL expression shipped in deploy/: the
// alert rules' expr (deploy/prometheus/*.yaml but the *.test.yaml) and the
// Grafana dashboards' panel and variable queries (deploy/grafana/*.json),
// keyed by "file: where".
func DeployQueries(repoRoot string) (map[string]string, error) {
	out := map[string]string{}
	rules, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "prometheus", "*.yaml"))
	for _, f := range rules {
		if strings.HasSuffix(f, ".test.yaml") {
			continue
		}
		if err := ruleQueries(f, out); err != nil {
			return nil, err
		}
	}
	dashboards, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "grafana", "*.json"))
	for _, f := range dashboards {
		if err := dashboardQueries(f, out); err != nil {
			return nil, err
		}
	}
	if len(rules) == 0 || len(dashboards) == 0 {
		return nil, fmt.Errorf("no alert rules or dashboards under %s/deploy", repoRoot)
	}
	return out, nil
}

func ruleQueries(file string, out map[string]string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading alert rules: %w", err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parsing %s: %w", file, err)
	}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			out[filepath.Base(file)+": "+r.Alert+r.Record] = r.Expr
		}
	}
	return nil
}

func dashboardQueries(file string, out map[string]string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading dashboard: %w", err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parsing %s: %w", file, err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && (k == "expr" || (k == "query" && strings.Contains(s, "label_values"))) {
					out[fmt.Sprintf("%s: %s.%s", filepath.Base(file), path, k)] = s
				}
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", doc)
	return nil
}
