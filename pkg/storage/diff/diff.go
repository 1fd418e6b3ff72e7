// Package diff compares two renderings of a stored object line by line,
// for `put` (what a write changes) and `history --diff` (what each revision
// changed).
package diff

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Lines is a line diff of a and b: unchanged lines start with two spaces,
// removed ones with "- ", added ones with "+ "; where lines are replaced,
// the removed ones come first. Every line ends with a newline.
//
// The matching is difflib's (Python's SequenceMatcher): it needs memory in
// proportion to the lines, not to their product, so a 10,000-line object
// costs a few megabytes, where a full longest-common-subsequence table
// took hundreds.
func Lines(a, b string) string {
	x, y := splitLines(a), splitLines(b)
	var sb strings.Builder
	write := func(mark string, lines []string) {
		for _, s := range lines {
			sb.WriteString(mark)
			sb.WriteString(s)
			if !strings.HasSuffix(s, "\n") {
				sb.WriteString("\n")
			}
		}
	}
	for _, op := range difflib.NewMatcher(x, y).GetOpCodes() {
		switch op.Tag {
		case 'e':
			write("  ", x[op.I1:op.I2])
		case 'd':
			write("- ", x[op.I1:op.I2])
		case 'i':
			write("+ ", y[op.J1:op.J2])
		case 'r':
			write("- ", x[op.I1:op.I2])
			write("+ ", y[op.J1:op.J2])
		}
	}
	return sb.String()
}

// splitLines cuts s after each newline; a last line without one is kept.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
