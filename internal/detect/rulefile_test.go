package detect

import (
	"strings"
	"testing"
)

func lintSrc(src string) []string {
	_, err := compileFiles([]ruleFile{{path: "r.cel", data: []byte(src)}}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	var out []string
	for _, e := range unjoin(err) {
		out = append(out, e.Error())
	}
	return out
}

func TestErrorPositionsAreFilePositions(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"condition", "// id: X\n\nevent.a ==\n", "r.cel:4:1: Syntax error"},
		{"condition column", "// id: X\nevent.a && nope\n", "r.cel:2:12: undeclared reference to 'nope'"},
		{"title template", "// id: X\n// title: \"hi {{ event.a + }}\"\ntrue\n", "r.cel:2:"},
		{"dedup key", "// id: X\n// dedup:\n//   key: nope\ntrue\n", "r.cel:3:11: undeclared reference to 'nope'"},
		{"unknown key", "// id: X\n// bogus: 1\ntrue\n", "r.cel:2:1: header: unknown key bogus"},
		{"bad duration", "// id: X\n// dedup:\n//   period: 5x\ntrue\n", "r.cel:3:1: header: dedup.period"},
		{"bad severity", "// id: X\n// severity: URGENT\ntrue\n", "r.cel:2:14: header: severity"},
		{"previous undeclared", "// id: X\nprevious == null\n", "r.cel:2:1: undeclared reference to 'previous'"},
		{"not bool", "// id: X\n'text'\n", "condition must be a bool"},
		{"no id", "// title: x\ntrue\n", "id is required"},
		{"no header", "true\n", "missing header"},
		{"no condition", "// id: X\n", "missing condition"},
		{"bad mitre item", "// id: X\n// mitre:\n//   - TA0001\n//   - T1078.4\ntrue\n", `r.cel:4:8: header: mitre item "T1078.4" is not an ATT&CK id (one of TA0001, T1078, T1078.004 or TA0006:T1110)`},
		{"mitre pair reversed", "// id: X\n// mitre: [\"T1110:TA0006\"]\ntrue\n", `r.cel:2:`},
		{"mitre not a list", "// id: X\n// mitre: TA0001\ntrue\n", "r.cel:2:11: header: mitre must be a list"},
		{"bad status", "// id: X\n// status: beta\ntrue\n", `r.cel:2:1: header: status "beta" is not one of stable|test|experimental`},
		{"author not text", "// id: X\n// author: {a: b}\ntrue\n", "r.cel:2:12: header: author must be a string or a list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := lintSrc(c.src)
			if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestDuplicateIDs(t *testing.T) {
	_, err := compileFiles([]ruleFile{
		{path: "a.cel", data: []byte("// id: X\ntrue\n")},
		{path: "b.cel", data: []byte("// id: X\ntrue\n")},
	}, CompileOptions{Libraries: oktaLibs, Tuning: packTuning})
	if err == nil || !strings.Contains(err.Error(), `duplicate rule id "X"`) {
		t.Fatal(err)
	}
}

func TestHeaderKeys(t *testing.T) {
	r, err := ParseRule("r.cel", []byte(`// id: R
// title: Static title
// severity: LOW
// description: d
// references: [https://example.com]
// mitre: ["TA0001:T1078"]
// enabled: false
// threshold: {count: 2, window: 5m, group_by: event.u}
// previous: {key: event.u, ttl: 1h}
// dedup: {key: event.u, period: 2h}
// context: "{'a': 1}"
true
`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "R" || r.Title.Text != "Static title" || r.Severity.Text != "LOW" || r.Enabled ||
		r.Threshold.Count != 2 || r.Previous.TTL.Hours() != 1 || r.Dedup.Period.Hours() != 2 || r.Context == nil {
		t.Fatalf("%+v", r)
	}
}

func TestCatalogueKeys(t *testing.T) {
	r, err := ParseRule("r.cel", []byte(`// id: R
// mitre: [TA0006, T1110, T1110.003, "TA0006:T1110.003"]
// runbook: check the account
// tags: [okta, identity]
// author: Jane Doe, John Roe
// license: DRL-1.1
// falsepositives: [help desk]
// status: experimental
true
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Mitre) != 4 || r.Runbook != "check the account" || len(r.Tags) != 2 ||
		len(r.Author) != 1 || r.Author[0] != "Jane Doe, John Roe" || r.License != "DRL-1.1" ||
		len(r.FalsePositives) != 1 || r.Status != "experimental" {
		t.Fatalf("%+v", r)
	}
	r, err = ParseRule("r.cel", []byte("// id: R\n// author: [Jane Doe, John Roe]\ntrue\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Author) != 2 || r.Status != "stable" || r.Mitre != nil {
		t.Fatalf("%+v", r)
	}
}

func TestDisabledRuleNotRun(t *testing.T) {
	rs := compileRules(t, "// id: X\n// enabled: false\ntrue\n")
	if len(rs.IDs()) != 0 {
		t.Fatal("disabled rule active")
	}
}

func TestCustomFunctions(t *testing.T) {
	e, rec := newTestEngine(t,
		`// id: Geo
math.abs(geo.distance_km(0, 0, 0, 1) - 111.19) < 0.01`,
		`// id: JSON
json.decode(event.s).risk.level == 'HIGH'`,
		`// id: Sim
strings.similarity('kitten', 'sitting') > 0.57 && strings.similarity('', '') == 1.0`,
		`// id: Net
cidr('10.0.0.0/8').containsIP(ip(event.ip))`,
		`// id: Opt
event.?a.?b.orValue('none') == 'none'`,
	)
	res := process(t, e, ev(0, map[string]any{"s": `{"risk":{"level":"HIGH"}}`, "ip": "10.1.2.3"}))
	if len(res.Detections) != 5 {
		t.Fatalf("got %+v, errors %v", res.Detections, rec.errors)
	}
}
