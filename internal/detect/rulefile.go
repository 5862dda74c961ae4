package detect

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Severity levels a rule may report, lowest first.
var severityLevels = []string{"INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// Defaults for header keys that the rule leaves out.
const (
	defaultDedupPeriod = time.Hour
	defaultStatus      = "stable"
)

// statusLevels are the maturity levels a rule may declare (Sigma's, reduced
// to the ones an operator acts on).
var statusLevels = []string{"stable", "test", "experimental"}

// mitreItem is one ATT&CK reference: a tactic (TA0001), a technique (T1078),
// a sub-technique (T1078.004), or a tactic:technique pair (TA0006:T1110).
var mitreItem = regexp.MustCompile(`^(TA[0-9]{4}|T[0-9]{4}(\.[0-9]{3})?|TA[0-9]{4}:T[0-9]{4}(\.[0-9]{3})?)$`)

const mitreShapes = "TA0001, T1078, T1078.004 or TA0006:T1110"

// Rule is one parsed (not yet compiled) rule file: the YAML header and the
// CEL condition, with enough position information to report errors as
// file:line:col of the original file.
type Rule struct {
	Path        string
	Source      string // the whole file; also the CEL source of the condition
	ID          string
	Title       exprText
	Severity    exprText
	Description string
	References  []string
	Mitre       []string
	Enabled     bool
	// Catalogue keys: they change no detection and travel with alerts and
	// `rules list`.
	Runbook        string   // what to check and what to do when it fires
	Tags           []string // free-form labels
	Author         []string // written as one string or a list
	License        string   // SPDX id of the rule's licence (DRL-1.1 for Sigma-derived rules)
	FalsePositives []string // known benign causes
	Status         string   // stable (default), test or experimental
	Dedup          *DedupSpec
	Threshold      *ThresholdSpec
	Previous       *PreviousSpec
	Sequence       *SequenceSpec
	FirstSeen      *FirstSeenSpec
	Absence        *AbsenceSpec
	Context        *exprText

	header headerLines
}

// DedupSpec groups tagged events into alerts: one alert_id per key from its
// opening event until Period after it.
type DedupSpec struct {
	Key    *exprText
	Period time.Duration
}

// ThresholdSpec tags an event once Count matching events of its group fall
// in one Window-long interval containing it; with Distinct, once Count
// distinct values of Distinct do.
type ThresholdSpec struct {
	Count    int
	Window   time.Duration
	GroupBy  *exprText
	Distinct *exprText
}

// PreviousSpec remembers, per Key, the latest (by event time) Value of the
// events for which When holds, for TTL.
type PreviousSpec struct {
	Key   *exprText
	When  *exprText
	Value *exprText
	TTL   time.Duration
}

// exprText is CEL (or template) text from the header together with where it
// starts in the file, so compile errors point into the file.
type exprText struct {
	Text string
	pos  headerPos
}

// headerPos locates a YAML scalar in the file.
type headerPos struct {
	line, col int // 1-based file line and column of the first character
	block     bool
}

// PosError is an error at a position in a rule file. Its message is
// "file:line:col: message".
type PosError struct {
	Path      string
	Line, Col int
	Msg       string
}

func (e *PosError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
}

// headerLines records how header comment lines map back to file lines.
type headerLines struct {
	first  int   // file line (1-based) of the first header line
	prefix []int // bytes stripped from each header line ("//" and one space)
	yaml   []string
}

// fileLine converts a 1-based line of the header YAML into file coordinates.
func (h headerLines) fileLine(yamlLine int) (line, prefix int) {
	i := yamlLine - 1
	if i < 0 || i >= len(h.prefix) {
		return h.first, 0
	}
	return h.first + i, h.prefix[i]
}

// splitHeader returns the leading block of "//" comment lines (after blank
// lines) as YAML. The rest of the file is the condition.
func splitHeader(src string) (headerLines, bool) {
	h := headerLines{}
	lines := strings.Split(src, "\n")
	start := 0
	for start < len(lines) && strings.TrimSpace(lines[start]) == "" {
		start++
	}
	h.first = start + 1
	hasBody := false
	for i := start; i < len(lines); i++ {
		trimmed := strings.TrimRight(lines[i], "\r")
		if !strings.HasPrefix(trimmed, "//") {
			for _, rest := range lines[i:] {
				if strings.TrimSpace(rest) != "" {
					hasBody = true
				}
			}
			break
		}
		stripped := trimmed[2:]
		n := 2
		if strings.HasPrefix(stripped, " ") {
			stripped = stripped[1:]
			n++
		}
		h.prefix = append(h.prefix, n)
		h.yaml = append(h.yaml, stripped)
	}
	return h, hasBody
}

// rawHeader mirrors the YAML header. Expression-valued keys are yaml.Nodes
// so that their positions survive decoding.
type rawHeader struct {
	ID          string    `yaml:"id"`
	Title       yaml.Node `yaml:"title"`
	Severity    yaml.Node `yaml:"severity"`
	Description string    `yaml:"description"`
	References  []string  `yaml:"references"`
	Mitre       yaml.Node `yaml:"mitre"`
	Enabled     *bool     `yaml:"enabled"`
	Runbook     string    `yaml:"runbook"`
	Tags        []string  `yaml:"tags"`
	Author      yaml.Node `yaml:"author"`
	License     string    `yaml:"license"`
	FalsePos    []string  `yaml:"falsepositives"`
	Status      string    `yaml:"status"`
	Context     yaml.Node `yaml:"context"`
	Dedup       *struct {
		Key    yaml.Node `yaml:"key"`
		Period string    `yaml:"period"`
	} `yaml:"dedup"`
	Threshold *struct {
		Count    int       `yaml:"count"`
		Window   string    `yaml:"window"`
		GroupBy  yaml.Node `yaml:"group_by"`
		Distinct yaml.Node `yaml:"distinct"`
	} `yaml:"threshold"`
	Previous *struct {
		Key   yaml.Node `yaml:"key"`
		When  yaml.Node `yaml:"when"`
		Value yaml.Node `yaml:"value"`
		TTL   string    `yaml:"ttl"`
	} `yaml:"previous"`
	Sequence  *rawSequence  `yaml:"sequence"`
	FirstSeen *rawFirstSeen `yaml:"first_seen"`
	Absence   *rawAbsence   `yaml:"absence"`
}

// ParseRule parses a rule file's header and checks it. The condition is
// compiled later (see Compile), but every header problem is reported here,
// each as a *PosError.
func ParseRule(path string, src []byte) (*Rule, error) {
	r := &Rule{Path: path, Source: string(src), Enabled: true}
	h, hasBody := splitHeader(r.Source)
	r.header = h
	if len(h.yaml) == 0 {
		return nil, r.errAt(1, 1, "missing header: a rule starts with // comment lines holding YAML (id, title, severity, …)")
	}
	if !hasBody {
		return nil, r.errAt(h.first+len(h.yaml), 1, "missing condition: the CEL expression follows the header")
	}
	var raw rawHeader
	dec := yaml.NewDecoder(bytes.NewReader([]byte(strings.Join(h.yaml, "\n"))))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, r.yamlError(err)
	}
	var errs []error
	addErr := func(line, col int, format string, args ...any) {
		errs = append(errs, r.errAt(line, col, fmt.Sprintf(format, args...)))
	}
	r.fill(&raw, addErr)
	if len(errs) > 0 {
		return r, errors.Join(errs...)
	}
	return r, nil
}

