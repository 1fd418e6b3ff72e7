// Package util holds what every kubectl-etcd command shares: the streams
// and the connection flags (Factory), the command shape (Options, RunE:
// Complete, Validate, Run, with Validate's errors as usage errors), the
// print flags (-o with jsonpath= and go-template=, --no-headers), the
// storage flags, confirmation, this node for the commands that change its
// etcd (LocalNode), and the errors that carry exit codes.
package util

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// Exit codes beyond 1 (any error).
const (
	// ExitUnhealthy: the command ran but the cluster is not healthy.
	ExitUnhealthy = 5
)

// Factory gives commands their streams and their way to etcd.
type Factory struct {
	genericiooptions.IOStreams
	Connect *connect.Flags

	mu      sync.Mutex
	configs []*connect.Config
}

// Client resolves the connection flags and returns a client balanced over
// the endpoints, with the config that made it.
func (f *Factory) Client() (*connect.Config, *clientv3.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, nil, err
	}
	cli, err := cfg.Client()
	if err != nil {
		return nil, nil, err
	}
	return cfg, cli, nil
}

// ConnectedClient is Client for op, which needs a connection to etcd:
// through --via exec (etcdctl in the pods) it fails at once, before any
// preflight or question, with what to use instead.
func (f *Factory) ConnectedClient(op string) (*connect.Config, *clientv3.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.RequireConnection(op); err != nil {
		return nil, nil, err
	}
	cli, err := cfg.Client()
	if err != nil {
		return nil, nil, err
	}
	return cfg, cli, nil
}

// Config resolves the connection flags. What it opens (port-forward
// tunnels) is closed by Finish when the command ends.
func (f *Factory) Config() (*connect.Config, error) {
	if f.Connect.Log == nil {
		f.Connect.Log = f.ErrOut
	}
	if f.Connect.Verbosity < 2 {
		// client-go logs a broken stream through klog on stderr; the
		// commands say themselves what it means. -v=2 shows them.
		klog.SetLogger(logr.Discard())
	}
	cfg, err := f.Connect.Resolve()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.configs = append(f.configs, cfg)
	f.mu.Unlock()
	return cfg, nil
}

// MemberStatuses resolves the connection flags and collects the status of
// every member, for the commands (status, version) that need nothing else
// of the cluster.
func (f *Factory) MemberStatuses(ctx context.Context) ([]cluster.MemberStatus, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	return cluster.ConnectAndCollect(ctx, cfg)
}

// Finish closes what the command's configs opened and adds to its error
// a tunnel that failed for good, which is what a user needs to know when
// the request that failed saw only a closed connection.
func (f *Factory) Finish(err error) error {
	f.mu.Lock()
	configs := f.configs
	f.configs = nil
	f.mu.Unlock()
	var tunnelErrs []error
	for _, cfg := range configs {
		if terr := cfg.Err(); terr != nil {
			tunnelErrs = append(tunnelErrs, terr)
		}
		cfg.Close()
	}
	if len(tunnelErrs) == 0 {
		return err
	}
	terr := errors.Join(tunnelErrs...)
	if err == nil {
		fmt.Fprintf(f.ErrOut, "warning: %v\n", terr)
		return nil
	}
	return &ExitError{Code: ExitCode(err), Err: fmt.Errorf("%v; the command failed with: %v", terr, err)}
}

// ExitError ends the program with Code after printing Err (when not nil).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Unhealthy returns an ExitError with ExitUnhealthy.
func Unhealthy(format string, args ...any) error {
	return &ExitError{Code: ExitUnhealthy, Err: fmt.Errorf(format, args...)}
}

// UsageError is a mistake in how a command was called.
type UsageError struct {
	Err     error
	Command string
}

func (e *UsageError) Error() string {
	return fmt.Sprintf("%v\nSee '%s -h' for help and examples", e.Err, e.Command)
}

func (e *UsageError) Unwrap() error { return e.Err }

// UsageErrorf reports a usage mistake of cmd.
func UsageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...), Command: displayPath(cmd)}
}

func displayPath(cmd *cobra.Command) string {
	path := cmd.CommandPath()
	root := cmd.Root()
	if name, ok := root.Annotations[cobra.CommandDisplayNameAnnotation]; ok {
		path = name + path[len(root.Name()):]
	}
	return path
}

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

// ValidateArgs wraps a cobra argument check so its failure reads as a usage
// error with the help hint.
func ValidateArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return UsageErrorf(cmd, "%v", err)
		}
		return nil
	}
}
