package snapshot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
)

// PruneOptions are the options of `kubectl etcd snapshot prune`.
type PruneOptions struct {
	*cmdutil.Factory
	Location  objectstore.Location
	Store     storeFlags
	Retain    int
	OlderThan string
	DryRun    bool
	Yes       bool
	Print     *cmdutil.PrintFlags

	changed   map[string]bool
	olderThan time.Duration
	now       func() time.Time
}

// NewCmdPrune returns the snapshot prune command.
func NewCmdPrune(f *cmdutil.Factory) *cobra.Command {
	o := &PruneOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput), now: time.Now}
	cmd := &cobra.Command{
		Use:   "prune LOCATION (--retain N | --older-than AGE)",
		Short: "Remove old snapshots from a backup directory or S3 prefix",
		Long: `Remove the snapshots in LOCATION beyond the newest --retain N, or those
taken more than --older-than ago (30d, 12h, 90m), each with its metadata
object. The newest snapshot is never removed by age. Objects not named as
snapshots are left alone. Unfinished uploads and partial files older than a
day (left by saves that were killed) are removed too.

It lists what it will remove and asks first; --yes skips the question,
--dry-run only lists.`,
		Example: `  # Keep the newest 7
  kubectl etcd snapshot prune s3://backups/etcd/prod/ --retain 7 --yes

  # See what a 30-day rule would remove
  kubectl etcd snapshot prune /var/backups/etcd --older-than 30d --dry-run`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().IntVar(&o.Retain, "retain", 0, "keep the newest N snapshots, remove the rest")
	cmd.Flags().StringVar(&o.OlderThan, "older-than", "", "remove snapshots taken longer ago than this (30d, 12h, 90m)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "list what would be removed, remove nothing")
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	o.Print.AddFlags(cmd, true)
	o.Store.AddFlags(cmd.Flags())
	return cmd
}

// Complete parses the location, takes the flags given and reads a
// template file.
func (o *PruneOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) (err error) {
	o.Factory = f
	o.changed = cmdutil.ChangedFlags(cmd)
	if o.Location, err = objectstore.ParseLocation(args[0]); err != nil {
		return cmdutil.UsageErrorf(cmd, "%v", err)
	}
	return o.Print.Complete()
}

// Validate checks the options.
func (o *PruneOptions) Validate() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	if o.Retain < 0 {
		return fmt.Errorf("--retain must be 1 or more, got %d", o.Retain)
	}
	if o.changed["retain"] && o.Retain == 0 {
		return fmt.Errorf("--retain 0 would remove every snapshot: use 'kubectl etcd snapshot delete' for that")
	}
	if o.OlderThan != "" {
		d, err := ParseAge(o.OlderThan)
		if err != nil {
			return fmt.Errorf("--older-than: %v", err)
		}
		o.olderThan = d
	}
	if o.Retain == 0 && o.olderThan == 0 {
		return fmt.Errorf("say what to remove: --retain N or --older-than AGE")
	}
	return nil
}

// ParseAge reads an age such as 30d, 12h or 1h30m.
func ParseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not an age such as 30d, 12h or 90m", s)
	}
	return d, nil
}

// Run prunes, after a preflight that lists what goes and a confirmation.
func (o *PruneOptions) Run(ctx context.Context) error {
	st, err := objectstore.Open(ctx, o.Location, o.Store.S3Options)
	if err != nil {
		return err
	}
	policy := backup.Policy{Retain: o.Retain, OlderThan: o.olderThan, Now: o.now()}
	plan, err := backup.Prune(ctx, st, policy, true)
	if err != nil {
		return err
	}
	res := plan
	if !o.DryRun && len(plan.Removed) > 0 {
		fmt.Fprintf(o.ErrOut, "This removes %d of the %d snapshots in %s:\n", len(plan.Removed), len(plan.Removed)+len(plan.Kept), st)
		for _, e := range plan.Removed {
			fmt.Fprintf(o.ErrOut, "  %s (taken %s)\n", e.Name, e.Taken.UTC().Format(time.RFC3339))
		}
		if err := cmdutil.Confirm(o.Factory, fmt.Sprintf("remove %d snapshots from %s", len(plan.Removed), st), o.Yes); err != nil {
			return err
		}
	}
	if !o.DryRun {
		if res, err = backup.Prune(ctx, st, policy, false); err != nil {
			return err
		}
	}
	p := o.Print.Printer()
	return p.Print(o.Out, res, func(bool) error {
		return p.WriteTable(o.Out, []string{"ACTION", "NAME", "TAKEN"}, PruneRows(res))
	})
}

// PruneRows lists what a prune removed and kept, one snapshot a row.
func PruneRows(res *backup.PruneResult) [][]string {
	removed := "removed"
	if res.DryRun {
		removed = "would remove"
	}
	var rows [][]string
	for _, e := range res.Removed {
		rows = append(rows, []string{removed, e.Name, e.Taken.UTC().Format(time.RFC3339)})
	}
	for _, e := range res.Kept {
		rows = append(rows, []string{"kept", e.Name, e.Taken.UTC().Format(time.RFC3339)})
	}
	for _, a := range res.Aborted {
		rows = append(rows, []string{"aborted", a, ""})
	}
	return rows
}