func (r *Rule) fill(raw *rawHeader, addErr func(line, col int, format string, args ...any)) {
	r.ID = strings.TrimSpace(raw.ID)
	if r.ID == "" {
		addErr(r.header.first, 1, "header: id is required")
	} else if strings.HasPrefix(r.ID, "@") {
		addErr(r.header.first, 1, "header: id %q: ids starting with @ are reserved (%s names the repartition topic's watermark records); rename the rule", r.ID, WatermarkRule)
	}
	r.Description, r.References = raw.Description, raw.References
	if raw.Enabled != nil {
		r.Enabled = *raw.Enabled
	}
	r.fillCatalogue(raw, addErr)
	r.Title = exprText{Text: r.ID}
	if t := r.scalar(&raw.Title, "title", addErr); t != nil {
		r.Title = *t
	}
	r.Severity = exprText{Text: "MEDIUM"}
	if s := r.scalar(&raw.Severity, "severity", addErr); s != nil {
		r.Severity = *s
		if !strings.Contains(s.Text, "{{") && !validSeverity(s.Text) {
			addErr(s.pos.line, s.pos.col, "header: severity %q is not one of %s", s.Text, strings.Join(severityLevels, "|"))
		}
	}
	r.Context = r.scalar(&raw.Context, "context", addErr)
	r.Dedup = &DedupSpec{Period: defaultDedupPeriod}
	if d := raw.Dedup; d != nil {
		r.Dedup.Key = r.scalar(&d.Key, "dedup.key", addErr)
		r.Dedup.Period = r.duration(d.Period, "dedup.period", defaultDedupPeriod, addErr)
	}
	if t := raw.Threshold; t != nil {
		r.Threshold = &ThresholdSpec{Count: t.Count, GroupBy: r.scalar(&t.GroupBy, "threshold.group_by", addErr),
			Distinct: r.scalar(&t.Distinct, "threshold.distinct", addErr)}
		r.Threshold.Window = r.duration(t.Window, "threshold.window", 0, addErr)
		if t.Count < 1 {
			addErr(r.header.first, 1, "header: threshold.count must be at least 1")
		}
	}
	if p := raw.Previous; p != nil {
		r.Previous = &PreviousSpec{
			Key:   r.scalar(&p.Key, "previous.key", addErr),
			When:  r.scalar(&p.When, "previous.when", addErr),
			Value: r.scalar(&p.Value, "previous.value", addErr),
			TTL:   r.duration(p.TTL, "previous.ttl", 0, addErr),
		}
		if r.Previous.Key == nil {
			addErr(r.header.first, 1, "header: previous.key is required")
		}
	}
	r.fillCorrelation(raw, addErr)
}

