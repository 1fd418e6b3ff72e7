// Package golden compares what a test printed with a file under the test
// package's testdata/, and rewrites those files when the tests run with
// -update, as helm's tests do: output that users read or scripts parse
// then changes only with a reviewed diff.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the tests print")

// Assert compares got with the file testdata/name (relative to the test's
// package), or rewrites that file when the test runs with -update, as
// helm's tests do. Review the diff of a rewrite like any change.
func Assert(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if got != string(want) {
		diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(want)), B: difflib.SplitLines(got),
			FromFile: path, ToFile: "got", Context: 2,
		})
		t.Errorf("output differs from %s (run with -update to rewrite it, then review the diff):\n%s", path, diff)
	}
}

// AssertTable renders headers and rows as the commands print tables and
// compares the result with testdata/name.
func AssertTable(t testing.TB, name string, headers []string, rows [][]string) {
	t.Helper()
	var buf bytes.Buffer
	if err := output.WriteTable(&buf, headers, rows, false); err != nil {
		t.Fatal(err)
	}
	Assert(t, name, buf.String())
}
