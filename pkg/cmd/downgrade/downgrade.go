// Package downgrade holds `kubectl etcd downgrade`: etcd's downgrade API,
// the step before running an older minor's image on each node.
package downgrade

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// Options are the options of `kubectl etcd downgrade ACTION VERSION`.
type Options struct {
	*cmdutil.Factory
	Action  string
	Target  string
	Yes     bool
	Wait    bool
	Timeout time.Duration
}

// NewCmdDowngrade returns the downgrade command group.
func NewCmdDowngrade(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "downgrade",
		Short: "Validate, enable or cancel a downgrade of the cluster to the previous minor (etcd 3.6+)",
		Long: `Drive etcd's downgrade API. A cluster goes down one minor in three steps:

  1. kubectl etcd downgrade validate 3.6   (is it possible?)
  2. kubectl etcd downgrade enable 3.6     (the cluster version drops, and
     every member rewrites its data for 3.6: this waits until every member
     reports storage version 3.6, printing each one)
  3. kubectl etcd upgrade --version 3.6.16 on each node in turn.

kubectl etcd downgrade cancel 3.6 stops a downgrade not yet done.`,
	}
	for _, action := range upgrade.DowngradeActions {
		cmd.AddCommand(newCmdAction(f, action))
	}
	return cmd
}

func newCmdAction(f *cmdutil.Factory, action string) *cobra.Command {
	o := &Options{Factory: f, Action: action, Wait: true, Timeout: 2 * time.Minute}
	short := map[string]string{
		upgrade.Validate: "Ask etcd whether the cluster can be downgraded to VERSION",
		upgrade.Enable:   "Start the downgrade to VERSION and wait until every member stores that version",
		upgrade.Cancel:   "Cancel a downgrade in progress",
	}[action]
	cmd := &cobra.Command{
		Use:   action + " VERSION",
		Short: short,
		Args:  cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE:  cmdutil.RunE(f, o),
	}
	if action == upgrade.Enable {
		cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
		cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "wait until every member reports the target storage version")
		cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long --wait waits")
	}
	return cmd
}

// Complete reads VERSION.
func (o *Options) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Factory = f
	t, err := upgrade.DowngradeTarget(args[0])
	if err != nil {
		return cmdutil.UsageErrorf(cmd, "%v", err)
	}
	o.Target = t
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if o.Wait && o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

// Run calls the downgrade API.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, cli, err := o.ConnectedClient("downgrade " + o.Action)
	if err != nil {
		return err
	}
	defer cli.Close()
	d := &upgrade.Downgrader{Config: cfg, Client: cli, Log: o.ErrOut}
	if o.Action == upgrade.Enable {
		if _, err := d.Do(ctx, upgrade.Validate, o.Target); err != nil {
			return err
		}
		if err := cmdutil.Confirm(o, "enable the downgrade of the cluster to "+o.Target, o.Yes); err != nil {
			return err
		}
	}
	clusterVersion, err := d.Do(ctx, o.Action, o.Target)
	if err != nil {
		return err
	}
	switch o.Action {
	case upgrade.Validate:
		fmt.Fprintf(o.Out, "the cluster (version %s) can be downgraded to %s\n", clusterVersion, o.Target)
	case upgrade.Cancel:
		fmt.Fprintf(o.Out, "downgrade to %s cancelled (cluster version %s)\n", o.Target, clusterVersion)
	case upgrade.Enable:
		fmt.Fprintf(o.Out, "downgrade to %s enabled (cluster version was %s)\n", o.Target, clusterVersion)
		if o.Wait {
			fmt.Fprintf(o.ErrOut, "[downgrade] waiting up to %s for every member to store version %s\n", o.Timeout, o.Target)
			return d.WaitStorageVersion(ctx, o.Target, o.Timeout)
		}
	}
	return nil
}
