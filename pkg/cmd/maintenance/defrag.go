// Package maintenance holds the commands that keep etcd's storage in
// shape: defrag, compact, alarm and check. The work is done by
// pkg/maintenance; these commands parse flags, confirm and print.
package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

const defragExample = `  # Which members need it, and why, without changing anything
  kubectl etcd defrag --dry-run

  # Defragment the members the default rule picks, one at a time, leader last
  kubectl etcd defrag

  # Every member, after compacting the history, moving leadership away first
  kubectl etcd defrag --all --compact --move-leader --yes

  # Only members with more than half of their database free
  kubectl etcd defrag --rule 'dbFreeRatio > 0.5'`

// DefragOptions are the options of `kubectl etcd defrag`.
type DefragOptions struct {
	*cmdutil.Factory
	Rule       string
	All        bool
	Compact    bool
	MoveLeader bool
	Force      bool
	DryRun     bool
	Yes        bool
	Wait       time.Duration
	Timeout    time.Duration
	Print      *cmdutil.PrintFlags

	ruleSet bool
	rule    *maintenance.Rule
}

// NewCmdDefrag returns the defrag command.
func NewCmdDefrag(f *cmdutil.Factory) *cobra.Command {
	o := &DefragOptions{Rule: maintenance.DefaultRule, Wait: maintenance.DefaultDefragWait,
		Timeout: maintenance.DefaultDefragTimeout, Print: cmdutil.NewPrintFlags(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "defrag",
		Short: "Defragment the members that need it, one at a time, the leader last",
		Long: `Give back to the file system the space etcd's database no longer uses.

Defragmenting a member blocks it until it is done, so members are done one
at a time: the cluster's health is checked before each, members that need
no defragmentation by --rule are skipped, the leader comes last (with
--move-leader, leadership is first handed to a member already done), and
--wait lets each member catch up before the next. Learners are skipped:
etcd serves them no defragment request.

--compact first compacts the history to the current revision and waits
until every member has freed it, so the defragmentation gives that space
back too.

A rule is an expression over a member's status; the default is
  ` + maintenance.DefaultRule + `
Variables: ` + maintenance.RuleVariables + `

The command refuses to start on an unhealthy cluster unless --force, and
stops before the next member if the cluster becomes unhealthy. Exit code 5
when it refused or stopped because of the cluster's health.`,
		Example: defragExample,
		Args:    cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:    cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Rule, "rule", o.Rule, "expression that decides which members need defragmentation")
	fs.BoolVar(&o.All, "all", false, "defragment every member, whatever the rule says")
	fs.BoolVar(&o.Compact, "compact", false, "compact the history to the current revision first")
	fs.BoolVar(&o.MoveLeader, "move-leader", false, "hand leadership to a defragmented member before defragmenting the leader")
	fs.BoolVar(&o.Force, "force", false, "go ahead on an unhealthy cluster, skipping members that cannot be reached")
	fs.BoolVar(&o.DryRun, "dry-run", false, "show who would be defragmented and why; change nothing")
	cmdutil.AddYesFlag(fs, &o.Yes, "")
	fs.DurationVar(&o.Wait, "wait", o.Wait, "pause between two members")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for one member's defragmentation (etcd finishes it anyway)")
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Complete notes whether --rule was given and reads a template file.
func (o *DefragOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	o.Factory = f
	o.ruleSet = cmd.Flags().Changed("rule")
	return o.Print.Complete()
}

// Validate checks the options and compiles the rule.
func (o *DefragOptions) Validate() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	if o.All && o.ruleSet {
		return errors.New("--all and --rule contradict each other: pass one")
	}
	if o.Wait < 0 || o.Timeout <= 0 {
		return errors.New("--wait must not be negative and --timeout must be positive")
	}
	if !o.All {
		r, err := maintenance.CompileRule(o.Rule)
		if err != nil {
			return err
		}
		o.rule = r
	}
	return nil
}

// Run plans, confirms and runs the rolling defragmentation.
func (o *DefragOptions) Run(ctx context.Context) error {
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if o.Compact || o.MoveLeader {
		if err := cfg.RequireConnection("defrag with --compact or --move-leader"); err != nil {
			return err
		}
	}
	d := &maintenance.Defragmenter{
		Config: cfg, Client: cli, Rule: o.rule, Compact: o.Compact, MoveLeader: o.MoveLeader,
		Force: o.Force, Wait: o.Wait, Timeout: o.Timeout,
		Progress: func(line string) { fmt.Fprintln(o.ErrOut, line) },
	}
	plan, err := d.Plan(ctx)
	if err != nil {
		return exitFor(err)
	}
	for _, p := range plan.Problems {
		fmt.Fprintf(o.ErrOut, "warning: %s (going ahead: --force)\n", p)
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(o.ErrOut, "note: %s\n", n)
	}
	targets := plan.Targets()
	if o.DryRun || len(targets) == 0 {
		if err := o.Print.Printer().PrintTable(o.Out, plan, func(bool) ([]string, [][]string) {
			return PlanTable(plan)
		}); err != nil {
			return err
		}
		switch {
		case len(targets) == 0:
			fmt.Fprintln(o.ErrOut, "no member needs defragmentation: nothing to do")
		default:
			fmt.Fprintf(o.ErrOut, "dry run: would %s; nothing was changed\n", o.describe(targets))
		}
		return nil
	}
	if err := cmdutil.Confirm(o.Factory, o.describe(targets), o.Yes); err != nil {
		return err
	}
	report, runErr := d.Run(ctx, plan)
	printer := o.Print.Printer()
	if err := printer.Print(o.Out, report, func(bool) error {
		headers, rows := ReportTable(report)
		if err := printer.WriteTable(o.Out, headers, rows); err != nil {
			return err
		}
		_, err := fmt.Fprintf(o.Out, "\n%s reclaimed on %d member(s)\n", output.Bytes(report.Reclaimed), report.Defragmented)
		return err
	}); err != nil {
		return err
	}
	return exitFor(runErr)
}

func (o *DefragOptions) describe(targets []string) string {
	s := "defragment " + strings.Join(targets, ", ") + " one at a time"
	if o.Compact {
		s = "compact the history, then " + s
	}
	if o.MoveLeader {
		s += ", moving leadership away from the leader first"
	}
	return s
}

// exitFor gives an unhealthy cluster exit code 5.
func exitFor(err error) error {
	var ue *maintenance.UnhealthyError
	if errors.As(err, &ue) {
		return &cmdutil.ExitError{Code: cmdutil.ExitUnhealthy, Err: err}
	}
	return err
}

// PlanTable builds the rows of a dry run: who, and why.
func PlanTable(p *maintenance.Plan) ([]string, [][]string) {
	headers := []string{"NAME", "ID", "ENDPOINT", "LEADER", "LEARNER", "DB SIZE", "IN USE", "DEFRAG", "REASON"}
	var rows [][]string
	for _, s := range p.Steps {
		rows = append(rows, []string{s.Name, s.ID, s.Endpoint, strconv.FormatBool(s.Leader), strconv.FormatBool(s.Learner),
			output.Bytes(s.DBSize), output.Bytes(s.DBSizeInUse), strconv.FormatBool(s.Defrag), s.Reason})
	}
	return headers, rows
}

// ReportTable builds the rows of what was done to each member.
func ReportTable(r *maintenance.Report) ([]string, [][]string) {
	headers := []string{"NAME", "ID", "ACTION", "BEFORE", "AFTER", "RECLAIMED", "TOOK", "REASON"}
	var rows [][]string
	for _, m := range r.Members {
		before, after, reclaimed, took := "-", "-", "-", "-"
		if m.Action == maintenance.ActionDefragmented {
			before, after, reclaimed, took = output.Bytes(m.SizeBefore), output.Bytes(m.SizeAfter), output.Bytes(m.Reclaimed), m.Took.String()
		}
		reason := m.Reason
		if reason == "" {
			reason = "<none>"
		}
		rows = append(rows, []string{m.Name, m.ID, m.Action, before, after, reclaimed, took, reason})
	}
	return headers, rows
}
