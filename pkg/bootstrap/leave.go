package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// LeaveOptions shape a leave.
type LeaveOptions struct {
	// ClusterAccess reaches the cluster; without endpoints, the local
	// member's client URL from the manifest.
	ClusterAccess
	// Force removes the last member (the cluster's data is lost), or a
	// member whose removal leaves the cluster without a healthy quorum.
	Force bool
	// StopTimeout bounds the wait for the local etcd to stop after its
	// manifest is removed; 30s by default.
	StopTimeout time.Duration
}

// LeaveResult says what a leave did.
type LeaveResult struct {
	MemberID      string   `json:"memberID,omitempty"`
	Removed       bool     `json:"removed"`
	MovedLeaderTo string   `json:"movedLeaderTo,omitempty"`
	Cleaned       []string `json:"cleaned,omitempty"`
}

// Leave removes this node's member from the cluster, moving leadership
// away first when it leads, then stops the static pod by deleting its
// manifest and clears the data directory. It refuses to remove the last
// member, or one whose removal leaves too few healthy voters for a quorum,
// unless Force. A node that is no longer a member is only cleaned up, so
// Leave can be run again after a failure.
func (n *Node) Leave(ctx context.Context, opts LeaveOptions) (*LeaveResult, error) {
	if err := n.ValidateDirs(); err != nil {
		return nil, err
	}
	name, peerURLs, localURL, err := n.localIdentity()
	if err != nil {
		return nil, err
	}
	access := opts.ClusterAccess
	if len(access.Endpoints) == 0 {
		if localURL == "" {
			return nil, fmt.Errorf("no endpoints: pass --endpoints, or keep the manifest %s that names the local member", n.ManifestPath())
		}
		access.Endpoints = []string{localURL}
	}
	cfg, err := n.clusterConfig(access)
	if err != nil {
		return nil, err
	}
	cli, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	members, err := memberList(ctx, cfg, cli)
	if err != nil {
		if len(opts.Endpoints) == 0 {
			return nil, fmt.Errorf("%w; if this node's etcd is down, pass --endpoints of the other members", err)
		}
		return nil, err
	}
	res := &LeaveResult{}
	self := findSelf(members, name, peerURLs)
	if self == nil {
		n.logf("[etcd] %s is not a member of the cluster; cleaning up locally", name)
	} else {
		res.MemberID = cluster.FormatID(self.ID)
		if err := n.removeSelf(ctx, cfg, cli, members, self, opts, res); err != nil {
			return res, err
		}
	}
	cleaned, err := n.cleanLocal(ctx, localURL, opts.StopTimeout)
	res.Cleaned = cleaned
	return res, err
}

// localIdentity reads the member name and URLs from the manifest, falling
// back to the node's name.
func (n *Node) localIdentity() (name string, peerURLs []string, localURL string, err error) {
	m, err := staticpod.Read(n.ManifestPath())
	switch {
	case err == nil:
		name = m.Flags["name"]
		peerURLs = m.List("initial-advertise-peer-urls")
		localURL, _ = m.LocalClientURL()
	case errors.Is(err, os.ErrNotExist) && staticpod.Parked(n.ManifestPath()) == "":
		err = nil
	default:
		// A parked manifest says which member this is: the error says
		// how to put it back.
		return "", nil, "", err
	}
	if n.Name != "" {
		if name != "" && name != n.Name {
			return "", nil, "", fmt.Errorf("--name %s does not match the member %s that %s runs", n.Name, name, n.ManifestPath())
		}
		name = n.Name
	}
	if name == "" {
		return "", nil, "", fmt.Errorf("which member is this node? no manifest at %s: pass --name", n.ManifestPath())
	}
	return name, peerURLs, localURL, nil
}

