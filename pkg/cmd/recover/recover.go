// Package recover holds `kubectl etcd recover quorum`: bring a control
// plane whose etcd lost quorum for good back from the most advanced data
// this node has.
package recover

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// NewCmdRecover returns the recover command group.
func NewCmdRecover(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Recover an etcd cluster from disasters",
		Args:  cmdutil.ValidateArgs(cobra.NoArgs),
	}
	cmd.AddCommand(NewCmdQuorum(f))
	return cmd
}

// QuorumOptions are the options of `kubectl etcd recover quorum`.
type QuorumOptions struct {
	*cmdutil.Factory
	Print        *cmdutil.PrintFlags
	Compare      []string
	Force        bool
	Yes          bool
	DryRun       bool
	DataDir      string
	BumpRevision uint64
	Timeout      time.Duration
	// KubeletRootDir is where the kubelet keeps a directory per pod until
	// it has cleaned the pod up.
	KubeletRootDir string
	// manifest is the etcd manifest the recovery works on.
	manifest string
}

// NewCmdQuorum returns the quorum recovery command.
func NewCmdQuorum(f *cmdutil.Factory) *cobra.Command {
	o := &QuorumOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput), BumpRevision: snapshot.DefaultBumpRevision, Timeout: 5 * time.Minute, KubeletRootDir: staticpod.DefaultKubeletRootDir}
	cmd := &cobra.Command{
		Use:   "quorum [--compare DIR,...]",
		Short: "Start a cluster that lost quorum for good again from this node's data, alone",
		Long: `When most members are gone for good (their nodes or disks lost), start again
from the most advanced data this node has, as a one-member cluster, then
join the other nodes back.

Preflight (printed on stderr): this member really has no quorum (a
linearizable read gets no answer; refused when a quorum answers, unless
--force), which members are unreachable, this member's committed index,
and with --compare DIR,... (data directories copied from other nodes)
which copy is the most advanced: the recovery uses it, or run it on that
node (a copy of another cluster's member, by the cluster ID in its WAL,
is refused). It says what may be lost: what members not compared may have
committed past that index, and the entries past the commit index the WAL
recorded (etcd records it only with a later entry, so the last writes
acknowledged before the members holding them died are among them).
When copies of a majority of the voters are compared (this member's data
counts; copy each after its member stopped), the most up-to-date log
among them is the one raft would elect, and an elected leader commits
its whole log: the recovery uses it and keeps all of it, with every
write a quorum acknowledged, even one that only a single follower still
holds. Otherwise, entries a majority of the voters held in the term they
were written in are kept (raft counts them committed). Either way the
copy's commit index is raised to them.

Then, step by step: the manifest is moved aside so the kubelet stops etcd;
the data is copied (the original data directory is never written); the
copy is started as a one-member cluster (etcd's force-new-cluster, which
applies every committed WAL entry: in process when the manifest's image
is this kubectl-etcd's etcd minor, else with that image as the static pod
on the copy, so an etcd 3.6 member keeps data etcd 3.6 starts on) and
saved; the save is restored with the revision bumped by --bump-revision
and marked compacted, so kube-apiserver's watch caches re-list; the
manifest is written back with the new data directory and --initial-cluster
this member alone; and the command waits until etcd serves. A failed
step, Ctrl-C or a member that will not start puts the original manifest
back. A recovery killed while the manifest was away (or while the image
ran on the copy) is undone by the next run. Last it prints the
'kubectl etcd reset' and 'kubectl etcd join' to run on each other node.`,
		Example: `  # See the plan
  sudo kubectl etcd recover quorum --dry-run

  # Compare with data dirs copied from the other nodes, then recover
  sudo kubectl etcd recover quorum --compare /backup/cp-2-etcd,/backup/cp-3-etcd --yes`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.Print.AddFlags(cmd, false)
	fs := cmd.Flags()
	fs.StringSliceVar(&o.Compare, "compare", nil, "data directories copied from other nodes: the most advanced is recovered from (the most up-to-date log when a majority of the voters is compared)")
	fs.BoolVar(&o.Force, "force", false, "recover even though a quorum answers (the other members are dropped)")
	cmdutil.AddYesFlag(fs, &o.Yes, "")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the preflight and the plan, change nothing")
	fs.StringVar(&o.DataDir, "data-dir", "", "the new data directory (default: the old one with -recover-<UTC time>)")
	fs.Uint64Var(&o.BumpRevision, "bump-revision", o.BumpRevision, "raise the revision by this much, above any revision a client saw, and mark it compacted")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for etcd to stop, and to serve the recovered data")
	fs.StringVar(&o.KubeletRootDir, "kubelet-root-dir", o.KubeletRootDir, "the kubelet's --root-dir: each new manifest is written once the kubelet has cleaned up the pod before it, so the new pod starts at once; an etcd the kubelet keeps restarting there (a 4th start, within about 70 s of the kubelet's back-off) ends the wait before --timeout")
	return cmd
}

