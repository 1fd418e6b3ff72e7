package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// RestoreOptions are the options of `kubectl etcd snapshot restore`.
type RestoreOptions struct {
	*cmdutil.Factory
	snapshot.Restorer
	NoBumpRevision bool
	Print          *cmdutil.PrintFlags

	// Manifest, when set, restores this node's member in place: the etcd
	// static pod manifest at this path is stopped, pointed at the restored
	// data and started again.
	Manifest string
	Yes      bool
	DryRun   bool
	Timeout  time.Duration
	// KubeletRootDir is the kubelet's --root-dir, where a restarting etcd
	// leaves one file per container it ran.
	KubeletRootDir string

	changed  map[string]bool
	Store    storeFlags
	Identity identityFlags
	// source is the snapshot as the user named it, when SnapshotPath is
	// a fetched copy.
	source string
}

// NewCmdRestore returns the snapshot restore command.
func NewCmdRestore(f *cmdutil.Factory) *cobra.Command {
	o := &RestoreOptions{Print: cmdutil.NewPrintFlags(cmdutil.TableOutput), KubeletRootDir: staticpod.DefaultKubeletRootDir}
	o.BumpRevision = snapshot.DefaultBumpRevision
	o.MarkCompacted = true
	cmd := &cobra.Command{
		Use:   "restore FILE|URL --data-dir DIR --name NAME --initial-advertise-peer-urls URLS",
		Short: "Restore a snapshot into a new data directory for one member",
		Long: `Restore a snapshot file (plain, gzip or zstd) into a new data directory for
one member of a new cluster, through etcdutl's restore. The sha256 trailer
is checked first (--skip-hash-check for a database copied out of a data
directory); a data directory that is not empty is refused; the data is
written beside it and renamed into place only when complete.

For Kubernetes the revision is raised by --bump-revision (1000000000) and
marked compacted, as the etcd recovery guide recommends: watchers such as
the apiserver's watch cache must then re-list, instead of keeping objects
deleted since the snapshot. --no-bump-revision turns both off.

The command prints the exact next steps and the etcd version the restored
data needs: data of an etcd 3.7 cluster does not start on etcd 3.6.

With --manifest (default path: --etcd-manifest) it does the whole job on a
control-plane node, for a cluster of this one member (disaster recovery):
check the manifest and the snapshot, move the manifest out of the manifests
directory so the kubelet stops etcd, wait until etcd stopped answering,
restore into a new data directory (<data dir>-restore-<UTC time>, or
--data-dir; the old data is never deleted), point the manifest's data
volume and --data-dir at it, put the manifest back and wait until etcd
serves. Name and peer URLs come from the manifest. When a step fails, or
the command is interrupted (Ctrl-C), the original manifest is put back,
the command waits for etcd to serve the old data again and the error says
how things stand. A restore killed outright may leave the manifest in its
backup directory: the next run names it and how to put it back.
--dry-run shows the plan and the new manifest; --yes skips the question.

FILE may be an object in a backup location (s3://BUCKET/PREFIX/NAME, see
'kubectl etcd snapshot list'): it is streamed into a temporary file (in the
system's temporary directory; with --manifest beside the data directory,
whose disk must hold the database anyway), checked against the sha256 its
metadata recorded, and removed afterwards. An age-encrypted snapshot needs
--identity.`,
		Example: `  # Restore the only member of a new cluster
  kubectl etcd snapshot restore etcd.db --data-dir /var/lib/etcd-restored --name node-1 \
    --initial-advertise-peer-urls https://10.0.0.1:2380

  # One of three members: run the same on each node with its own name and peer URL
  kubectl etcd snapshot restore etcd.db --data-dir /var/lib/etcd-restored --name node-2 \
    --initial-advertise-peer-urls https://10.0.0.2:2380 \
    --initial-cluster node-1=https://10.0.0.1:2380,node-2=https://10.0.0.2:2380,node-3=https://10.0.0.3:2380

  # On a control-plane node: the whole job for this node's member (disaster recovery)
  sudo kubectl etcd snapshot restore etcd.db --manifest --dry-run
  sudo kubectl etcd snapshot restore etcd.db --manifest=/etc/kubernetes/manifests/etcd.yaml --yes

  # Outside Kubernetes, keep the snapshot's revisions
  kubectl etcd snapshot restore etcd.db --data-dir ./m1.etcd --name m1 --initial-advertise-peer-urls http://127.0.0.1:2380 --no-bump-revision`,
		Args: cmdutil.ValidateArgs(cobra.ExactArgs(1)),
		RunE: cmdutil.RunE(f, o),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.DataDir, "data-dir", "", "new data directory for the member (must not exist or be empty)")
	fs.StringVar(&o.Name, "name", "", "the member's name, as etcd's --name")
	fs.StringSliceVar(&o.PeerURLs, "initial-advertise-peer-urls", nil, "the member's peer URLs, as etcd's --initial-advertise-peer-urls")
	fs.StringVar(&o.InitialCluster, "initial-cluster", "", "every member of the new cluster as name=peerURL,... (default: this member alone)")
	fs.StringVar(&o.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "token of the new cluster, as etcd's --initial-cluster-token")
	fs.BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "accept a file without a sha256 trailer (member/snap/db copied out of a data directory)")
	fs.Uint64Var(&o.BumpRevision, "bump-revision", o.BumpRevision, "raise the revision by this much, so it is above any a watcher saw")
	fs.BoolVar(&o.MarkCompacted, "mark-compacted", o.MarkCompacted, "mark the bumped revision compacted, so watchers re-list")
	fs.BoolVar(&o.NoBumpRevision, "no-bump-revision", false, "keep the snapshot's revisions: neither bump nor mark compacted (not for Kubernetes)")
	o.Print.AddFlags(cmd, false)
	fs.Lookup("output").Usage = "output format: table (the next steps), " + o.Print.Help()
	fs.StringVar(&o.Manifest, "manifest", "", "restore this node's member in place through its etcd static pod manifest (bare --manifest: the --etcd-manifest path)")
	fs.Lookup("manifest").NoOptDefVal = manifestFromGlobal
	cmdutil.AddYesFlag(fs, &o.Yes, "with --manifest")
	fs.BoolVar(&o.DryRun, "dry-run", false, "with --manifest: check and print the plan and the new manifest, change nothing")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "with --manifest: how long to wait for etcd to stop, and to serve again")
	fs.StringVar(&o.KubeletRootDir, "kubelet-root-dir", o.KubeletRootDir, "with --manifest: the kubelet's --root-dir: an etcd the kubelet keeps restarting there on the restored data (a 4th start, within about 70 s of the kubelet's back-off) ends the wait before --timeout, and the old manifest goes back")
	o.Store.AddFlags(fs)
	o.Identity.AddFlags(fs)
	return cmd
}

