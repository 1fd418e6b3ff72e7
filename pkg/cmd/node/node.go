// Package node holds the commands that bootstrap and tear down the etcd of
// one control-plane node the way kubeadm lays it out: init, join, leave and
// reset. They run on the node itself, as root.
package node

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// nodeOptions are what every node command shares: the node's directories
// (--pki-dir is the global flag) and --dry-run.
type nodeOptions struct {
	*cmdutil.Factory
	Node *bootstrap.Node
	// Now is the time certificates are checked against; tests pin it.
	Now func() time.Time

	cluster bootstrap.ClusterAccess
	// dataDirGiven: --data-dir is on the command line.
	dataDirGiven bool
}

func newNodeOptions() nodeOptions {
	return nodeOptions{Node: bootstrap.NewNode(), Now: time.Now}
}

func (o *nodeOptions) addDirFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Node.ManifestsDir, "manifests-dir", o.Node.ManifestsDir, "directory of the kubelet's static pod manifests; etcd.yaml is written there")
	fs.StringVar(&o.Node.DataDir, "data-dir", o.Node.DataDir, "etcd data directory on the node")
	fs.BoolVar(&o.Node.DryRun, "dry-run", false, "print the files and changes instead of making them")
}

// addCleanupFlags are the flags of the commands that stop etcd and then
// clear its data (leave, reset): the directories, the data directory
// being the manifest's unless given, and the kubelet's --root-dir, as
// they wait for the kubelet to clean up the pod before clearing it.
func (o *nodeOptions) addCleanupFlags(fs *pflag.FlagSet) {
	o.addDirFlags(fs)
	fs.Lookup("data-dir").Usage = "etcd data directory to clear: the --data-dir of the etcd manifest in --manifests-dir (recover quorum and snapshot restore --manifest change it), else this; when given, it must be the manifest's"
	fs.StringVar(&o.Node.KubeletRootDir, "kubelet-root-dir", o.Node.KubeletRootDir, "the kubelet's --root-dir: the data directory is cleared once the kubelet has cleaned up the etcd pod there, so no restarting container writes into it")
}

func (o *nodeOptions) addIdentityFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Node.Name, "name", o.Node.Name, "node name: the etcd member name and the CN of its server and peer certificates")
	fs.StringVar(&o.Node.AdvertiseAddress, "advertise-address", o.Node.AdvertiseAddress, "IP address other members and clients reach this node's etcd on")
	fs.StringVar(&o.Node.Image, "image", o.Node.Image, "etcd container image of the static pod")
	fs.IntVar(&o.Node.ClientPort, "client-port", o.Node.ClientPort, "etcd client port")
	fs.IntVar(&o.Node.PeerPort, "peer-port", o.Node.PeerPort, "etcd peer port")
	fs.IntVar(&o.Node.MetricsPort, "metrics-port", o.Node.MetricsPort, "etcd metrics and health port on the loopback address")
	fs.StringVar((*string)(&o.Node.KeyAlgorithm), "key-algorithm", "RSA-2048", "algorithm of new private keys: RSA-2048 (kubeadm's default) or ECDSA-P256")
}

// Complete binds the streams and the global --pki-dir.
func (o *nodeOptions) Complete(f *cmdutil.Factory, cmd *cobra.Command, _ []string) error {
	o.Factory = f
	o.dataDirGiven = cmd != nil && cmd.Flags().Changed("data-dir")
	o.Node.PKIDir = o.Connect.PKIDir
	o.Node.Out = o.Out
	o.Node.Log = o.ErrOut
	o.cluster = bootstrap.AccessFromFlags(o.Connect)
	return nil
}

// validateNode checks the key algorithm and the ports.
func (o *nodeOptions) validateNode() error {
	switch o.Node.KeyAlgorithm {
	case pki.RSA2048, pki.ECDSAP256:
	default:
		return fmt.Errorf("--key-algorithm %q is not %s or %s", o.Node.KeyAlgorithm, pki.RSA2048, pki.ECDSAP256)
	}
	for flag, p := range map[string]int{"--client-port": o.Node.ClientPort, "--peer-port": o.Node.PeerPort, "--metrics-port": o.Node.MetricsPort} {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%s %d is not a port", flag, p)
		}
	}
	if o.Node.ClientPort == o.Node.PeerPort || o.Node.ClientPort == o.Node.MetricsPort || o.Node.PeerPort == o.Node.MetricsPort {
		return fmt.Errorf("--client-port, --peer-port and --metrics-port must differ")
	}
	return nil
}

// access is how to reach the cluster: the global connection flags (and
// ETCDCTL_ENDPOINTS, read by Complete), with the certificates defaulting
// to this node's.
func (o *nodeOptions) access() bootstrap.ClusterAccess { return o.cluster }

// InitOptions are the options of `kubectl etcd init`.
type InitOptions struct{ nodeOptions }

