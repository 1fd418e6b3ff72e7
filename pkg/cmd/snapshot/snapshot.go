// Package snapshot holds the snapshot commands: save a verified snapshot of
// a member, inspect a snapshot file, restore one into a new data directory.
package snapshot

import (
	"github.com/spf13/cobra"

	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
)

// NewCmdSnapshot returns the snapshot command group.
func NewCmdSnapshot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save, inspect and restore etcd snapshots",
		Long: `Save a snapshot of one member into a file (checked before it gets its final
name), show what a snapshot file holds, and restore one into a new data
directory for a member of a new cluster.`,
		Example: `  # Save a snapshot of the healthiest member
  kubectl etcd snapshot save /var/backups/etcd.db

  # Show what a snapshot holds
  kubectl etcd snapshot status /var/backups/etcd.db

  # Restore it as the data of member node-1
  kubectl etcd snapshot restore /var/backups/etcd.db --data-dir /var/lib/etcd-restored --name node-1 --initial-advertise-peer-urls https://10.0.0.1:2380`,
	}
	cmd.AddCommand(NewCmdSave(f), NewCmdStatus(f), NewCmdRestore(f), NewCmdList(f), NewCmdPrune(f), NewCmdDelete(f), NewCmdVerify(f))
	return cmd
}
