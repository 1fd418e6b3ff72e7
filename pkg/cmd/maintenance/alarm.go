package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// NewCmdAlarm returns the alarm command group.
func NewCmdAlarm(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarm",
		Short: "List, disarm and recover from etcd alarms (NOSPACE, CORRUPT)",
		Long: `etcd raises NOSPACE when a member's database reaches its quota: from then
on the cluster refuses every write until the space is back and the alarm
is disarmed. 'alarm recover' does the whole job in order.`,
	}
	cmd.AddCommand(newCmdAlarmList(f), newCmdAlarmDisarm(f), newCmdAlarmRecover(f))
	return cmd
}

// AlarmListOptions are the options of `kubectl etcd alarm list`.
// Their Complete and Validate are PrintOptions'.
type AlarmListOptions struct {
	cmdutil.PrintOptions
}

func newCmdAlarmList(f *cmdutil.Factory) *cobra.Command {
	o := &AlarmListOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the active alarms; exit 5 when there is one",
		Example: `  # Any alarm? (exit code 5 when there is one)
  kubectl etcd alarm list`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Run lists the alarms.
func (o *AlarmListOptions) Run(ctx context.Context) error {
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	alarms, err := maintenance.ListAlarms(ctx, cfg, cli)
	if err != nil {
		return err
	}
	if alarms == nil {
		alarms = []maintenance.Alarm{}
	}
	printer := o.Print.Printer()
	if len(alarms) == 0 && printer.Human() {
		fmt.Fprintln(o.ErrOut, "no alarm is active")
		return nil
	}
	if err := printer.PrintTable(o.Out, alarms, func(bool) ([]string, [][]string) {
		return AlarmTable(alarms)
	}); err != nil {
		return err
	}
	if len(alarms) > 0 {
		return cmdutil.Unhealthy("%s", describeAlarms(alarms))
	}
	return nil
}

// AlarmTable builds the alarm rows.
func AlarmTable(alarms []maintenance.Alarm) ([]string, [][]string) {
	var rows [][]string
	for _, a := range alarms {
		rows = append(rows, []string{a.Member, a.MemberID, a.Alarm})
	}
	return []string{"MEMBER", "ID", "ALARM"}, rows
}

func describeAlarms(alarms []maintenance.Alarm) string {
	var parts []string
	for _, a := range alarms {
		parts = append(parts, a.Alarm+" on "+a.Member)
	}
	return fmt.Sprintf("%d alarm(s) active: %s", len(alarms), strings.Join(parts, ", "))
}

// AlarmDisarmOptions are the options of `kubectl etcd alarm disarm`.
type AlarmDisarmOptions struct {
	*cmdutil.Factory
	Yes bool
}

func newCmdAlarmDisarm(f *cmdutil.Factory) *cobra.Command {
	o := &AlarmDisarmOptions{}
	cmd := &cobra.Command{
		Use:   "disarm",
		Short: "Disarm every active alarm",
		Long: `Disarm every active alarm. A NOSPACE alarm disarmed while a database is
still over its quota is raised again at the next write: free the space
first, or use 'kubectl etcd alarm recover', which does both.`,
		Example: `  # Disarm every alarm without a prompt
  kubectl etcd alarm disarm --yes`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	return cmd
}

// Complete binds the factory.
func (o *AlarmDisarmOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	return nil
}

// Validate has nothing to check.
func (o *AlarmDisarmOptions) Validate() error { return nil }

// Run disarms the alarms.
func (o *AlarmDisarmOptions) Run(ctx context.Context) error {
	return withActiveAlarms(ctx, o.Factory, "disarming an alarm", "disarm", maintenance.ListAlarms, o.disarm)
}

// disarm asks, then disarms the active alarms.
func (o *AlarmDisarmOptions) disarm(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, alarms []maintenance.Alarm) error {
	if err := cmdutil.Confirm(o.Factory, "disarm "+describeAlarms(alarms), o.Yes); err != nil {
		return err
	}
	if err := maintenance.Disarm(ctx, cfg, cli, alarms); err != nil {
		return err
	}
	for _, a := range alarms {
		fmt.Fprintf(o.Out, "disarmed %s on %s\n", a.Alarm, a.Member)
	}
	return nil
}

// AlarmRecoverOptions are the options of `kubectl etcd alarm recover`.
// Their Complete is PrintOptions'.
type AlarmRecoverOptions struct {
	cmdutil.PrintOptions
	Yes     bool
	DryRun  bool
	Wait    time.Duration
	Timeout time.Duration
}

func newCmdAlarmRecover(f *cmdutil.Factory) *cobra.Command {
	o := &AlarmRecoverOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput), Wait: maintenance.DefaultDefragWait, Timeout: maintenance.DefaultDefragTimeout}
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Recover from NOSPACE: compact, defragment every member one at a time, disarm",
		Long: `Recover a cluster whose database reached its quota (the NOSPACE alarm), in
the order etcd's maintenance guide gives, reporting each step:

  1. compact the history to the current revision, waiting for every member;
  2. defragment every member, one at a time, the leader last;
  3. check that every member's data is back under its quota;
  4. disarm the alarms, so writes are accepted again.

It stops at the first step that fails and leaves the alarm armed. A CORRUPT
alarm is not a space problem: it is refused.`,
		Example: `  # What it would do
  kubectl etcd alarm recover --dry-run

  # Do it, without a prompt
  kubectl etcd alarm recover --yes`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	cmdutil.AddYesFlag(fs, &o.Yes, "")
	fs.BoolVar(&o.DryRun, "dry-run", false, "show the alarms and the steps; change nothing")
	fs.DurationVar(&o.Wait, "wait", o.Wait, "pause between two members' defragmentation")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for one member's defragmentation, and for the compaction")
	o.Print.AddFlags(cmd, false)
	return cmd
}

