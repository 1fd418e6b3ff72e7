// Command kubectl-etcd is the kubectl plugin `kubectl etcd`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
)

func main() {
	// A closed terminal (SIGHUP) stops a command as Ctrl-C does, so that
	// an upgrade or a restart whose SSH session drops still puts back or
	// reports what it changed, instead of dying half-way; unless SIGHUP
	// is ignored (nohup), which Notify would undo.
	signals := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		signals = append(signals, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), signals...)
	defer stop()

	root := cmd.NewRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	args := os.Args[1:]
	// kubectl runs kubectl_complete-etcd to complete plugin arguments; the
	// helper may be a link to this binary.
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl_complete-etcd") {
		args = append([]string{"__complete"}, args...)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee *cmdutil.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Err == nil) {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
	}
	stop()
	os.Exit(cmdutil.ExitCode(err))
}
