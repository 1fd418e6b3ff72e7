package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/proc"
	etcdcluster "github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

// cluster is a 3-member cluster of real etcd binaries on 127.0.0.1-3 with
// kubeadm-style TLS (the sandbox layout).
type cluster struct {
	state *sandbox.State
	cfg   *connect.Config
	cli   *clientv3.Client
	procs []*exec.Cmd
	etcd  string
}

func startCluster(ctx context.Context, dir, etcdDir string, quota int64, stopServingOnDefrag bool) (*cluster, error) {
	featureGates := ""
	if stopServingOnDefrag {
		// A member tells health-checking clients to go elsewhere while it
		// defragments.
		featureGates = etcdcluster.FeatureStopGRPCServiceOnDefrag + "=true"
	}
	state, err := sandbox.Prepare(sandbox.Spec{
		Dir:               filepath.Join(dir, "cluster"),
		Members:           3,
		ClientPort:        20000 + rand.IntN(30000),
		Token:             fmt.Sprintf("bench-%d", rand.Int()),
		QuotaBackendBytes: quota,
		FeatureGates:      featureGates,
	})
	if err != nil {
		return nil, fmt.Errorf("preparing the cluster: %w", err)
	}
	c := &cluster{state: state, etcd: filepath.Join(etcdDir, "etcd"), procs: make([]*exec.Cmd, len(state.Members))}
	for _, m := range state.Members {
		// Larger transactions than etcd's default 128 operations load a
		// million small keys in a few thousand requests. Nothing measured
		// writes.
		f, err := os.OpenFile(m.ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString("max-txn-ops: 1000\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	for i, m := range state.Members {
		log, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			c.stop()
			return nil, err
		}
		cmd := exec.Command(c.etcd, "--config-file", m.ConfigFile)
		cmd.Stdout, cmd.Stderr = log, log
		// The members die with this program, however it ends.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = cmd.Start()
		log.Close()
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("starting %s: %w", m.Name, err)
		}
		c.procs[i] = cmd
	}
	if c.cfg, err = state.Config(); err != nil {
		c.stop()
		return nil, err
	}
	c.cfg.CommandTimeout = time.Minute
	if c.cli, err = c.cfg.Client(); err != nil {
		c.stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.cli.Put(rctx, "/bench/started", time.Now().String())
		cancel()
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("the cluster did not start within a minute (logs in %s): %w", state.Dir, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// env is what etcdctl, etcdutl and kubectl-etcd need to reach the cluster.
func (c *cluster) env() []string {
	return append(os.Environ(), c.state.Exports()...)
}

// status returns each member's status: database size, raft term, leader.
func (c *cluster) status(ctx context.Context) ([]*clientv3.StatusResponse, error) {
	var out []*clientv3.StatusResponse
	for _, ep := range c.state.Endpoints() {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := c.cli.Status(rctx, ep)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", ep, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (c *cluster) stop() {
	if c.cli != nil {
		c.cli.Close()
	}
	for _, p := range c.procs {
		if p == nil {
			continue
		}
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		proc.Stop(p.Process, done)
	}
}
