package util

import "github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"

// LocalNode is this control-plane node for a command that rewrites its
// etcd manifest or restarts it (upgrade, config set, certs renew): the PKI
// of --pki-dir, the manifests and kubelet directories the command was
// given, and the command's streams for the node's output and progress.
func (f *Factory) LocalNode(manifestsDir, kubeletRootDir string, dryRun bool) *bootstrap.Node {
	n := bootstrap.NewNode()
	n.PKIDir = f.Connect.PKIDir
	n.ManifestsDir = manifestsDir
	n.KubeletRootDir = kubeletRootDir
	n.DryRun = dryRun
	n.Out, n.Log = f.Out, f.ErrOut
	return n
}