// withFetched makes the snapshot a local file (an object streamed from a
// store, an encrypted file decrypted) for run, and removes the copy after.
func (o *RestoreOptions) withFetched(ctx context.Context, run func() error) error {
	f, err := fetcher(o.Store, o.Identity)
	if err != nil {
		return err
	}
	if o.Manifest != "" {
		f.TempDir = o.dataParent()
	}
	fetched, err := f.Fetch(ctx, o.SnapshotPath)
	if err != nil {
		return err
	}
	defer fetched.Close()
	o.SnapshotPath = fetched.Path
	o.source = fetched.Source
	return run()
}

// dataParent is the directory that receives the restored data on this
// node: a snapshot fetched for a restore through the manifest is copied
// there rather than into /tmp, which is often a small tmpfs while the
// data directory's disk must hold the database anyway. Empty (the
// system's temporary directory) when the manifest does not say; the
// preflight then names the problem.
func (o *RestoreOptions) dataParent() string {
	if o.DataDir != "" {
		return filepath.Dir(o.DataDir)
	}
	m, err := staticpod.Read(o.Manifest)
	if err != nil {
		return ""
	}
	dir, err := m.HostDataDir()
	if err != nil {
		return ""
	}
	return filepath.Dir(dir)
}

// Complete takes the snapshot file, the flags given, the path of a bare
// --manifest, and reads a template file.
func (o *RestoreOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, args []string) error {
	o.Factory, o.SnapshotPath = f, args[0]
	o.changed = cmdutil.ChangedFlags(cmd)
	if o.Manifest == manifestFromGlobal {
		o.Manifest = o.Connect.EtcdManifest
	}
	return o.Print.Complete()
}

