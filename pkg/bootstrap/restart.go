package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/status"
)

// RestartEtcd restarts this node's etcd static pod and waits until it
// serves quorum reads again, so an operator restarting node after node
// never takes down two members at once. The manifest is moved to a hidden
// file (the kubelet ignores those), the member stops, the manifest is put
// back and the kubelet starts it again.
func (n *Node) RestartEtcd(ctx context.Context, timeout time.Duration) error {
	path := n.ManifestPath()
	m, err := staticpod.Read(path)
	if err != nil {
		return fmt.Errorf("restarting etcd: %w", err)
	}
	localURL, err := m.LocalClientURL()
	if err != nil {
		return err
	}
	if n.DryRun {
		n.logf("[dry-run] would restart etcd by moving %s away and back, then wait until %s is healthy", path, localURL)
		return nil
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	parked := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".restarting")
	if err := os.Rename(path, parked); err != nil {
		return fmt.Errorf("restarting etcd: %w", err)
	}
	n.logf("[etcd] Moved %s away; waiting for etcd to stop", path)
	stopErr := n.waitStopped(ctx, localURL, timeout)
	// Put the manifest back whatever happened: a node without it has no etcd.
	if err := os.Rename(parked, path); err != nil {
		return fmt.Errorf("restoring %s from %s: %w", path, parked, err)
	}
	if stopErr != nil {
		return stopErr
	}
	n.logf("[etcd] Restored %s; waiting for etcd to serve again", path)
	return n.waitServing(ctx, localURL, timeout)
}

// waitServing waits until the member at url answers a quorum read.
func (n *Node) waitServing(ctx context.Context, url string, timeout time.Duration) error {
	cfg, err := n.clusterConfig(ClusterAccess{Endpoints: []string{url}})
	if err != nil {
		return err
	}
	return n.waitServingWith(ctx, cfg, url, timeout)
}

// waitServingWith is waitServing through a given connection configuration.
func (n *Node) waitServingWith(ctx context.Context, cfg *connect.Config, url string, timeout time.Duration) error {
	if err := status.WaitServing(ctx, cfg, []string{url}, timeout, nil); err != nil {
		return fmt.Errorf("etcd at %s after the restart: %w", url, err)
	}
	n.logf("[etcd] etcd at %s is serving", url)
	return nil
}
