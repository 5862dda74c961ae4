package oktaschema

import (
	"strings"

	"github.com/oktadetect/oktadetect/internal/editdist"
)

// nearest returns the candidate closest to s: equal but for case first,
// then the smallest edit distance within closeEnough. "" when none is.
func nearest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if strings.EqualFold(c, s) {
			return c
		}
		d := distance(s, c)
		if d <= closeEnough(s) && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// closeEnough is how many edits still count as a misspelling: two, or a
// fifth of the word for long ones, and never half of a short one.
func closeEnough(s string) int { return min(max(2, len(s)/5), max(1, len(s)/2)) }

// distance is the edit distance of two names.
func distance(a, b string) int { return editdist.Levenshtein([]rune(a), []rune(b)) }
