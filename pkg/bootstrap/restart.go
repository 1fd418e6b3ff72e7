package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/lock"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// RestartLockName is the etcd lock a restart holds while this node's
// member is down, so restarts started on several nodes at once (a script
// run on every control-plane node in parallel) take turns.
const RestartLockName = "/kubectl-etcd/locks/etcd-restart"

// RestartOptions shape a restart of this node's etcd.
type RestartOptions struct {
	// ClusterAccess reaches the cluster for the preflight; without
	// endpoints, the local member's client URL from the manifest.
	ClusterAccess
	// Timeout bounds each wait: for etcd to stop, to serve again, and for
	// every member to be healthy again. 2 minutes by default.
	Timeout time.Duration
	// Force restarts even when the preflight refuses, or when the cluster
	// cannot be read or does not answer for the lock. A lock another node
	// holds is still waited for.
	Force bool
	// LockTimeout bounds the wait for the restart lock (0: wait forever).
	LockTimeout time.Duration
	// LockTTL is how long the lock outlives a restart that died; 60s by
	// default.
	LockTTL time.Duration
}

// restartPlan is the cluster as the preflight found it.
type restartPlan struct {
	statuses  []cluster.MemberStatus
	preflight members.Preflight
}

// RestartEtcd restarts this node's etcd static pod so that the cluster
// serves throughout. It takes the restart lock (RestartLockName) through
// the other members, so nodes take turns; then a preflight checks that
// every other member is healthy and that the others keep quorum while this
// one is down; leadership moves away first when this member leads. Then
// the manifest is moved to a hidden file (the kubelet ignores those), the
// member stops, the manifest is put back and the kubelet starts it again.
// The lock is released once this member serves and every member is
// healthy, so the next node never stops a member before this one is back.
//
// The lock comes before the preflight: a node that started at the same
// time as another must wait for it, not refuse because the other's member
// is down.
func (n *Node) RestartEtcd(ctx context.Context, opts RestartOptions) error {
	if err := n.recoverParkedManifest(); err != nil {
		return err
	}
	path := n.ManifestPath()
	m, err := staticpod.Read(path)
	if err != nil {
		return fmt.Errorf("restarting etcd: %w", err)
	}
	localURL, err := m.LocalClientURL()
	if err != nil {
		return err
	}
	dataDir, err := m.HostDataDir()
	if err != nil {
		return err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	access := opts.ClusterAccess
	localOnly := len(access.Endpoints) == 0
	if localOnly {
		access.Endpoints = []string{localURL}
	}
	cfg, err := n.clusterConfig(access)
	if err != nil {
		return err
	}
	cli, err := cfg.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	op := &members.Operator{Config: cfg, Client: cli, Progress: n.Log}
	name, peerURLs := m.Flags["name"], m.List("initial-advertise-peer-urls")

	// Without a cluster to check, only --force restarts, blind.
	blind := func(err error) error {
		if !opts.Force {
			return fmt.Errorf("%w; pass --force to restart without the preflight and the lock", err)
		}
		n.logf("[etcd] Warning: %v; --force: restarting without the preflight and the lock", err)
		if n.DryRun {
			n.logf("[dry-run] would move %s away until etcd stops, put it back, and wait until %s serves", path, localURL)
			return nil
		}
		return n.restartPod(ctx, localURL, dataDir, opts.Timeout)
	}
	// Who else is in the cluster: the lock is held through them.
	list, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		hint := ""
		if localOnly {
			hint = "; if this node's etcd is down, pass --endpoints of the other members"
		}
		return blind(fmt.Errorf("cannot read the cluster before restarting %s (%w)%s", name, err, hint))
	}
	self := findSelfMember(list, name, peerURLs)
	if self == nil {
		return blind(fmt.Errorf("member %s of %s is not in the cluster (members: %s)", name, path, members.List(list)))
	}
	var others []string
	for _, o := range list {
		if o.ID != self.ID && o.Started && o.Endpoint != "" {
			others = append(others, o.Endpoint)
		}
	}

	if n.DryRun {
		plan, err := n.restartPreflight(ctx, op, *self, opts.Force)
		if err != nil {
			return err
		}
		n.dryRunRestart(ctx, cfg, plan, others, localURL)
		return nil
	}
	held, err := n.takeRestartLock(ctx, cfg, others, name, opts)
	if err != nil {
		return err
	}
	if held != nil {
		defer n.releaseRestartLock(ctx, held)
	}
	plan, err := n.restartPreflight(ctx, op, *self, opts.Force)
	if err != nil {
		return err
	}
	if plan.preflight.Transferee != nil {
		if err := op.MoveLeader(ctx, *plan.preflight.Transferee); err != nil {
			// etcd hands leadership over itself when it stops gracefully;
			// if not, the others elect a leader within a second or so.
			n.logf("[etcd] Warning: %v; restarting anyway", err)
		}
	}
	if err := n.restartPod(ctx, localURL, dataDir, opts.Timeout); err != nil {
		return err
	}
	var all []string
	for _, s := range plan.statuses {
		if s.Started && s.Endpoint != "" {
			all = append(all, s.Endpoint)
		}
	}
	if err := cluster.WaitServing(ctx, cfg, all, opts.Timeout, nil); err != nil {
		return fmt.Errorf("the cluster after restarting %s: %w", name, err)
	}
	n.logf("[etcd] Every member serves: %s", strings.Join(all, ", "))
	return nil
}