func findSelf(members []*etcdserverpb.Member, name string, peerURLs []string) *etcdserverpb.Member {
	for _, u := range peerURLs {
		if m := findMember(members, u); m != nil {
			return m
		}
	}
	for _, m := range members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (n *Node) removeSelf(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, members []*etcdserverpb.Member, self *etcdserverpb.Member, opts LeaveOptions, res *LeaveResult) error {
	hexID := cluster.FormatID(self.ID)
	if len(members) == 1 {
		if !opts.Force {
			return fmt.Errorf("%s (%s) is the last member: removing it destroys the cluster and its data; pass --force to clean up this node anyway", self.Name, hexID)
		}
		n.logf("[etcd] %s is the last member: not removing it (etcd cannot), only cleaning up locally (--force)", self.Name)
		return nil
	}
	// Quorum after removal, counted on the voters that answer now.
	health, err := cluster.CheckHealth(ctx, cfg, cli)
	if err != nil {
		return err
	}
	healthy := map[uint64]bool{}
	for _, m := range members {
		for _, h := range health {
			if h.ID == cluster.FormatID(m.ID) {
				healthy[m.ID] = h.Healthy
			}
		}
	}
	target, err := removalCheck(members, self, healthy, opts.Force)
	if err != nil {
		return err
	}
	if n.DryRun {
		n.logf("[dry-run] would remove member %s (%s)", self.Name, hexID)
		return nil
	}
	if !self.IsLearner && target != nil {
		if moved, err := n.moveLeaderAway(ctx, cfg, cli, self, target); err != nil {
			return err
		} else if moved {
			res.MovedLeaderTo = target.Name
		}
	}
	// Ask another member, so the answer does not race our own shutdown.
	rcli := cli
	if target != nil {
		if ep := cfg.MemberEndpoint(target.ClientURLs); ep != "" {
			if c, err := cfg.ClientFor(ep); err == nil {
				defer c.Close()
				rcli = c
			}
		}
	}
	if err := removeMember(ctx, cfg, rcli, self.ID); err != nil {
		return err
	}
	res.Removed = true
	n.logf("[etcd] Removed member %s (%s) from the cluster", self.Name, hexID)
	return nil
}

// removalCheck decides whether self may be removed given which members
// answer now, and picks the healthy voter to hand leadership to. A voter
// may go when the voters left include a healthy quorum; a learner always.
func removalCheck(members []*etcdserverpb.Member, self *etcdserverpb.Member, healthy map[uint64]bool, force bool) (*etcdserverpb.Member, error) {
	var remaining, remainingHealthy int
	var target *etcdserverpb.Member
	for _, m := range members {
		if m.ID == self.ID || m.IsLearner {
			continue
		}
		remaining++
		if healthy[m.ID] {
			remainingHealthy++
			if target == nil {
				target = m
			}
		}
	}
	if self.IsLearner || force {
		return target, nil
	}
	if remaining == 0 {
		return nil, fmt.Errorf("%s is the last voting member: removing it leaves only learners; pass --force to do it anyway", self.Name)
	}
	if need := remaining/2 + 1; remainingHealthy < need {
		return nil, fmt.Errorf("removing %s leaves %d voters of which %d are healthy, fewer than the quorum of %d: fix the other members first, or pass --force", self.Name, remaining, remainingHealthy, need)
	}
	return target, nil
}

// moveLeaderAway hands leadership to target when self leads. MoveLeader
// must be sent to the leader itself.
func (n *Node) moveLeaderAway(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, self, target *etcdserverpb.Member) (bool, error) {
	ep := cfg.MemberEndpoint(self.ClientURLs)
	if ep == "" {
		return false, nil
	}
	sctx, cancel := cfg.WithCommandTimeout(ctx)
	st, err := cli.Status(sctx, ep)
	cancel()
	if err != nil || st.Leader != self.ID {
		return false, nil
	}
	lcli, err := cfg.ClientFor(ep)
	if err != nil {
		return false, err
	}
	defer lcli.Close()
	mctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	if _, err := lcli.MoveLeader(mctx, target.ID); err != nil {
		return false, fmt.Errorf("moving leadership from %s to %s: %w", self.Name, target.Name, err)
	}
	n.logf("[etcd] Moved leadership from %s to %s", self.Name, target.Name)
	return true, nil
}

// cleanLocal deletes the manifest (the kubelet then stops etcd), waits for
// the local member to stop answering, and clears the data directory.
func (n *Node) cleanLocal(ctx context.Context, localURL string, stopTimeout time.Duration) ([]string, error) {
	var cleaned []string
	path := n.ManifestPath()
	_, err := os.Stat(path)
	haveManifest := err == nil
	if n.DryRun {
		if haveManifest {
			n.logf("[dry-run] would delete %s, so the kubelet stops etcd", path)
		}
		entries, _ := dirEntries(n.DataDir)
		if len(entries) > 0 {
			n.logf("[dry-run] would clear data directory %s (%d entries)", n.DataDir, len(entries))
		}
		return nil, nil
	}
	if haveManifest {
		container := ""
		if m, err := staticpod.Read(path); err == nil {
			container = m.Pod.Spec.Containers[m.Container].Name
		}
		if err := os.Remove(path); err != nil {
			return cleaned, err
		}
		cleaned = append(cleaned, "deleted "+path)
		n.logf("[etcd] Deleted %s; the kubelet stops etcd", path)
		if localURL != "" {
			if stopTimeout <= 0 {
				stopTimeout = 30 * time.Second
			}
			if err := waitStopped(ctx, localURL, n.DataDir, stopTimeout); err != nil {
				return cleaned, fmt.Errorf("%w; the data directory %s was kept", err, n.DataDir)
			}
		}
		// A member that was just removed exits by itself and the
		// kubelet restarts it: a container started before the kubelet
		// saw the manifest go can open the data directory after the
		// waits above, and would write a new member into it once it is
		// cleared. The kubelet's pod directory outlives every container.
		if container != "" {
			if err := n.waitPodGone(ctx, container, stopTimeout); err != nil && ctx.Err() == nil {
				n.logf("[etcd] Note: %v; clearing the data directory anyway", err)
			}
			if held, err := datadir.Held(n.DataDir); err == nil && len(held) > 0 {
				return cleaned, fmt.Errorf("etcd started again and holds %s: the data directory %s was kept; run 'kubectl etcd reset' once the kubelet has stopped it", strings.Join(held, ", "), n.DataDir)
			}
		}
	}
	removed, err := clearDir(n.DataDir)
	if err != nil {
		return cleaned, err
	}
	if len(removed) > 0 {
		cleaned = append(cleaned, "cleared "+n.DataDir)
		n.logf("[etcd] Cleared data directory %s", n.DataDir)
	}
	n.logLeftovers("etcd", n.DataDir)
	return cleaned, nil
}

// waitStopped waits until nothing accepts connections on the local client
// URL after the manifest was taken away, and then until no process holds
// the files of the data directory, so the directory is not cleared, copied
// or moved (or etcd started again) under an etcd still shutting down: etcd
// closes its port before it lets go of its WAL and backend.
func waitStopped(ctx context.Context, localURL, dataDir string, timeout time.Duration) error {
	u, err := url.Parse(localURL)
	if err != nil {
		return fmt.Errorf("local client URL %q: %w", localURL, err)
	}
	deadline := time.Now().Add(timeout)
	err = poll.Until(ctx, "etcd to stop", 250*time.Millisecond, timeout, func(ctx context.Context) error {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", u.Host)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if conn != nil {
			conn.Close()
			return errors.New("it accepts connections")
		}
		return err
	})
	if errors.As(err, new(*poll.TimeoutError)) {
		return fmt.Errorf("etcd still listens on %s %s after its manifest was taken away: is the kubelet running?", localURL, timeout)
	}
	if err != nil || dataDir == "" {
		return err
	}
	var held []string
	err = poll.Until(ctx, "etcd to let go of its data", 100*time.Millisecond, max(time.Until(deadline), time.Second), func(context.Context) error {
		held, err = datadir.Held(dataDir)
		if err == nil && len(held) > 0 {
			return fmt.Errorf("%s still locked", strings.Join(held, ", "))
		}
		return err
	})
	if errors.As(err, new(*poll.TimeoutError)) && len(held) > 0 {
		return fmt.Errorf("etcd stopped answering on %s but a process still holds %s %s after its manifest was taken away (find it with 'fuser -v %s')", localURL, strings.Join(held, ", "), timeout, held[0])
	}
	return err
}

