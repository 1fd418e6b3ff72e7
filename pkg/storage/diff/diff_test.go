package diff

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	for _, tt := range []struct{ a, b, want string }{
		{"a\nb\nc\n", "a\nc\nd\n", "  a\n- b\n  c\n+ d\n"},
		{"a\nb\n", "a\nc\n", "  a\n- b\n+ c\n"},
		{"", "a\nb", "+ a\n+ b\n"},
		{"a\nb\n", "", "- a\n- b\n"},
		{"same\n", "same\n", "  same\n"},
		{"", "", ""},
	} {
		if got := Lines(tt.a, tt.b); got != tt.want {
			t.Errorf("Lines(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

// bigObject is a YAML-like object of n lines, with the repeated lines
// (protocol: TCP, ...) a real one has.
func bigObject(n int) []string {
	lines := make([]string, 0, n)
	for i := 0; len(lines) < n; i++ {
		lines = append(lines, fmt.Sprintf("  - name: port-%d\n", i), fmt.Sprintf("    containerPort: %d\n", 1000+i), "    protocol: TCP\n", "    hostIP: \"\"\n")
	}
	return lines[:n]
}

// applyDiff rebuilds both sides from a diff: the unchanged and removed
// lines are the old text, the unchanged and added ones the new.
func applyDiff(t *testing.T, d string) (old, new string) {
	t.Helper()
	var o, n strings.Builder
	for _, l := range strings.SplitAfter(d, "\n") {
		if l == "" {
			continue
		}
		mark, text := l[:2], l[2:]
		switch mark {
		case "  ":
			o.WriteString(text)
			n.WriteString(text)
		case "- ":
			o.WriteString(text)
		case "+ ":
			n.WriteString(text)
		default:
			t.Fatalf("line without a mark: %q", l)
		}
	}
	return o.String(), n.String()
}

// TestLinesOfABigObjectStaySmall diffs two revisions of a 10,000-line
// object with two lines changed, one removed and one added: the diff names
// exactly those, rebuilds both sides, and takes a few megabytes (the full
// comparison table took about 800 MB).
func TestLinesOfABigObjectStaySmall(t *testing.T) {
	lines := bigObject(10000)
	a := strings.Join(lines, "")
	changed := append([]string(nil), lines...)
	changed[10] = "  - name: renamed\n"
	changed[5001] = "    containerPort: 99\n"
	changed = append(changed[:7000], changed[7001:]...)
	changed = append(changed[:9000], append([]string{"    added: true\n"}, changed[9000:]...)...)
	b := strings.Join(changed, "")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := Lines(a, b)
	runtime.ReadMemStats(&after)

	var removed, added []string
	for _, l := range strings.SplitAfter(d, "\n") {
		switch {
		case strings.HasPrefix(l, "- "):
			removed = append(removed, l)
		case strings.HasPrefix(l, "+ "):
			added = append(added, l)
		}
	}
	wantRemoved := []string{"- " + lines[10], "- " + lines[5001], "- " + lines[7000]}
	wantAdded := []string{"+   - name: renamed\n", "+     containerPort: 99\n", "+     added: true\n"}
	if strings.Join(removed, "") != strings.Join(wantRemoved, "") || strings.Join(added, "") != strings.Join(wantAdded, "") {
		t.Errorf("removed %q, added %q; want %q and %q", removed, added, wantRemoved, wantAdded)
	}
	if old, new := applyDiff(t, d); old != a || new != b {
		t.Error("the diff does not rebuild both sides")
	}
	// The output alone is ~300 kB; the matcher's maps a few MB.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("diffing 10,000 lines allocated %d kB", allocated>>10)
	if allocated > 32<<20 {
		t.Errorf("diffing 10,000 lines allocated %d MB, want under 32 MB", allocated>>20)
	}
}