// restartPreflight reads every member's status and checks the restart of
// this node's member, printing the verdict. A refused check is an error
// unless force.
func (n *Node) restartPreflight(ctx context.Context, op *members.Operator, self cluster.Member, force bool) (*restartPlan, error) {
	statuses, err := op.Collect(ctx)
	if err != nil {
		return nil, fmt.Errorf("preflight of the restart of %s: %w", self.Name, err)
	}
	p := members.Check(members.Views(statuses), members.Change{Kind: members.Restart, Target: self.ID})
	p.Write(n.Log, force)
	if p.Refused() && !force {
		return nil, p.Err()
	}
	return &restartPlan{statuses: statuses, preflight: p}, nil
}

// findSelfMember finds this node's member by its peer URLs, else its name.
func findSelfMember(list []cluster.Member, name string, peerURLs []string) *cluster.Member {
	for i, m := range list {
		for _, u := range m.PeerURLs {
			for _, want := range peerURLs {
				if strings.TrimSuffix(u, "/") == strings.TrimSuffix(want, "/") {
					return &list[i]
				}
			}
		}
	}
	for i, m := range list {
		if m.Name == name {
			return &list[i]
		}
	}
	return nil
}

// restartLock is the held restart lock and the client that keeps its
// lease alive.
type restartLock struct {
	held *lock.Held
	cli  *clientv3.Client
}

// takeRestartLock takes the restart lock through the other members (eps),
// waiting while another node holds it. With no other member (a one-member
// cluster, forced) there is no lock to take.
func (n *Node) takeRestartLock(ctx context.Context, cfg *connect.Config, eps []string, name string, opts RestartOptions) (*restartLock, error) {
	if len(eps) == 0 {
		n.logf("[etcd] No other member to hold lock %s through; restarting without it", RestartLockName)
		return nil, nil
	}
	lcli, err := cfg.ClientFor(eps...)
	if err != nil {
		return nil, err
	}
	ttl := opts.LockTTL
	if ttl <= 0 {
		ttl = 60 * time.Second
	}
	host, _ := os.Hostname()
	held, err := lock.Acquire(ctx, lcli, lock.Options{
		Name:         RestartLockName,
		TTL:          ttl,
		Timeout:      opts.LockTimeout,
		GrantTimeout: cfg.CommandTimeout + cfg.DialTimeout,
		Owner:        restartLockOwner(name, host, os.Getpid()),
		Waiting: func(holder string) {
			if holderGone(holder, host) {
				n.logf("[etcd] Waiting for lock %s: held by %s, a process of this host that is gone (killed?); the lock frees itself when its lease expires, at most %s after it died", RestartLockName, holder, ttl)
				return
			}
			n.logf("[etcd] Waiting for lock %s: another node restarts its etcd; held by %s", RestartLockName, holder)
		},
	})
	if err != nil {
		lcli.Close()
		if opts.Force && !errors.Is(err, lock.ErrTimeout) && ctx.Err() == nil {
			n.logf("[etcd] Warning: %v; --force: restarting without the lock", err)
			return nil, nil
		}
		return nil, fmt.Errorf("restarting %s: %w", name, err)
	}
	n.logf("[etcd] Took lock %s (through %s)", RestartLockName, strings.Join(eps, ", "))
	return &restartLock{held: held, cli: lcli}, nil
}

// restartLockOwner is how a holder of the restart lock describes itself
// to those who wait (lock.Holder): holderGone reads it back.
func restartLockOwner(member, host string, pid int) string {
	return fmt.Sprintf("member %s on host %s, pid %d", member, host, pid)
}

var restartLockOwnerHostPID = regexp.MustCompile(`on host (\S+), pid (\d+)\)$`)