// fillCatalogue takes the keys that describe a rule rather than change what
// it detects, validating mitre items and status.
func (r *Rule) fillCatalogue(raw *rawHeader, addErr func(line, col int, format string, args ...any)) {
	r.Runbook, r.Tags, r.License, r.FalsePositives = raw.Runbook, raw.Tags, strings.TrimSpace(raw.License), raw.FalsePos
	r.Mitre = r.stringList(&raw.Mitre, "mitre", addErr)
	for i, item := range r.Mitre {
		if !mitreItem.MatchString(item) {
			line, prefix := r.header.fileLine(raw.Mitre.Content[i].Line)
			addErr(line, prefix+raw.Mitre.Content[i].Column, "header: mitre item %q is not an ATT&CK id (one of %s)", item, mitreShapes)
		}
	}
	r.Author = r.stringList(&raw.Author, "author", addErr)
	r.Status = defaultStatus
	if s := strings.TrimSpace(raw.Status); s != "" {
		r.Status = s
		if !oneOf(s, statusLevels) {
			addErr(r.lineOfKey("status"), 1, "header: status %q is not one of %s", s, strings.Join(statusLevels, "|"))
		}
	}
}

// stringList reads a key written as one string or a list of strings.
func (r *Rule) stringList(n *yaml.Node, key string, addErr func(int, int, string, ...any)) []string {
	if n == nil || n.Kind == 0 {
		return nil
	}
	line, prefix := r.header.fileLine(n.Line)
	switch n.Kind {
	case yaml.ScalarNode:
		if key == "mitre" {
			addErr(line, prefix+n.Column, "header: mitre must be a list of ATT&CK ids (%s)", mitreShapes)
			return nil
		}
		return []string{n.Value}
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				cl, cp := r.header.fileLine(c.Line)
				addErr(cl, cp+c.Column, "header: %s items must be strings", key)
				return nil
			}
			out = append(out, c.Value)
		}
		return out
	}
	addErr(line, prefix+n.Column, "header: %s must be a string or a list of strings", key)
	return nil
}

