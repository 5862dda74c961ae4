package oktaschema

import "strings"

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

// distance is the Levenshtein distance of a and b in bytes (names here are
// ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