// holderGone reports whether holder, as lock.Holder gives it, is a
// process of this host (named host) that no longer runs: a restart or
// upgrade killed outright, whose lock stays until its lease expires. A
// pid taken since by another process reads as running: only the message
// depends on it.
func holderGone(holder, host string) bool {
	m := restartLockOwnerHostPID.FindStringSubmatch(holder)
	if m == nil || m[1] != host {
		return false
	}
	_, err := os.Stat("/proc/" + m[2])
	return errors.Is(err, fs.ErrNotExist)
}

// releaseRestartLock lets the next node restart.
func (n *Node) releaseRestartLock(ctx context.Context, l *restartLock) {
	defer l.cli.Close()
	select {
	case <-l.held.Lost():
		n.logf("[etcd] Warning: the lease of lock %s expired during the restart: another node may have restarted at the same time", RestartLockName)
		return
	default:
	}
	if err := l.held.Release(ctx); err != nil {
		n.logf("[etcd] Warning: releasing lock %s: %v; it frees itself when its lease expires", RestartLockName, err)
		return
	}
	n.logf("[etcd] Released lock %s", RestartLockName)
}

// dryRunRestart says what the restart would do.
func (n *Node) dryRunRestart(ctx context.Context, cfg *connect.Config, plan *restartPlan, others []string, localURL string) {
	if len(others) > 0 {
		state := "free now"
		if lcli, err := cfg.ClientFor(others...); err == nil {
			rctx, cancel := cfg.WithCommandTimeout(ctx)
			if h := lock.Holder(rctx, lcli, RestartLockName); h != lock.NoHolder {
				state = "held now by " + h
			}
			cancel()
			lcli.Close()
		}
		n.logf("[dry-run] would take lock %s through %s (%s)", RestartLockName, strings.Join(others, ", "), state)
	}
	if t := plan.preflight.Transferee; t != nil {
		n.logf("[dry-run] would move leadership to %s", t.Label())
	}
	n.logf("[dry-run] would move %s away until etcd stops, put it back, and wait until %s serves", n.ManifestPath(), localURL)
	n.logf("[dry-run] would wait until every member serves, then release the lock")
}

// parkedManifestPath is where a restart keeps the manifest while etcd is
// stopped: a hidden file in the same directory, which the kubelet ignores.
func (n *Node) parkedManifestPath() string { return staticpod.ParkedPath(n.ManifestPath()) }

// recoverParkedManifest puts back a manifest a restart moved away and
// never restored (the process was killed): without it the node runs no
// etcd.
func (n *Node) recoverParkedManifest() error {
	path, parked := n.ManifestPath(), n.parkedManifestPath()
	if _, err := os.Stat(parked); err != nil {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		// Both: the manifest was rewritten since; the parked one is stale.
		return os.Remove(parked)
	}
	if n.DryRun {
		n.logf("[dry-run] would put back %s from %s, left by an interrupted restart", path, parked)
		return nil
	}
	if err := os.Rename(parked, path); err != nil {
		return fmt.Errorf("putting back %s from %s, left by an interrupted restart: %w", path, parked, err)
	}
	n.logf("[etcd] Put back %s from %s, left by an interrupted restart", path, parked)
	return nil
}

// restartPod moves the manifest away, waits for etcd to stop, puts the
// manifest back and waits until the member serves a quorum read.
func (n *Node) restartPod(ctx context.Context, localURL, dataDir string, timeout time.Duration) error {
	n.logf("[etcd] Moving %s away; waiting for etcd to stop", n.ManifestPath())
	since := time.Now()
	if err := n.swapManifest(ctx, localURL, dataDir, timeout, nil); err != nil {
		return fmt.Errorf("restarting etcd: %w", err)
	}
	n.logf("[etcd] Restored %s; waiting for etcd to serve again", n.ManifestPath())
	return n.waitServing(ctx, localURL, timeout, since)
}

// waitServing waits until the member at url, whose manifest went in at
// since, answers a quorum read.
func (n *Node) waitServing(ctx context.Context, url string, timeout time.Duration, since time.Time) error {
	cfg, err := n.clusterConfig(ClusterAccess{Endpoints: []string{url}})
	if err != nil {
		return err
	}
	return n.waitServingWith(ctx, cfg, url, timeout, since)
}

// waitServingWith is waitServing through a given connection configuration.
// It gives up before timeout when the kubelet keeps restarting etcd
// (giveUpOnCrashLoop).
func (n *Node) waitServingWith(ctx context.Context, cfg *connect.Config, url string, timeout time.Duration, since time.Time) error {
	if err := cluster.WaitServing(ctx, cfg, []string{url}, timeout, n.giveUpOnCrashLoop(since)); err != nil {
		return fmt.Errorf("etcd at %s after the restart: %w", url, err)
	}
	n.logf("[etcd] etcd at %s is serving", url)
	return nil
}
