// Package lock holds `kubectl etcd lock`: run a command under an etcd lock.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/lock"
)

// Options are the options of `kubectl etcd lock`.
type Options struct {
	*cmdutil.Factory
	TTL     time.Duration
	Timeout time.Duration
	// Name is the lock; Command what runs under it.
	Name    string
	Command []string
}

// NewCmdLock returns the lock command.
func NewCmdLock(f *cmdutil.Factory) *cobra.Command {
	o := &Options{TTL: 60 * time.Second}
	cmd := &cobra.Command{
		Use:   "lock NAME [--ttl D] [--timeout D] -- COMMAND [ARGS...]",
		Short: "Run a command while holding a lease-backed etcd lock",
		Long: `Take the etcd lock NAME (the same lock etcdctl lock NAME takes), run COMMAND
with ETCD_LOCK_KEY set to the lock's key, and release the lock when it exits.
A second invocation waits its turn, or fails after --timeout. If this process
dies, its lease expires after --ttl and the lock is free again; if the lease
is lost while the command runs, the command is stopped. The exit code is the
command's.`,
		Example: `  # One backup at a time across the control-plane nodes
  kubectl etcd lock backups -- /usr/local/bin/backup.sh

  # Give up after a minute
  kubectl etcd lock deploy --timeout 1m -- ./deploy.sh`,
		Args: cmdutil.ValidateArgs(func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return fmt.Errorf("want NAME -- COMMAND [ARGS...]")
			}
			return nil
		}),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().DurationVar(&o.TTL, "ttl", o.TTL, "lease time to live: how long a dead holder keeps the lock")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "give up waiting for the lock after this long (0: wait forever)")
	return cmd
}

// Complete takes the lock's name and the command.
func (o *Options) Complete(f *cmdutil.Factory, _ *cobra.Command, args []string) error {
	o.Factory, o.Name, o.Command = f, args[0], args[1:]
	return nil
}

// Validate checks the lease time.
func (o *Options) Validate() error {
	if o.TTL < time.Second {
		return errors.New("--ttl must be at least 1s")
	}
	return nil
}

// Run takes the lock, runs the command and gives its exit code back.
func (o *Options) Run(ctx context.Context) error {
	_, cli, err := o.ConnectedClient("a lock")
	if err != nil {
		return err
	}
	defer cli.Close()
	r := &lock.Runner{
		Client: cli,
		Options: lock.Options{
			Name: o.Name, TTL: o.TTL, Timeout: o.Timeout, Owner: owner(),
			Waiting: func(h string) { fmt.Fprintf(o.ErrOut, "waiting for lock %s, held by %s\n", o.Name, h) },
		},
		Stdin: o.In, Stdout: o.Out, Stderr: o.ErrOut,
	}
	err = r.Run(ctx, o.Command)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return &cmdutil.ExitError{Code: ee.ExitCode()}
	}
	return err
}

// owner tells those who wait who holds the lock: this host and process.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("kubectl etcd lock, pid %d on %s", os.Getpid(), host)
}