// Validate checks the options.
func (o *AlarmRecoverOptions) Validate() error {
	if err := o.PrintOptions.Validate(); err != nil {
		return err
	}
	if o.Wait < 0 || o.Timeout <= 0 {
		return errors.New("--wait must not be negative and --timeout must be positive")
	}
	return nil
}

// Run recovers from NOSPACE.
func (o *AlarmRecoverOptions) Run(ctx context.Context) error {
	return withActiveAlarms(ctx, o.Factory, "alarm recover (compaction and disarm)", "recover", maintenance.PlanRecovery, o.recover)
}

// recover asks, then compacts, defragments and disarms, and reports.
func (o *AlarmRecoverOptions) recover(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, alarms []maintenance.Alarm) error {
	what := "recover from " + describeAlarms(alarms) + " (compact, defragment every member, disarm)"
	if o.DryRun {
		fmt.Fprintf(o.Out, "dry run: would %s; nothing was changed\n", what)
		return nil
	}
	if err := cmdutil.Confirm(o.Factory, what, o.Yes); err != nil {
		return err
	}
	r := &maintenance.Recovery{Config: cfg, Client: cli, Wait: o.Wait, Timeout: o.Timeout,
		Progress: func(line string) { fmt.Fprintln(o.ErrOut, line) }}
	rep, runErr := r.Run(ctx, alarms)
	if err := o.Print.Printer().Print(o.Out, rep, func(bool) error {
		if rep.Defrag != nil {
			headers, rows := ReportTable(rep.Defrag)
			if err := output.WriteTable(o.Out, headers, rows, false); err != nil {
				return err
			}
		}
		if rep.Disarmed {
			_, err := fmt.Fprintf(o.Out, "\nrecovered: %s reclaimed, alarms disarmed\n", output.Bytes(rep.Defrag.Reclaimed))
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	return exitFor(runErr)
}

// withActiveAlarms starts disarm and recover, which change the cluster:
// it connects for op, finds the alarms with find and, when one is active,
// hands them to act; else it says there is nothing to verb.
func withActiveAlarms(ctx context.Context, f *cmdutil.Factory, op, verb string,
	find func(context.Context, *connect.Config, *clientv3.Client) ([]maintenance.Alarm, error),
	act func(context.Context, *connect.Config, *clientv3.Client, []maintenance.Alarm) error) error {
	cfg, cli, err := f.ConnectedClient(op)
	if err != nil {
		return err
	}
	defer cli.Close()
	alarms, err := find(ctx, cfg, cli)
	if err != nil {
		return err
	}
	if len(alarms) == 0 {
		fmt.Fprintln(f.Out, "no alarm is active: nothing to "+verb)
		return nil
	}
	return act(ctx, cfg, cli, alarms)
}
