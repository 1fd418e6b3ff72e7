// Package cmdtest runs the real kubectl-etcd command tree in process for
// tests, as main does.
package cmdtest

import (
	"bytes"
	"context"
	"io"
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
