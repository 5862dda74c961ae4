// Package editdist measures how far apart two strings are, for "did you
// mean" suggestions and similarity scores.
package editdist

// Levenshtein is the number of single-rune insertions, deletions and
// substitutions that turn a into b. It takes O(len(a)·len(b)) time and
// O(len(b)) memory; callers bound their inputs.
func Levenshtein(a, b []rune) int {
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