// Validate checks the options of the restore asked for: into a new data
// directory, or through the manifest.
func (o *RestoreOptions) Validate() error {
	if o.Manifest != "" {
		return o.validateManifest()
	}
	for _, f := range []string{"yes", "dry-run", "timeout", "kubelet-root-dir"} {
		if o.changed[f] {
			return fmt.Errorf("--%s is for a restore through the static pod manifest: add --manifest", f)
		}
	}
	if err := o.Print.Validate(); err != nil {
		return err
	}
	bumpSet, markSet := o.changed["bump-revision"], o.changed["mark-compacted"]
	if o.NoBumpRevision {
		if bumpSet || (markSet && o.MarkCompacted) {
			return fmt.Errorf("--no-bump-revision contradicts --bump-revision and --mark-compacted")
		}
		o.BumpRevision, o.MarkCompacted = 0, false
	}
	// One of the pair turned off alone means both: etcdutl bumps only a
	// revision it also marks compacted.
	if bumpSet && o.BumpRevision == 0 && !markSet {
		o.MarkCompacted = false
	}
	if markSet && !o.MarkCompacted && !bumpSet {
		o.BumpRevision = 0
	}
	return o.Restorer.Validate()
}

// Run restores, into a new data directory or through the manifest.
func (o *RestoreOptions) Run(ctx context.Context) error {
	return o.withFetched(ctx, func() error {
		if o.Manifest != "" {
			return o.runManifest(ctx)
		}
		return o.restore()
	})
}

// restore restores into a new data directory and prints the next steps.
func (o *RestoreOptions) restore() error {
	res, err := o.Restore()
	if err != nil {
		var ce *snapshot.CorruptError
		if errors.As(err, &ce) && o.source != "" {
			ce.Path = o.source
		}
		return err
	}
	if o.source != "" {
		res.Snapshot.Path = o.source
	}
	return o.Print.Printer().Print(o.Out, res, func(bool) error {
		fmt.Fprint(o.Out, RestoreSummary(res, o.BumpRevision, o.MarkCompacted))
		return nil
	})
}

// RestoreSummary says what was restored and what to do next.
func RestoreSummary(res *snapshot.RestoreResult, bump uint64, compacted bool) string {
	s := fmt.Sprintf("Restored %s (revision %d, sha256 trailer %s) into %s as member %q.\n",
		res.Snapshot.Path, res.Snapshot.Revision, res.Snapshot.HashCheck, res.DataDir, res.Name)
	if compacted {
		s += fmt.Sprintf("Revision bumped by %d to %d and marked compacted: watchers must re-list.\n", bump, res.Revision)
	} else {
		s += fmt.Sprintf("Revisions kept: the member starts at revision %d.\n", res.Revision)
	}
	if res.NeedsEtcd != "" {
		s += fmt.Sprintf("The restored data needs etcd %s or newer (storage version %s).\n", res.NeedsEtcd, res.Snapshot.StorageVersion)
	} else {
		s += "The snapshot records no storage version (etcd before 3.6): start it with the etcd version that wrote it.\n"
	}
	s += "\nNext steps:\n"
	for i, step := range res.NextSteps() {
		s += fmt.Sprintf("  %d. %s\n", i+1, step)
	}
	return s
}

// manifestFromGlobal is the value of a bare --manifest: the path of the
// global --etcd-manifest flag.
const manifestFromGlobal = "(--etcd-manifest)"

