// Package cmd builds the kubectl-etcd command tree.
package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/certs"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/codec"
	configcmd "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/config"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/downgrade"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/get"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/lock"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/member"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/node"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/put"
	recovercmd "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/recover"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/sandbox"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/stats"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/status"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/upgrade"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/version"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/watch"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// NewRootCommand returns `kubectl etcd` with every subcommand.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	f := &cmdutil.Factory{IOStreams: streams, Connect: connect.NewFlags()}
	root := &cobra.Command{
		Use:   "kubectl-etcd",
		Short: "Operate the etcd that holds a Kubernetes control plane",
		Long: `kubectl etcd reads, operates and bootstraps the etcd of a Kubernetes
control plane: member status and health, snapshots, defragmentation,
member changes with quorum safety, and the objects stored under /registry.

It reaches etcd directly (--endpoints with --cacert, --cert, --key, or the
ETCDCTL_* variables etcdctl uses); with no flags on a control-plane node,
through the etcd static pod manifest and the kubeadm certificates; and
anywhere else through the Kubernetes API with your kubeconfig: a
port-forward tunnel to each etcd pod when a client certificate is given
(--cacert/--cert/--key or --cert-secret), or etcdctl run inside the etcd
pods (reads, status, member list, defrag) when not. --via chooses, -v says
which way was taken and why.`,
		Example: `  # On a control-plane node: status of every member
  sudo kubectl etcd status

  # From anywhere, with the etcd client certificates
  kubectl etcd health --endpoints https://10.0.0.1:2379 --cacert ca.crt --cert client.crt --key client.key

  # From a laptop with a kubeconfig: tunnels to the etcd pods through the API server
  kubectl etcd status --cacert ca.crt --cert client.crt --key client.key -v

  # Without a client certificate: etcdctl runs in the etcd pods
  kubectl etcd member list -o wide --via exec

  # Practice on a local three-member cluster
  kubectl etcd sandbox up --dir /tmp/etcd-sandbox`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl etcd",
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	f.Connect.AddFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return cmdutil.UsageErrorf(cmd, "%v", err)
	})
	root.AddCommand(
		status.NewCmdStatus(f),
		status.NewCmdHealth(f),
		member.NewCmdMember(f),
		version.NewCmdVersion(f),
		sandbox.NewCmdSandbox(f),
		snapshot.NewCmdSnapshot(f),
		recovercmd.NewCmdRecover(f),
		maintenance.NewCmdDefrag(f),
		maintenance.NewCmdCompact(f),
		maintenance.NewCmdAlarm(f),
		maintenance.NewCmdCheck(f),
		doctor.NewCmdDoctor(f),
		node.NewCmdInit(f),
		node.NewCmdJoin(f),
		node.NewCmdLeave(f),
		node.NewCmdReset(f),
		certs.NewCmdCerts(f),
		get.NewCmdGet(f),
		codec.NewCmdDecode(f),
		codec.NewCmdEncode(f),
		put.NewCmdPut(f),
		put.NewCmdDel(f),
		stats.NewCmdStats(f),
		watch.NewCmdWatch(f),
		watch.NewCmdHistory(f),
		lock.NewCmdLock(f),
		upgrade.NewCmdUpgrade(f),
		downgrade.NewCmdDowngrade(f),
		configcmd.NewCmdConfig(f),
	)
	p := &profiling{}
	p.addFlags(root)
	finishEvery(root, f, p)
	return root
}

// finishEvery makes each command close what it opened to reach etcd (the
// port-forward tunnels) when it ends, pass or fail, and profiles it when
// asked.
func finishEvery(cmd *cobra.Command, f *cmdutil.Factory, p *profiling) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if err := p.start(); err != nil {
				return cmdutil.UsageErrorf(c, "%v", err)
			}
			err := f.Finish(run(c, args))
			if perr := p.stop(); err == nil && perr != nil {
				err = fmt.Errorf("writing the profile: %w", perr)
			}
			return err
		}
	}
	for _, sub := range cmd.Commands() {
		finishEvery(sub, f, p)
	}
}
