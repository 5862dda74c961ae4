package editdist

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"kitten", "sitting", 3}, {"eventTyp", "eventType", 1},
		{"abc", "", 3}, {"", "abc", 3}, {"café", "cafe", 1}, {"flaw", "lawn", 2},
	} {
		if got := Levenshtein([]rune(c.a), []rune(c.b)); got != c.want {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// levenshteinTable is the textbook cell-by-cell table, the reference the
// bit-parallel Levenshtein must agree with.
func levenshteinTable(a, b []rune) int {
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

// TestLevenshteinMatchesTable compares with the table on random strings
// around the block edges (63, 64, 65, 128 runes…), over small alphabets (so
// that matches are many) and with runes beyond ASCII.
func TestLevenshteinMatchesTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := [][]rune{[]rune("ab"), []rune("abcd"), []rune("aé€𝄞x"), []rune("Mozilla/5.0 (Windows NT; x64) Chrome/120")}
	lengths := []int{0, 1, 2, 5, 31, 63, 64, 65, 100, 127, 128, 129, 200, 300}
	for _, alpha := range alphabets {
		for _, la := range lengths {
			for _, lb := range lengths {
				a, b := randomRunes(rng, alpha, la), randomRunes(rng, alpha, lb)
				if got, want := Levenshtein(a, b), levenshteinTable(a, b); got != want {
					t.Fatalf("Levenshtein(%q, %q) = %d, the table gives %d", string(a), string(b), got, want)
				}
			}
		}
	}
	// Near-equal strings: a few edits of a long string.
	for range 2000 {
		a := randomRunes(rng, alphabets[3], 1+rng.IntN(260))
		b := slices.Clone(a)
		for range rng.IntN(8) {
			i := rng.IntN(len(b) + 1)
			switch rng.IntN(3) {
			case 0:
				b = slices.Insert(b, i, alphabets[2][rng.IntN(len(alphabets[2]))])
			case 1:
				if i < len(b) {
					b = slices.Delete(b, i, i+1)
				}
			default:
				if i < len(b) {
					b[i] = alphabets[3][rng.IntN(len(alphabets[3]))]
				}
			}
		}
		if got, want := Levenshtein(a, b), levenshteinTable(a, b); got != want {
			t.Fatalf("Levenshtein(%q, %q) = %d, the table gives %d", string(a), string(b), got, want)
		}
	}
}

func randomRunes(rng *rand.Rand, alpha []rune, n int) []rune {
	out := make([]rune, n)
	for i := range out {
		out[i] = alpha[rng.IntN(len(alpha))]
	}
	return out
}

func FuzzLevenshtein(f *testing.F) {
	f.Add("kitten", "sitting")
	f.Add("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15")
	f.Fuzz(func(t *testing.T, a, b string) {
		ra, rb := []rune(a), []rune(b)
		if len(ra) > 400 || len(rb) > 400 {
			return
		}
		if got, want := Levenshtein(ra, rb), levenshteinTable(ra, rb); got != want {
			t.Fatalf("Levenshtein(%q, %q) = %d, the table gives %d", a, b, got, want)
		}
	})
}

func BenchmarkLevenshteinUserAgents(b *testing.B) {
	ua1 := []rune("Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0")
	ua2 := []rune("Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1")
	b.Run("bit-parallel", func(b *testing.B) {
		for b.Loop() {
			Levenshtein(ua1, ua2)
		}
	})
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			levenshteinTable(ua1, ua2)
		}
	})
}