// NewCmdInit returns the init command.
func NewCmdInit(f *cmdutil.Factory) *cobra.Command {
	o := &InitOptions{newNodeOptions()}
	cmd := &cobra.Command{
		Use:   "init --name NODE --advertise-address IP",
		Short: "Set up this node as the first member of a new etcd cluster",
		Long: `Create the etcd certificates this node lacks (an existing CA is reused, a
valid certificate is never overwritten) and write the etcd static pod
manifest for the first member of a new cluster, as 'kubeadm init phase etcd
local' does: same files, modes, flags, probes and volumes. The kubelet then
starts etcd.`,
		Example: `  # The first control-plane node
  sudo kubectl etcd init --name cp-1 --advertise-address 10.0.0.11

  # See the certificates and the manifest without writing anything
  kubectl etcd init --name cp-1 --advertise-address 10.0.0.11 --dry-run`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.addIdentityFlags(cmd.Flags())
	o.addDirFlags(cmd.Flags())
	return cmd
}

// Validate checks the options.
func (o *InitOptions) Validate() error {
	if err := o.Node.ValidateIdentity(); err != nil {
		return err
	}
	if err := o.validateNode(); err != nil {
		return err
	}
	return o.Node.ValidateDirs()
}

// Run writes the PKI and the manifest.
func (o *InitOptions) Run(context.Context) error {
	if err := o.Node.Init(o.Now()); err != nil {
		return err
	}
	if !o.Node.DryRun {
		fmt.Fprintf(o.ErrOut, "etcd member %s will start when the kubelet picks up %s.\nAdd nodes with 'kubectl etcd join' after copying %s/etcd/ca.{crt,key} to them.\n",
			o.Node.Name, o.Node.ManifestPath(), o.Node.PKIDir)
	}
	return nil
}

// JoinOptions are the options of `kubectl etcd join`.
type JoinOptions struct {
	nodeOptions
	Timeout time.Duration
	Replace bool
	Force   bool
}

// NewCmdJoin returns the join command.
func NewCmdJoin(f *cmdutil.Factory) *cobra.Command {
	o := &JoinOptions{nodeOptions: newNodeOptions(), Timeout: 5 * time.Minute}
	cmd := &cobra.Command{
		Use:   "join --name NODE --advertise-address IP --endpoints URL,...",
		Short: "Add this node to an existing etcd cluster as a learner, then promote it",
		Long: `Add this node's etcd to the cluster at --endpoints: create its certificates
with the cluster's CA (copy etcd/ca.crt and etcd/ca.key from a control-plane
node first), add it as a learner, write its static pod manifest with every
member and --initial-cluster-state=existing, wait until the kubelet has
started it and it has caught up with the leader, then promote it.

Run it again after a failure: it takes over the learner it added instead
of adding a second member. When --timeout passes, the learner is removed
and the manifest and data deleted, leaving the cluster as it was.

A rebuilt node joins under its old name: when a member has this node's
name under another peer URL, or this node's peer URL while the data
directory is empty (its data is gone), that stale member is removed first,
after a preflight printed on stderr (the others must keep quorum without
it; --force overrides). A stale member that still answers is removed only
with --replace, which also replaces the member of this peer URL whatever
the data directory holds (reset it first). --dry-run prints the preflight.`,
		Example: `  # Join the second control-plane node
  sudo kubectl etcd join --name cp-2 --advertise-address 10.0.0.12 --endpoints https://10.0.0.11:2379

  # cp-2 was rebuilt: its old member is down and its data gone
  sudo kubectl etcd join --name cp-2 --advertise-address 10.0.0.12 --endpoints https://10.0.0.11:2379 --replace`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.addIdentityFlags(cmd.Flags())
	o.addDirFlags(cmd.Flags())
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the new member to start, catch up and be promoted")
	cmd.Flags().BoolVar(&o.Replace, "replace", false, "replace the member with this node's name or peer URL (its old self), even if it still answers")
	cmd.Flags().BoolVar(&o.Force, "force", false, "replace the stale member even when the preflight refuses (quorum)")
	return cmd
}

// Validate checks the options.
func (o *JoinOptions) Validate() error {
	if err := o.Node.ValidateIdentity(); err != nil {
		return err
	}
	if err := o.validateNode(); err != nil {
		return err
	}
	if len(o.access().Endpoints) == 0 {
		return fmt.Errorf("--endpoints is required: client URLs of the existing members")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return o.Node.ValidateDirs()
}

// Run joins.
func (o *JoinOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := o.Node.Join(ctx, bootstrap.JoinOptions{ClusterAccess: o.access(), Timeout: o.Timeout, Replace: o.Replace, Force: o.Force}, o.Now())
	if err != nil {
		if res != nil && res.Replaced != "" {
			return fmt.Errorf("%w (stale member %s was removed before)", err, res.Replaced)
		}
		return err
	}
	if !o.Node.DryRun {
		replaced := ""
		if res.Replaced != "" {
			replaced = ", replacing stale member " + res.Replaced
		}
		fmt.Fprintf(o.Out, "member %s (%s) joined as a voting member%s\n", o.Node.Name, res.MemberID, replaced)
	}
	return nil
}

// LeaveOptions are the options of `kubectl etcd leave`.
type LeaveOptions struct {
	nodeOptions
	Force bool
	Yes   bool
}

// NewCmdLeave returns the leave command.
func NewCmdLeave(f *cmdutil.Factory) *cobra.Command {
	o := &LeaveOptions{nodeOptions: newNodeOptions()}
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Remove this node's etcd member from the cluster and clean up the node",
		Long: `Remove this node's member from the etcd cluster, handing leadership to
another member first when it leads, then delete the static pod manifest
(the kubelet stops etcd) and clear the data directory it ran on (the
manifest's --data-dir, as kubeadm reset finds it). The member is found
from the manifest (or --name).

Refuses to remove the last member, or one whose removal leaves fewer
healthy voters than a quorum, unless --force.`,
		Example: `  # Take this node out of the cluster
  sudo kubectl etcd leave --yes

  # What would happen
  sudo kubectl etcd leave --dry-run`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	cmd.Flags().StringVar(&o.Node.Name, "name", "", "member name of this node; default: --name of the etcd manifest")
	o.addCleanupFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.Force, "force", false, "remove even the last member, or one whose removal breaks quorum")
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	return cmd
}

// Validate checks the directories.
func (o *LeaveOptions) Validate() error { return o.Node.ValidateDirs() }

// Run leaves.
func (o *LeaveOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := o.Node.UseManifestDataDir(o.dataDirGiven); err != nil {
		return err
	}
	if !o.Node.DryRun {
		what := "this node's member"
		if o.Node.Name != "" {
			what = "member " + o.Node.Name
		}
		if err := cmdutil.Confirm(o.Factory, fmt.Sprintf("remove %s from the cluster and delete %s and the data in %s", what, o.Node.ManifestPath(), o.Node.DataDir), o.Yes); err != nil {
			return err
		}
	}
	res, err := o.Node.Leave(ctx, bootstrap.LeaveOptions{ClusterAccess: o.access(), Force: o.Force})
	if err != nil {
		return err
	}
	if o.Node.DryRun {
		return nil
	}
	if res.Removed {
		fmt.Fprintf(o.Out, "member %s removed", res.MemberID)
		if res.MovedLeaderTo != "" {
			fmt.Fprintf(o.Out, " (leadership moved to %s first)", res.MovedLeaderTo)
		}
		fmt.Fprintln(o.Out)
	}
	for _, c := range res.Cleaned {
		fmt.Fprintln(o.Out, c)
	}
	return nil
}

// ResetOptions are the options of `kubectl etcd reset`.
type ResetOptions struct {
	nodeOptions
	Yes bool
}

// NewCmdReset returns the reset command.
func NewCmdReset(f *cmdutil.Factory) *cobra.Command {
	o := &ResetOptions{nodeOptions: newNodeOptions()}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Delete this node's etcd manifest and data without touching the cluster",
		Long: `Undo init or join on this node only: delete the etcd static pod manifest
(the kubelet stops etcd) and clear the data directory it ran on (the
manifest's --data-dir, as kubeadm reset finds it). The certificates are
kept. The cluster is not told: if this node is still a member, run
'kubectl etcd leave' instead, or remove the member from another node.`,
		Example: `  # Clean up a node whose member was already removed
  sudo kubectl etcd reset --yes`,
		Args: cmdutil.ValidateArgs(cobra.NoArgs),
		RunE: cmdutil.RunE(f, o),
	}
	o.addCleanupFlags(cmd.Flags())
	cmdutil.AddYesFlag(cmd.Flags(), &o.Yes, "")
	return cmd
}

// Validate checks the directories.
func (o *ResetOptions) Validate() error { return o.Node.ValidateDirs() }

// Run resets.
func (o *ResetOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := o.Node.UseManifestDataDir(o.dataDirGiven); err != nil {
		return err
	}
	if !o.Node.DryRun {
		if err := cmdutil.Confirm(o.Factory, fmt.Sprintf("delete %s and the data in %s", o.Node.ManifestPath(), o.Node.DataDir), o.Yes); err != nil {
			return err
		}
	}
	cleaned, err := o.Node.Reset(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	for _, c := range cleaned {
		fmt.Fprintln(o.Out, c)
	}
	if !o.Node.DryRun && len(cleaned) == 0 {
		fmt.Fprintln(o.ErrOut, "nothing to clean up")
	}
	return nil
}