// scalar turns a YAML scalar node into exprText positioned in the file.
func (r *Rule) scalar(n *yaml.Node, key string, addErr func(int, int, string, ...any)) *exprText {
	if n == nil || n.Kind == 0 {
		return nil
	}
	line, prefix := r.header.fileLine(n.Line)
	if n.Kind != yaml.ScalarNode {
		addErr(line, prefix+n.Column, "header: %s must be a string", key)
		return nil
	}
	pos := headerPos{line: line, col: prefix + n.Column}
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		pos.col++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		pos.block = true
	}
	return &exprText{Text: n.Value, pos: pos}
}

// duration parses a Go duration; empty means def, and a zero def means the
// key is required.
func (r *Rule) duration(s, key string, def time.Duration, addErr func(int, int, string, ...any)) time.Duration {
	if s == "" {
		if def == 0 {
			addErr(r.lineOfKey(key), 1, "header: %s is required", key)
		}
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		addErr(r.lineOfKey(key), 1, "header: %s: %q is not a positive duration like 15m or 168h", key, s)
		return def
	}
	return d
}

// lineOfKey finds the file line of the last path element of a dotted key,
// for messages about plain values that lost their node.
func (r *Rule) lineOfKey(key string) int {
	leaf := key[strings.LastIndex(key, ".")+1:] + ":"
	for i, l := range r.header.yaml {
		if strings.HasPrefix(strings.TrimSpace(l), leaf) || strings.Contains(l, " "+leaf) || strings.Contains(l, "{"+leaf) {
			return r.header.first + i
		}
	}
	return r.header.first
}

// yamlError maps yaml.v3's "line N: msg" errors into the file.
func (r *Rule) yamlError(err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		var n int
		if _, scanErr := fmt.Sscanf(m, "line %d:", &n); scanErr == nil {
			line, _ := r.header.fileLine(n)
			rest := m[strings.Index(m, ":")+1:]
			if f, ok := strings.CutPrefix(strings.TrimSpace(rest), "field "); ok {
				if name, found := strings.CutSuffix(f, " not found in type detect.rawHeader"); found {
					rest = "unknown key " + name
				}
			}
			errs = append(errs, r.errAt(line, 1, "header: "+strings.TrimSpace(rest)))
			continue
		}
		errs = append(errs, r.errAt(r.header.first, 1, "header: "+m))
	}
	return errors.Join(errs...)
}

func (r *Rule) errAt(line, col int, msg string) *PosError {
	return &PosError{Path: r.Path, Line: line, Col: col, Msg: msg}
}

// filePos maps a position inside header expression text (1-based line,
// 0-based column, as CEL reports them) to the file.
func (r *Rule) filePos(e exprText, exprLine, exprCol int) (int, int) {
	if !e.pos.block && exprLine <= 1 {
		return e.pos.line, e.pos.col + exprCol
	}
	yamlLine := e.pos.line - r.header.first + 1 + exprLine - 1
	if e.pos.block {
		yamlLine++
	}
	line, prefix := r.header.fileLine(yamlLine)
	indent := 0
	if i := yamlLine - 1; i >= 0 && i < len(r.header.yaml) {
		l := r.header.yaml[i]
		indent = len(l) - len(strings.TrimLeft(l, " "))
	}
	return line, prefix + indent + exprCol + 1
}

func validSeverity(s string) bool { return oneOf(s, severityLevels) }

func oneOf(s string, set []string) bool {
	for _, l := range set {
		if s == l {
			return true
		}
	}
	return false
}