// waitPodGone waits until the kubelet has cleaned up every static pod with
// a container of this name, after their manifests went away. The kubelet
// removes KubeletRootDir/pods/UID only once none of the pod's containers
// runs (static pods have UIDs without dashes: hashes of their manifests).
// Without the kubelet's directory (another --root-dir, or no kubelet)
// there is nothing to wait for. The wait is bounded by timeout and 20 s:
// a stopped kubelet keeps the directories for good.
func (n *Node) waitPodGone(ctx context.Context, container string, timeout time.Duration) error {
	if n.KubeletRootDir == "" {
		return nil
	}
	return poll.Until(ctx, "the kubelet to clean up the stopped etcd pod", 100*time.Millisecond, min(timeout, 20*time.Second), func(context.Context) error {
		for _, d := range n.staticPodContainerDirs(container) {
			return fmt.Errorf("%s remains", d)
		}
		return nil
	})
}

// UseManifestDataDir points n at the data directory the etcd manifest on
// the node runs etcd on, as kubeadm reset finds it: after recover quorum
// or snapshot restore --manifest that is not the default any more, and
// clearing the default would remove the data kept for going back and
// leave the data etcd ran on. given says the caller chose n.DataDir
// (--data-dir); it must then be that directory. Without a manifest,
// n.DataDir stays; with one that does not say where the data is on the
// node, only a given n.DataDir is cleared.
func (n *Node) UseManifestDataDir(given bool) error {
	m, err := staticpod.Read(n.ManifestPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	dir := ""
	if err == nil {
		dir, err = m.HostDataDir()
	}
	if err != nil {
		if given {
			return nil
		}
		// err names the manifest.
		return fmt.Errorf("cannot tell which data directory etcd runs on: %v; pass --data-dir", err)
	}
	if given && filepath.Clean(n.DataDir) != filepath.Clean(dir) {
		return fmt.Errorf("--data-dir %s is not the data directory %s runs etcd on, %s: leave --data-dir out to clear that one", n.DataDir, n.ManifestPath(), dir)
	}
	if filepath.Clean(dir) == "/" {
		return fmt.Errorf("%s runs etcd on / as its data directory: refusing to clear it", n.ManifestPath())
	}
	n.DataDir = dir
	return nil
}

// Reset undoes init or join on this node only: it deletes the manifest and
// clears the data directory, and keeps the certificates. It does not touch
// the cluster: use Leave to remove the member first.
func (n *Node) Reset(ctx context.Context, stopTimeout time.Duration) ([]string, error) {
	if err := n.ValidateDirs(); err != nil {
		return nil, err
	}
	localURL := ""
	if m, err := staticpod.Read(n.ManifestPath()); err == nil {
		localURL, _ = m.LocalClientURL()
		n.warnIfStillMember(ctx, m.Flags["name"], m.List("initial-advertise-peer-urls"), localURL)
	}
	return n.cleanLocal(ctx, localURL, stopTimeout)
}

// warnIfStillMember tells, best effort, when the member being reset is
// still part of a cluster with other members: they will count it as down
// until it is removed.
func (n *Node) warnIfStillMember(ctx context.Context, name string, peerURLs []string, localURL string) {
	if localURL == "" {
		return
	}
	cfg, err := n.clusterConfig(ClusterAccess{Endpoints: []string{localURL}, DialTimeout: time.Second, CommandTimeout: 2 * time.Second})
	if err != nil {
		return
	}
	if _, err := cfg.Probe(ctx, localURL); err != nil {
		return
	}
	cli, err := cfg.Client()
	if err != nil {
		return
	}
	defer cli.Close()
	members, err := memberList(ctx, cfg, cli)
	if err != nil || len(members) < 2 {
		return
	}
	if self := findSelf(members, name, peerURLs); self != nil {
		n.logf("[etcd] Warning: %s (%s) is still a member of a %d-member cluster; the others will count it as down until it is removed ('kubectl etcd leave' removes it first)", name, cluster.FormatID(self.ID), len(members))
	}
}
