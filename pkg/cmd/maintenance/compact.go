package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

const compactExample = `  # Keep only the latest revision of every key
  kubectl etcd compact --yes

  # Keep the last 10000 revisions, and wait until every member has freed the space
  kubectl etcd compact --keep 10000 --physical

  # Compact to a given revision; show what would happen first
  kubectl etcd compact --rev 123456 --dry-run`

// CompactOptions are the options of `kubectl etcd compact`.
type CompactOptions struct {
	*cmdutil.Factory
	Keep     int64
	Rev      int64
	Physical bool
	DryRun   bool
	Yes      bool
	Timeout  time.Duration

	keepSet, revSet bool
}

// NewCmdCompact returns the compact command.
func NewCmdCompact(f *cmdutil.Factory) *cobra.Command {
	o := &CompactOptions{Timeout: maintenance.DefaultDefragTimeout}
	cmd := &cobra.Command{
		Use:   "compact [--keep N | --rev R]",
		Short: "Remove the history of keys before a revision",
		Long: `Compact the keyspace: every revision of every key older than the target
revision is removed, except each key's value at that revision. Reads and
watches of older revisions fail afterwards. The space is reused by etcd;
'kubectl etcd defrag' gives it back to the file system.

The target is --rev, or the current revision minus --keep (0: only the
latest revisions stay). --physical waits until every member has removed
the history from its database.

The Kubernetes API server compacts every five minutes on its own; compact
by hand to recover space (NOSPACE) or before a defragmentation.`,
		Example: compactExample,
		Args:    cmdutil.ValidateArgs(cobra.NoArgs),
		RunE:    cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.Int64Var(&o.Keep, "keep", 0, "keep this many revisions before the current one")
	fs.Int64Var(&o.Rev, "rev", 0, "compact to this revision")
	fs.BoolVar(&o.Physical, "physical", false, "wait until every member has removed the history from its database")
	fs.BoolVar(&o.DryRun, "dry-run", false, "show the revision it would compact to; change nothing")
	cmdutil.AddYesFlag(fs, &o.Yes, "")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the compaction")
	return cmd
}

// Complete notes which of --keep and --rev were given.
func (o *CompactOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	o.Factory = f
	o.keepSet, o.revSet = cmd.Flags().Changed("keep"), cmd.Flags().Changed("rev")
	return nil
}

// Validate checks the options.
func (o *CompactOptions) Validate() error {
	if o.keepSet && o.revSet {
		return errors.New("--keep and --rev contradict each other: pass one")
	}
	if o.Keep < 0 || o.Rev < 0 || (o.revSet && o.Rev == 0) {
		return errors.New("--keep must not be negative and --rev must be positive")
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	return nil
}

// Run compacts.
func (o *CompactOptions) Run(ctx context.Context) error {
	cfg, cli, err := o.ConnectedClient("compaction")
	if err != nil {
		return err
	}
	defer cli.Close()
	p, err := maintenance.PlanCompaction(ctx, cfg, cli, o.Keep, o.Rev)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("compact to revision %d (the cluster is at %d): history before it is removed for good", p.Revision, p.Current)
	if o.DryRun {
		fmt.Fprintf(o.Out, "dry run: would %s; nothing was changed\n", what)
		return nil
	}
	if err := cmdutil.Confirm(o.Factory, what, o.Yes); err != nil {
		return err
	}
	err = maintenance.Compact(ctx, cli, p.Revision, o.Physical, o.Timeout)
	if errors.Is(err, maintenance.ErrAlreadyCompacted) {
		fmt.Fprintf(o.Out, "revision %d is already compacted: nothing to do\n", p.Revision)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "compacted to revision %d\n", p.Revision)
	return nil
}
