package maintenance

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

// NewCmdCheck returns the check command group.
func NewCmdCheck(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the cluster's data",
	}
	cmd.AddCommand(newCmdCheckConsistency(f))
	return cmd
}

// ConsistencyOptions are the options of `kubectl etcd check consistency`.
// Their Complete and Validate are PrintOptions'.
type ConsistencyOptions struct {
	cmdutil.PrintOptions
}

func newCmdCheckConsistency(f *cmdutil.Factory) *cobra.Command {
	o := &ConsistencyOptions{PrintOptions: cmdutil.NewPrintOptions(cmdutil.TableOutput)}
	cmd := &cobra.Command{
		Use:   "consistency",
		Short: "Compare every member's hash of the keyspace at the same revision",
		Long: `Ask every voting member for the hash of its keyspace (HashKV) at the same
revision, the lowest one all of them have applied, and compare. Members
that hold different data are named. Learners are skipped: etcd serves them
no HashKV.

Exits with code 5 when members differ or a member cannot be hashed.`,
		Example: `  # Do all members hold the same data?
  kubectl etcd check consistency`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, true)
	return cmd
}

// Run compares the hashes.
func (o *ConsistencyOptions) Run(ctx context.Context) error {
	cfg, cli, err := o.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	c, err := maintenance.CheckConsistency(ctx, cfg, cli)
	if err != nil {
		return err
	}
	if err := o.Print.Printer().PrintTable(o.Out, c, func(bool) ([]string, [][]string) {
		return ConsistencyTable(c)
	}); err != nil {
		return err
	}
	if c.Differences != "" {
		return cmdutil.Unhealthy("members hold different data at revision %d: %s", c.Revision, c.Differences)
	}
	var failed []string
	for _, m := range c.Members {
		if m.Error != "" {
			failed = append(failed, m.Name+": "+m.Error)
		}
	}
	if len(failed) > 0 {
		return cmdutil.Unhealthy("could not hash every member at revision %d: %s", c.Revision, strings.Join(failed, "; "))
	}
	if !c.Consistent {
		return cmdutil.Unhealthy("no member could be hashed")
	}
	fmt.Fprintf(o.ErrOut, "all %d members agree at revision %d\n", len(c.Members)-skipped(c), c.Revision)
	return nil
}

func skipped(c *maintenance.Consistency) int {
	n := 0
	for _, m := range c.Members {
		if m.Skipped != "" {
			n++
		}
	}
	return n
}

// ConsistencyTable builds the hash rows.
func ConsistencyTable(c *maintenance.Consistency) ([]string, [][]string) {
	headers := []string{"NAME", "ID", "ENDPOINT", "REVISION", "COMPACT REVISION", "HASH", "ERROR"}
	var rows [][]string
	for _, m := range c.Members {
		rev, compact, hash, msg := "-", "-", "-", "<none>"
		switch {
		case m.Skipped != "":
			msg = "skipped: " + m.Skipped
		case m.Error != "":
			msg = m.Error
		default:
			rev, compact, hash = strconv.FormatInt(c.Revision, 10), "<none>", fmt.Sprintf("%x", m.Hash)
			if m.CompactRevision > 0 {
				compact = strconv.FormatInt(m.CompactRevision, 10)
			}
		}
		rows = append(rows, []string{m.Name, m.ID, m.Endpoint, rev, compact, hash, msg})
	}
	return headers, rows
}
