// Package lock holds `kubectl etcd lock`: run a command under an etcd lock.
package lock

import (
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
}

// NewCmdLock returns the lock command.
func NewCmdLock(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Factory: f, TTL: 60 * time.Second}
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.TTL < time.Second {
				return cmdutil.UsageErrorf(cmd, "--ttl must be at least 1s")
			}
			_, cli, err := o.ConnectedClient("a lock")
			if err != nil {
				return err
			}
			defer cli.Close()
			r := &lock.Runner{
				Client: cli,
				Options: lock.Options{
					Name: args[0], TTL: o.TTL, Timeout: o.Timeout, Owner: owner(),
					Waiting: func(h string) { fmt.Fprintf(o.ErrOut, "waiting for lock %s, held by %s\n", args[0], h) },
				},
				Stdin: o.In, Stdout: o.Out, Stderr: o.ErrOut,
			}
			err = r.Run(cmd.Context(), args[1:])
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				return &cmdutil.ExitError{Code: ee.ExitCode()}
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&o.TTL, "ttl", o.TTL, "lease time to live: how long a dead holder keeps the lock")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "give up waiting for the lock after this long (0: wait forever)")
	return cmd
}

// owner tells those who wait who holds the lock: this host and process.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("kubectl etcd lock, pid %d on %s", os.Getpid(), host)
}
