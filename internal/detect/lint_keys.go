package detect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/common/ast"
)

// Scaled out (cel_route, routes.go), a rule that remembers is routed by
// previous.key: every event it could match or remember on goes to the
// worker holding that key, and the rule's other state (alert openings under
// its dedup key, threshold groups, sequences, first sightings, absences)
// lives there too. That state is exact only if events sharing one of its
// keys share previous.key as well; otherwise one dedup key, say, is opened
// on two workers and alerts twice. No linter can prove this in general. It
// checks the form that holds it in practice: the other key reads every
// event field previous.key reads (the same expression, or a finer tuple).

// stateKeyWarnings returns a warning for each state key of a rule with
// previous that does not read every event field previous.key reads.
func (c *compiler) stateKeyWarnings() []error {
	r := c.rule
	if r.Previous == nil || r.Previous.Key == nil {
		return nil
	}
	need := c.eventFields(r.Previous.Key.Text)
	if len(need) == 0 {
		return nil // every event has the same previous.key: one worker
	}
	var warns []error
	// check warns unless texts read every field in need; key names the
	// key in the message, field the header field to change.
	check := func(key, field string, e exprText, texts ...string) {
		have := map[string]bool{}
		for _, t := range texts {
			for _, f := range c.eventFields(t) {
				have[f] = true
			}
		}
		var missing []string
		for _, f := range need {
			if !have[f] {
				missing = append(missing, "event."+f)
			}
		}
		if len(missing) == 0 {
			return
		}
		line, col := r.filePos(e, 1, 0)
		warns = append(warns, r.errAt(line, col, fmt.Sprintf(
			"warning: %s does not read %s, which previous.key reads: scaled out (cel_route), events are routed by previous.key, so events sharing its value can reach different workers, and each alerts; set %s to the expression of previous.key, or add those fields to it",
			key, strings.Join(missing, ", "), field)))
	}
	c.checkDedupKey(check)
	for _, k := range stateKeys(r) {
		if k.e == nil { // no key: one group for every event
			check(k.name+" (unset: one group for every event)", k.name, *r.Previous.Key)
		} else {
			check(k.name, k.name, *k.e, k.e.Text)
		}
	}
	return warns
}

// stateKey is a key of a rule's state, by its header name; nil when unset.
type stateKey struct {
	name string
	e    *exprText
}

// stateKeys are the keys of the rule's state other than previous.key and
// the dedup key.
func stateKeys(r *Rule) []stateKey {
	var keys []stateKey
	if r.Threshold != nil {
		keys = append(keys, stateKey{"threshold.group_by", r.Threshold.GroupBy})
	}
	if r.Sequence != nil {
		keys = append(keys, stateKey{"sequence.by", r.Sequence.By})
	}
	if r.FirstSeen != nil {
		keys = append(keys, stateKey{"first_seen.key", r.FirstSeen.Key})
	}
	if r.Absence != nil {
		keys = append(keys, stateKey{"absence.by", r.Absence.By})
	}
	return keys
}

// checkDedupKey checks dedup.key, or the title, which is the dedup key when
// none is given.
func (c *compiler) checkDedupKey(check func(key, field string, e exprText, texts ...string)) {
	r := c.rule
	if r.Dedup != nil && r.Dedup.Key != nil {
		check("dedup.key", "dedup.key", *r.Dedup.Key, r.Dedup.Key.Text)
		return
	}
	var exprs []string
	scanTemplate(r.Title.Text, func(string) {}, func(text string, _ int) { exprs = append(exprs, text) })
	check("the dedup key (the title, dedup.key being unset)", "dedup.key", r.Title, exprs...)
}

// eventFields lists the `event.…` paths text reads, dotted and sorted (a
// text that does not parse reads none: compiling it reports the error).
func (c *compiler) eventFields(text string) []string {
	parsed, iss := c.env.Parse(text)
	if iss.Err() != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, e := range ast.MatchDescendants(ast.NavigateAST(parsed.NativeRep()), ast.AllMatcher()) {
		if path, ok := eventPath(e); ok && !isPathPrefix(e) {
			seen[strings.Join(path, ".")] = true
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}
