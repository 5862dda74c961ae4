// Package editdist measures how far apart two strings are, for "did you
// mean" suggestions and similarity scores.
package editdist

// Levenshtein is the number of single-rune insertions, deletions and
// substitutions that turn a into b.
//
// It is computed bit-parallel (Myers' algorithm in Hyyrö's block form for
// edit distance): the column of the dynamic-programming table over the
// shorter string is kept as bit vectors of +1/-1 steps, 64 rows to a word,
// and each rune of the longer string advances the whole column in a few
// word operations per block. That is O(len(long)·⌈len(short)/64⌉) time,
// about 64 times fewer steps than the cell-by-cell table (two 120-rune user
// agents: 2 blocks per rune instead of 120 cells). Callers still bound
// their inputs.
func Levenshtein(a, b []rune) int {
	if len(a) > len(b) {
		a, b = b, a // the pattern (the bit vectors) is the shorter one
	}
	if len(a) == 0 {
		return len(b)
	}
	p := newPattern(a)
	blocks := len(p.pv)
	last := uint64(1) << ((len(a) - 1) % 64) // row len(a)'s bit in the last block
	score := len(a)                          // D[len(a)][0]
	for _, r := range b {
		eq := p.eq(r)
		hin := 1 // the top row, D[0][j] = j, steps by +1
		for k := range blocks {
			high := uint64(1) << 63
			if k == blocks-1 {
				high = last
			}
			hin = p.advance(k, eq[k], hin, high)
		}
		score += hin
	}
	return score
}

// pattern is the shorter string's state: per block, the vertical +1 and -1
// steps of the current column, and the match masks of its runes.
type pattern struct {
	pv, mv []uint64
	// peq holds one mask per block for each distinct rune of the pattern,
	// after a first row of zeros (for runes the pattern lacks).
	peq   []uint64
	ascii [128]int32 // rune -> index into peq's rows (0: absent)
	other map[rune]int32
}

func newPattern(a []rune) *pattern {
	blocks := (len(a) + 63) / 64
	vectors := make([]uint64, 2*blocks)
	p := &pattern{pv: vectors[:blocks], mv: vectors[blocks:]}
	for k := range p.pv {
		p.pv[k] = ^uint64(0) // D[i][0] = i: every vertical step is +1
	}
	// Row 0 (no match), then one row per distinct rune: at most len(a).
	p.peq = make([]uint64, blocks, (1+min(len(a), 96))*blocks)
	for i, r := range a {
		row := p.row(r)
		if row == 0 {
			row = int32(len(p.peq) / blocks)
			p.peq = append(p.peq, make([]uint64, blocks)...)
			p.setRow(r, row)
		}
		p.peq[int(row)*blocks+i/64] |= 1 << (i % 64)
	}
	return p
}

func (p *pattern) row(r rune) int32 {
	if r >= 0 && r < 128 {
		return p.ascii[r]
	}
	return p.other[r]
}

func (p *pattern) setRow(r rune, row int32) {
	if r >= 0 && r < 128 {
		p.ascii[r] = row
		return
	}
	if p.other == nil {
		p.other = map[rune]int32{}
	}
	p.other[r] = row
}

// eq is the match masks of r, one word per block.
func (p *pattern) eq(r rune) []uint64 {
	blocks := len(p.pv)
	row := int(p.row(r))
	return p.peq[row*blocks : (row+1)*blocks]
}

// advance moves block k of the column by one rune whose match mask in the
// block is eq, given the horizontal step entering the block from above
// (hin: -1, 0 or +1), and returns the step leaving it at the row whose bit
// is high.
func (p *pattern) advance(k int, eq uint64, hin int, high uint64) int {
	pv, mv := p.pv[k], p.mv[k]
	xv := eq | mv
	if hin < 0 {
		eq |= 1
	}
	xh := (((eq & pv) + pv) ^ pv) | eq
	ph := mv | ^(xh | pv)
	mh := pv & xh
	hout := 0
	if ph&high != 0 {
		hout = 1
	} else if mh&high != 0 {
		hout = -1
	}
	ph <<= 1
	mh <<= 1
	switch {
	case hin < 0:
		mh |= 1
	case hin > 0:
		ph |= 1
	}
	p.pv[k] = mh | ^(xv | ph)
	p.mv[k] = ph & xv
	return hout
}
