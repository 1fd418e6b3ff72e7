// Package upgrade holds `kubectl etcd upgrade`: the change of this
// control-plane node's etcd image to another release, one node at a time.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// Options are the options of `kubectl etcd upgrade`.
type Options struct {
	*cmdutil.Factory
	Image          string
	Version        string
	ManifestsDir   string
	KubeletRootDir string
	BackupDir      string
	DryRun         bool
	Yes            bool
	Force          bool
	Timeout        time.Duration
	LockTimeout    time.Duration

	node *bootstrap.Node
}

// NewCmdUpgrade returns the upgrade command.
func NewCmdUpgrade(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Factory: f, ManifestsDir: staticpod.DefaultManifestsDir, KubeletRootDir: staticpod.DefaultKubeletRootDir, Timeout: 2 * time.Minute, LockTimeout: 10 * time.Minute}
	cmd := &cobra.Command{
		Use:   "upgrade (--image IMAGE | --version VERSION)",
		Short: "Change this node's etcd to another release, one node at a time, with a backup and a rollback",
		Long: `Change the image of this control-plane node's etcd static pod to another
etcd release while the cluster serves. Run it on every control-plane node,
one after the other or all at once: the etcd lock ` + bootstrap.RestartLockName + `
makes them take turns.

  1. Preflight, printed first: every member healthy with quorum to spare
     while this one restarts, the version and storage version of every
     member, the version rules (one minor at a time; 3.5 -> 3.6 only from
     3.5.26; no learners; lower minors only after 'kubectl etcd downgrade
     enable'), and the free disk for the backup.
  2. A verified snapshot of this member and a copy of the manifest, kept in
     --backup-dir (by default beside the manifests directory), and the
     snapshot's v3 members bucket checked against the raft membership
     (etcd-io/etcd#19557).
  3. Leadership moved away when this member leads; the manifest moved
     away until etcd has stopped and the kubelet has cleaned up its pod
     (--kubelet-root-dir), then written with the new image.
  4. The gate: the member serves, reports the new version and catches up
     with the leader within --timeout. If not, the old manifest goes back
     and the command fails saying so; except once every member has run
     the new release and the cluster version has moved to it, which the
     old release cannot join: then the command says to use
     'kubectl etcd downgrade enable' instead. Interrupted here (Ctrl-C,
     SIGTERM, the terminal closed), it releases the lock and leaves the
     new manifest, saying how to check it or go back.

On a manifest that already has the image, it only checks the member as
the gate does: a run killed after it wrote the manifest leaves it so. If
the member does not serve it, the error names the copy of the manifest
before it and the command that goes back.

It asks before it changes anything, unless --yes (scripts) or --dry-run.`,
		Example: `  # Upgrade this node's etcd to 3.7.3, keeping the manifest's registry
  sudo kubectl etcd upgrade --version 3.7.3

  # From a script, on every control-plane node at once (the lock makes
  # them take turns)
  sudo kubectl etcd upgrade --version 3.7.3 --yes

  # What would happen, and the new manifest
  sudo kubectl etcd upgrade --image registry.k8s.io/etcd:3.7.3-0 --dry-run`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVar(&o.Image, "image", "", "the new etcd image, tagged with its release (registry.k8s.io/etcd:3.7.3-0)")
	cmd.Flags().StringVar(&o.Version, "version", "", "the new etcd release, with the repository of the manifest's image (3.7.3)")
	cmd.Flags().StringVar(&o.ManifestsDir, "manifests-dir", o.ManifestsDir, "directory of the kubelet's static pod manifests")
	cmd.Flags().StringVar(&o.KubeletRootDir, "kubelet-root-dir", o.KubeletRootDir, "the kubelet's --root-dir: the new manifest is written once the kubelet has cleaned up the old pod there, so the new pod starts at once; an etcd the kubelet keeps restarting there (a 4th start, within about 70 s of the kubelet's back-off) ends the wait before --timeout")
	cmd.Flags().StringVar(&o.BackupDir, "backup-dir", "", "where the snapshot and the old manifest go (default: a new etcd-upgrade-TIME directory beside --manifests-dir)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "print the preflight, the plan and the new manifest instead of changing anything")
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	cmd.Flags().BoolVar(&o.Force, "force", false, "upgrade even when the preflight or the version rules refuse")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long each gate waits: the member serving the new version and catching up, then every member healthy")
	cmd.Flags().DurationVar(&o.LockTimeout, "lock-timeout", o.LockTimeout, "how long to wait for another node's upgrade or restart to finish (0: no limit)")
	cmd.MarkFlagsMutuallyExclusive("image", "version")
	return cmd
}

// Validate checks the flags on their own.
func (o *Options) Validate() error {
	switch {
	case o.Image == "" && o.Version == "":
		return errors.New("give --image or --version: the etcd release to run")
	case o.Image != "":
		if _, err := upgrade.ParseImage(o.Image); err != nil {
			return fmt.Errorf("--image: %w", err)
		}
	default:
		if _, err := upgrade.TagVersion(o.Version); err != nil {
			return fmt.Errorf("--version: %w", err)
		}
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if o.LockTimeout < 0 {
		return errors.New("--lock-timeout must not be negative")
	}
	return nil
}

// Complete sets up this node from the flags.
func (o *Options) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory = f
	o.node = o.LocalNode(o.ManifestsDir, o.KubeletRootDir, o.DryRun)
	return nil
}

// Run upgrades this node's member.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := o.node.UpgradeEtcd(ctx, bootstrap.UpgradeOptions{
		RestartOptions: bootstrap.RestartOptions{
			ClusterAccess: bootstrap.AccessFromFlags(o.Connect),
			Timeout:       o.Timeout,
			Force:         o.Force,
			LockTimeout:   o.LockTimeout,
		},
		Image:     o.Image,
		Version:   o.Version,
		BackupDir: o.BackupDir,
		Confirm: func(from, to string) error {
			return cmdutil.Confirm(o.Factory, fmt.Sprintf("change etcd on this node from %s to %s, restarting it", from, to), o.Yes)
		},
	})
	if err != nil {
		return err
	}
	if !o.DryRun {
		fmt.Fprintf(o.Out, "etcd upgraded from %s to %s; backup in %s\n", res.From, res.To, res.BackupDir)
	}
	return nil
}
