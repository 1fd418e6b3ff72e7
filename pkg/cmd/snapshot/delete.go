package snapshot

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
)

// DeleteOptions are the options of `kubectl etcd snapshot delete`.
type DeleteOptions struct {
	*cmdutil.Factory
	Location objectstore.Location
	Name     string
	Store    storeFlags
	DryRun   bool
	Yes      bool
}

// NewCmdDelete returns the snapshot delete command.
func NewCmdDelete(f *cmdutil.Factory) *cobra.Command {
	o := &DeleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete URL|FILE",
		Short: "Delete one snapshot and its metadata from a backup location",
		Long: `Delete one snapshot saved into a backup location, with its metadata object.
It must be in the location's catalog ('kubectl etcd snapshot list'): an
object not named as a snapshot is refused. It asks first; --yes skips the
question, --dry-run only says what it would delete.`,
		Example: `  kubectl etcd snapshot delete s3://backups/etcd/prod/etcd-snapshot-20261125T120000Z-8e9e05c52164694d.db.zst --yes`,
		Args:    cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE:    cmdutil.RunE(f, o),
	}
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be deleted, delete nothing")
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	o.Store.AddFlags(cmd.Flags())
	return cmd
}

// Complete splits the argument into location and name.
func (o *DeleteOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) (err error) {
	o.Factory = f
	if o.Location, o.Name, err = objectstore.ParseObject(args[0]); err != nil {
		return cmdutil.UsageErrorf(cmd, "%v", err)
	}
	return nil
}

// Validate checks the name.
func (o *DeleteOptions) Validate() error {
	if !backup.IsSnapshotName(o.Name) {
		return fmt.Errorf("%s is not named as a snapshot kubectl-etcd saved (etcd-snapshot-TIME-....db...): not deleting it", o.Name)
	}
	return nil
}

// Run deletes the snapshot after finding it in the catalog and asking.
func (o *DeleteOptions) Run(ctx context.Context) error {
	st, err := objectstore.Open(ctx, o.Location, o.Store.S3Options)
	if err != nil {
		return err
	}
	e, err := backup.Find(ctx, st, o.Name)
	if err != nil {
		return err
	}
	if o.DryRun {
		fmt.Fprintf(o.Out, "would delete %s and its metadata\n", e.URL)
		return nil
	}
	if err := cmdutil.Confirm(o.Factory, "delete "+e.URL, o.Yes); err != nil {
		return err
	}
	if err := backup.Delete(ctx, st, o.Name); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "deleted %s and its metadata\n", e.URL)
	return nil
}
