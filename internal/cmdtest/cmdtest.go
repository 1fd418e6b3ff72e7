// Package cmdtest runs the real kubectl-etcd command tree in process for
// tests, as main does, and compares output with golden files.
package cmdtest

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
)

// Run executes `kubectl etcd args...` with empty standard input and
// returns what it printed and the exit code main would use.
func Run(t testing.TB, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	return RunContext(t, context.Background(), args...)
}

// RunContext is Run with a context, which main cancels on Ctrl-C.
func RunContext(t testing.TB, ctx context.Context, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	return execute(ctx, strings.NewReader(""), args)
}

// RunIn is Run with stdin as standard input.
func RunIn(t testing.TB, stdin []byte, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	return execute(context.Background(), bytes.NewReader(stdin), args)
}

// MustRun is Run for a command that must succeed: it fails the test
// otherwise, with the command's error output.
func MustRun(t testing.TB, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, _, err := Run(t, args...)
	if err != nil {
		t.Fatalf("kubectl etcd %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

func execute(ctx context.Context, stdin io.Reader, args []string) (string, string, int, error) {
	var out, errOut bytes.Buffer
	root := cmd.NewRootCommand(genericiooptions.IOStreams{In: stdin, Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), cmdutil.ExitCode(err), err
}

// Root returns the real command tree, writing into buffers, for tests
// that walk it.
func Root() *cobra.Command {
	var out, errOut bytes.Buffer
	return cmd.NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the tests print")

// Golden compares got with the file testdata/name (relative to the test's
// package), or rewrites that file when the test runs with -update, as
// helm's tests do. Review the diff of a rewrite like any change.
func Golden(t testing.TB, name, got string) {
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
		t.Errorf("output differs from %s (run with -update to rewrite it, then review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