// Complete takes the manifest from the connection flags and reads a
// template file.
func (o *QuorumOptions) Complete(f *cmdutil.Factory, _ *cobra.Command, _ []string) error {
	o.Factory, o.manifest = f, f.Connect.EtcdManifest
	return o.Print.Complete()
}

// Validate checks the options.
func (o *QuorumOptions) Validate() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	if o.BumpRevision == 0 {
		return fmt.Errorf("--bump-revision must be positive: kube-apiserver's watch caches must see the revision jump")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	for _, d := range o.Compare {
		if strings.TrimSpace(d) == "" {
			return fmt.Errorf("--compare has an empty directory")
		}
	}
	return nil
}

// Run recovers and prints each step.
func (o *QuorumOptions) Run(ctx context.Context) error {
	// The local member, as the manifest runs it.
	flags := *o.Connect
	flags.Endpoints, flags.Via = nil, connect.ViaDirect
	getenv := flags.Getenv
	flags.Getenv = func(k string) string {
		if k == connect.EnvEndpoints || getenv == nil {
			return ""
		}
		return getenv(k)
	}
	// A recovery killed with the manifest moved aside: put it back first
	// (the manifest is how the local member is reached).
	if backup, err := bootstrap.UndoInterrupted(o.manifest); err != nil {
		return err
	} else if backup != "" {
		return fmt.Errorf("an earlier recovery was interrupted with the manifest moved aside: it is back in %s from %s, and etcd starts again on its untouched data; run the recovery again once it has", o.manifest, backup)
	}
	cfg, err := flags.Resolve()
	if err != nil {
		return fmt.Errorf("preflight: reaching the local member: %w", err)
	}
	node := bootstrap.NewNode()
	node.Out, node.Log, node.KubeletRootDir = o.Out, o.ErrOut, o.KubeletRootDir
	r := &bootstrap.QuorumRecovery{
		ManifestPath: o.manifest, Config: cfg, Compare: o.Compare, Force: o.Force,
		DataDir: o.DataDir, BumpRevision: o.BumpRevision, Timeout: o.Timeout, DryRun: o.DryRun, Node: node,
	}
	plan, err := r.Preflight(ctx)
	if err != nil {
		return err
	}
	if !o.DryRun {
		fmt.Fprintf(o.ErrOut, "This stops etcd member %s, makes a one-member cluster of a copy of %s in %s, and drops every other member; the original data in %s is kept.\n",
			plan.Name, plan.Source, plan.DataDir, plan.OldDataDir)
		if err := cmdutil.Confirm(o.Factory, "recover member "+plan.Name+" alone from "+plan.Source, o.Yes); err != nil {
			return err
		}
	}
	res, err := r.RunPlan(ctx, plan)
	if err != nil {
		return err
	}
	if o.DryRun {
		return nil
	}
	return o.Print.Printer().Print(o.Out, res, func(bool) error {
		fmt.Fprintf(o.Out, "Recovered member %s alone from %s: it serves revision %d from %s.\n", res.Name, res.Source, res.Revision, res.DataDir)
		fmt.Fprintf(o.Out, "The original manifest is kept in %s and the original data in %s.\n", res.ManifestBackup, res.OldDataDir)
		fmt.Fprintln(o.Out, "Next, on each other node, one at a time:")
		for _, s := range res.JoinSteps {
			fmt.Fprintf(o.Out, "  %s\n", s)
		}
		fmt.Fprintln(o.Out, "Then restart kube-apiserver, kube-controller-manager, kube-scheduler and the kubelets.")
		return nil
	})
}