// validateManifest checks the options of a restore through the manifest.
func (o *RestoreOptions) validateManifest() error {
	if err := o.Print.Validate(); err != nil {
		return err
	}
	for _, f := range []string{"name", "initial-advertise-peer-urls", "initial-cluster"} {
		if o.changed[f] {
			return fmt.Errorf("--%s comes from the manifest with --manifest: the member is restored as the manifest runs it, alone", f)
		}
	}
	if o.NoBumpRevision {
		o.BumpRevision, o.MarkCompacted = 0, false
	}
	if o.BumpRevision > 0 != o.MarkCompacted {
		return fmt.Errorf("--bump-revision and --mark-compacted go together: use --no-bump-revision to turn both off")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	return nil
}

// runManifest restores this node's member in place and prints each step.
func (o *RestoreOptions) runManifest(ctx context.Context) error {
	if err := bootstrap.CheckInterruptedRestore(o.Manifest); err != nil {
		return err
	}
	// The local member, as the manifest runs it: its client URL and
	// certificates, whatever --endpoints or ETCDCTL_ENDPOINTS say.
	flags := *o.Connect
	flags.Endpoints, flags.EtcdManifest, flags.Via = nil, o.Manifest, connect.ViaDirect
	getenv := flags.Getenv
	flags.Getenv = func(k string) string {
		if k == connect.EnvEndpoints || getenv == nil {
			return ""
		}
		return getenv(k)
	}
	cfg, err := flags.Resolve()
	if err != nil {
		return fmt.Errorf("preflight: reaching the local member: %w", err)
	}
	node := bootstrap.NewNode()
	node.Out, node.Log, node.KubeletRootDir = o.Out, o.ErrOut, o.KubeletRootDir
	r := &bootstrap.SnapshotRestore{
		ManifestPath: o.Manifest, Restorer: o.Restorer, Source: o.source, Config: cfg,
		Timeout: o.Timeout, DryRun: o.DryRun, Node: node,
	}
	if o.DryRun {
		_, err := r.Run(ctx)
		return err
	}
	// Preflight first, so the question comes with the facts.
	plan, err := r.Preflight(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.ErrOut, "This stops etcd member %s (%s), restores %s (revision %d) into %s and starts the member on it alone; the old data in %s is kept.\n",
		plan.Name, plan.ClientURL, plan.Snapshot.Path, plan.Snapshot.Revision, plan.DataDir, plan.OldDataDir)
	if err := cmdutil.Confirm(o.Factory, "restore member "+plan.Name+" from "+plan.Snapshot.Path, o.Yes); err != nil {
		return err
	}
	r.DryRun = false
	res, err := r.RunPlan(ctx, plan)
	if err != nil {
		return err
	}
	return o.Print.Printer().Print(o.Out, res, func(bool) error {
		fmt.Fprintf(o.Out, "Restored member %s from %s: it serves revision %d from %s.\n", res.Name, res.Snapshot.Path, res.ServedRevision, res.DataDir)
		fmt.Fprintf(o.Out, "The original manifest is kept in %s and the old data in %s; remove them once the cluster is as it should be.\n", res.ManifestBackup, res.OldDataDir)
		if len(res.JoinSteps) == 0 {
			fmt.Fprintln(o.Out, "Next: kubectl etcd health; restart kube-apiserver, kube-controller-manager, kube-scheduler and the kubelets; add the other control-plane nodes back with 'kubectl etcd reset' and 'kubectl etcd join' on each.")
			return nil
		}
		fmt.Fprintln(o.Out, "Next, to restore the whole cluster, bring back the other members the snapshot names, one node after the other:")
		for i, s := range res.JoinSteps {
			fmt.Fprintf(o.Out, "  %d. %s\n", i+1, s)
		}
		fmt.Fprintf(o.Out, "  %d. when every node has joined: kubectl etcd check consistency (every member must report the same hash)\n", len(res.JoinSteps)+1)
		fmt.Fprintf(o.Out, "  %d. restart kube-apiserver, kube-controller-manager, kube-scheduler and the kubelets, so none keeps state newer than the snapshot\n", len(res.JoinSteps)+2)
		return nil
	})
}
