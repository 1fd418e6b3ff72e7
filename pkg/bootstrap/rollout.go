package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// readManifest reads this node's etcd manifest, after putting back one an
// interrupted restart left parked.
func (n *Node) readManifest() (*staticpod.EtcdManifest, []byte, error) {
	if err := n.recoverParkedManifest(); err != nil {
		return nil, nil, err
	}
	path := n.ManifestPath()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := staticpod.Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return m, data, nil
}

// manifestRollout is a change of this node's etcd manifest that restarts
// its member while the cluster serves: what upgrade and config set share.
// The kubelet restarts etcd when the manifest changes, so writing the new
// manifest is the restart.
type manifestRollout struct {
	RestartOptions
	// Verb tags progress lines ("[upgrade]") and names the default backup
	// directory (etcd-upgrade-TIME); Title names the change in errors
	// ("upgrade of cp-1 to IMAGE").
	Verb, Title string
	// From and To say what the old and the new manifest run, for
	// progress lines and errors ("image X", "--log-level=warn").
	From, To string
	// Old is the manifest as read, M parsed; New the manifest to write.
	Old []byte
	M   *staticpod.EtcdManifest
	New []byte
	// BackupDir receives the copy of the old manifest; by default a new
	// directory beside the manifests directory, stamped by Now.
	BackupDir string
	Now       func() time.Time

	// Preflight checks more than the restart preflight, under the lock
	// and in a dry run.
	Preflight func(ctx context.Context, env *rolloutEnv, plan *restartPlan) error
	// BackUp saves more than the copy of the old manifest before the
	// change (upgrade: a verified snapshot).
	BackUp func(ctx context.Context, env *rolloutEnv) error
	// Ready is what the gate waits for beyond serving and catching up,
	// from the member's status; Serve and Serves say it in progress lines
	// ("serve 3.7.3", "serves version 3.7.3").
	Ready         func(s cluster.MemberStatus) error
	Serve, Serves string
	// Done runs, still under the lock, once the member serves with the
	// new manifest (config set: records the values that must agree).
	Done func(ctx context.Context, env *rolloutEnv) error
	// RollbackRefused, when set, says why putting the old manifest back
	// would make matters worse (upgrade: the cluster version moved to the
	// new release, which the old one cannot join); the member then keeps
	// the new manifest and the error says what to do.
	RollbackRefused func(ctx context.Context, env *rolloutEnv) error
	// DryRun says what Preflight, BackUp and Ready would do.
	DryRun func(env *rolloutEnv)
	// InPlace: the manifest already says what was asked (New is Old).
	// A run interrupted during its gate, or killed after it wrote the
	// manifest, leaves it so, without the gate or the rollback, so the
	// command run again checks the member through the gate instead of
	// saying there is nothing to do.
	InPlace bool
	// GoBack is the command that asks for the manifest prev, from an
	// earlier backup, once it is back in place: it checks the member.
	// Empty when there is none.
	GoBack func(prev *staticpod.EtcdManifest) string
}

// rolloutEnv is the cluster as a rollout reached it.
type rolloutEnv struct {
	cfg       *connect.Config
	cli       *clientv3.Client
	op        *members.Operator
	self      cluster.Member
	list      []cluster.Member
	localURL  string
	backupDir string
}

// rolloutResult says where the backup went and whether the old manifest
// went back.
type rolloutResult struct {
	BackupDir  string
	RolledBack bool
}

// rollOut writes r.New as this node's manifest so that the cluster serves
// throughout, as RestartEtcd restarts: it takes the restart lock through
// the other members (nodes take turns), checks the restart preflight
// (every other member healthy, quorum to spare; --force overrides) and
// r.Preflight, copies the old manifest into the backup directory (and
// r.BackUp), moves leadership away when this member leads, and writes the
// manifest. The gate: the member serves, catches up with the leader and is
// r.Ready within the timeout; otherwise the old manifest goes back, and
// the error says what happened and whether the old one serves.
func (n *Node) rollOut(ctx context.Context, r manifestRollout) (rolloutResult, error) {
	var res rolloutResult
	path, m := n.ManifestPath(), r.M
	tag := "[" + r.Verb + "]"
	localURL, err := m.LocalClientURL()
	if err != nil {
		return res, err
	}
	if r.Timeout <= 0 {
		r.Timeout = 2 * time.Minute
	}
	name, peerURLs := m.Flags["name"], m.List("initial-advertise-peer-urls")
	if r.InPlace {
		n.logf("%s %s already has %s; checking that %s %s and catches up", tag, path, r.To, name, orDefault(r.Serves, "serves"))
	} else {
		n.logf("%s %s: %s -> %s", tag, name, r.From, r.To)
	}
	access := r.ClusterAccess
	if len(access.Endpoints) == 0 {
		access.Endpoints = []string{localURL}
	}
	cfg, err := n.clusterConfig(access)
	if err != nil {
		return res, err
	}
	cli, err := cfg.Client()
	if err != nil {
		return res, err
	}
	defer cli.Close()
	op := &members.Operator{Config: cfg, Client: cli, Progress: n.Log}
	var written time.Time // of the manifest in place
	if r.InPlace {
		written = manifestWritten(path)
		if len(r.ClusterAccess.Endpoints) == 0 {
			// Serving first: the member list is read through it.
			if err := cluster.WaitServing(ctx, cfg, []string{localURL}, r.Timeout, n.giveUpOnCrashLoop(written)); err != nil {
				return res, n.notInPlace(r, fmt.Errorf("etcd at %s: %w", localURL, err))
			}
		}
	}

	list, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		return res, fmt.Errorf("cannot read the cluster before the %s of %s: %w", r.Verb, name, err)
	}
	self := findSelfMember(list, name, peerURLs)
	if self == nil {
		return res, fmt.Errorf("member %s of %s is not in the cluster (members: %s)", name, path, members.List(list))
	}
	var others []string
	for _, o := range list {
		if o.ID != self.ID && o.Started && o.Endpoint != "" {
			others = append(others, o.Endpoint)
		}
	}
	if r.BackupDir == "" {
		r.BackupDir = filepath.Join(filepath.Dir(filepath.Clean(n.ManifestsDir)), "etcd-"+r.Verb+"-"+backupStamp(r.Now))
	}
	env := &rolloutEnv{cfg: cfg, cli: cli, op: op, self: *self, list: list, localURL: localURL, backupDir: r.BackupDir}
	if r.InPlace {
		if err := n.rolloutGate(ctx, env, r, written); err != nil {
			return res, n.notInPlace(r, err)
		}
		if r.Done != nil {
			if err := r.Done(ctx, env); err != nil {
				return res, err
			}
		}
		n.logf("%s %s runs %s; nothing to do", tag, name, r.To)
		return res, nil
	}
	res.BackupDir = r.BackupDir
	preflight := func() (*restartPlan, error) {
		plan, err := n.restartPreflight(ctx, op, *self, r.Force)
		if err != nil {
			return nil, err
		}
		if r.Preflight != nil {
			if err := r.Preflight(ctx, env, plan); err != nil {
				return nil, err
			}
		}
		return plan, nil
	}

	if n.DryRun {
		plan, err := preflight()
		if err != nil {
			return res, err
		}
		n.dryRunRestart(ctx, cfg, plan, others, localURL)
		if r.DryRun != nil {
			r.DryRun(env)
		}
		fmt.Fprintf(n.Out, "# %s\n%s", path, r.New)
		return res, nil
	}
	held, err := n.takeRestartLock(ctx, cfg, others, name, r.RestartOptions)
	if err != nil {
		return res, err
	}
	if held != nil {
		// Released even when the command is interrupted: the next node
		// need not wait for the lease to expire.
		defer func() {
			rctx, cancel := cfg.WithCommandTimeout(context.WithoutCancel(ctx))
			defer cancel()
			n.releaseRestartLock(rctx, held)
		}()
	}
	// Under the lock: another node may have changed its member meanwhile.
	plan, err := preflight()
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(r.BackupDir, 0o700); err != nil {
		return res, fmt.Errorf("backup directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.BackupDir, staticpod.ManifestFileName), r.Old, 0o600); err != nil {
		return res, fmt.Errorf("copying the manifest into %s: %w", r.BackupDir, err)
	}
	if r.BackUp != nil {
		if err := r.BackUp(ctx, env); err != nil {
			return res, err
		}
	} else {
		n.logf("%s Copied %s into %s", tag, path, r.BackupDir)
	}
	if plan.preflight.Transferee != nil {
		if err := op.MoveLeader(ctx, *plan.preflight.Transferee); err != nil {
			n.logf("%s Warning: %v; going on", tag, err)
		}
	}
	dataDir, err := m.HostDataDir()
	if err != nil {
		return res, err
	}
	n.logf("%s Moving %s away; waiting for %s to stop", tag, path, name)
	since := time.Now()
	if err := n.swapManifest(ctx, localURL, dataDir, r.Timeout, r.New); err != nil {
		return res, fmt.Errorf("%s: %w", r.Title, err)
	}
	n.logf("%s Wrote %s with %s; waiting for %s to %s", tag, path, r.To, name, orDefault(r.Serve, "serve"))
	if gateErr := n.rolloutGate(ctx, env, r, since); gateErr != nil {
		if ctx.Err() != nil {
			// Interrupted (Ctrl-C, SIGTERM, the terminal closed): a
			// rollback needs the waits the user has just stopped.
			return res, fmt.Errorf("%s interrupted while waiting for %s to %s (%v): the new manifest stays, and the kubelet runs it; run the same command again to check %s, or go back: %s",
				r.Title, name, orDefault(r.Serve, "serve"), gateErr, name, n.goBack(r, r.M, r.BackupDir))
		}
		if r.RollbackRefused != nil {
			if why := r.RollbackRefused(ctx, env); why != nil {
				return res, fmt.Errorf("%s failed: %v; the new manifest stays: %w; the backup is in %s", r.Title, gateErr, why, r.BackupDir)
			}
		}
		res.RolledBack = true
		since := time.Now()
		err := n.swapManifest(ctx, localURL, dataDir, r.Timeout, r.Old)
		if err != nil {
			// The new etcd would not stop: the old manifest goes in
			// its place all the same, so the node runs the old etcd.
			err = staticpod.WriteFile(path, r.Old)
		}
		if err != nil {
			return res, fmt.Errorf("%s did not come up on %s (%v), and putting back the old manifest failed: %w; the old manifest is in %s", name, r.To, gateErr, err, r.BackupDir)
		}
		n.logf("%s %s did not come up on %s: %v; put back the old manifest (%s)", tag, name, r.To, gateErr, r.From)
		if err := n.waitServingWith(ctx, cfg, localURL, r.Timeout, since); err != nil {
			return res, fmt.Errorf("%s failed (%v); the old manifest is back but etcd does not serve: %w; the backup is in %s", r.Title, gateErr, err, r.BackupDir)
		}
		return res, fmt.Errorf("%s failed: %v; rolled back to %s, which serves", r.Title, gateErr, r.From)
	}
	var all []string
	for _, s := range plan.statuses {
		if s.Started && s.Endpoint != "" {
			all = append(all, s.Endpoint)
		}
	}
	if err := cluster.WaitServing(ctx, cfg, all, r.Timeout, nil); err != nil {
		return res, fmt.Errorf("the cluster after the %s of %s: %w", r.Verb, name, err)
	}
	n.logf("%s %s runs %s; every member serves", tag, name, r.To)
	if r.Done != nil {
		if err := r.Done(ctx, env); err != nil {
			return res, err
		}
	}
	return res, nil
}

// notInPlace is the error of a member that does not run the manifest
// already in place: what an interrupted run left, and how to go back.
func (n *Node) notInPlace(r manifestRollout, err error) error {
	back := "no copy of the manifest before it was found in " + filepath.Join(filepath.Dir(filepath.Clean(n.ManifestsDir)), "etcd-"+r.Verb+"-*")
	if prev, dir := n.previousManifest(r); prev != nil {
		back = "go back to the manifest before it: " + n.goBack(r, prev, dir)
	}
	return fmt.Errorf("%s already has %s, but %s does not %s: %w; a kubectl etcd %s interrupted or killed after it wrote the manifest leaves it so, before its check and rollback; %s",
		n.ManifestPath(), r.To, r.M.Flags["name"], orDefault(r.Serve, "serve"), err, r.Verb, back)
}

// previousManifest is the newest copy of this node's manifest that a
// rollout of r.Verb kept in its default backup directory and that
// differs from the manifest now, and that directory; nil if there is
// none.
func (n *Node) previousManifest(r manifestRollout) (*staticpod.EtcdManifest, string) {
	dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Clean(n.ManifestsDir)), "etcd-"+r.Verb+"-*"))
	// The stamps sort as times: newest last.
	for i := len(dirs) - 1; i >= 0; i-- {
		path := filepath.Join(dirs[i], staticpod.ManifestFileName)
		data, err := os.ReadFile(path)
		if err != nil || bytes.Equal(data, r.Old) {
			continue
		}
		if prev, err := staticpod.Parse(path, data); err == nil {
			return prev, dirs[i]
		}
	}
	return nil, ""
}

// goBack says how to put back prev, the manifest kept in backup
// directory dir, as a rollback does, whether the member serves or not:
// the copy in place (the kubelet starts etcd from it), then r.GoBack,
// the same command for that manifest, which checks the member.
func (n *Node) goBack(r manifestRollout, prev *staticpod.EtcdManifest, dir string) string {
	steps := fmt.Sprintf("cp %s %s", filepath.Join(dir, staticpod.ManifestFileName), n.ManifestPath())
	if r.GoBack != nil {
		if check := r.GoBack(prev); check != "" {
			steps += ", then " + check + " (it checks the member)"
		}
	}
	return steps
}

// manifestWritten is when this node's manifest was last written: the
// kubelet's starts of etcd since then are the new manifest's.
func manifestWritten(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Now()
	}
	return fi.ModTime()
}

// rolloutGate waits until the member, whose new manifest went in at since,
// serves, is r.Ready and has applied what the leader had committed when it
// came back.
func (n *Node) rolloutGate(ctx context.Context, env *rolloutEnv, r manifestRollout, since time.Time) error {
	deadline := time.Now().Add(r.Timeout)
	self := env.self
	if err := n.waitServingWith(ctx, env.cfg, env.localURL, time.Until(deadline), since); err != nil {
		return err
	}
	var leaderIndex uint64
	return poll.Until(ctx, fmt.Sprintf("%s to %s and catch up with the leader", self.Name, orDefault(r.Serve, "serve")), 500*time.Millisecond, time.Until(deadline), func(ctx context.Context) error {
		statuses, err := env.op.Collect(ctx)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			if s.Leader && leaderIndex == 0 {
				leaderIndex = s.RaftIndex
			}
		}
		for _, s := range statuses {
			if s.ID != self.ID {
				continue
			}
			if !s.Healthy() {
				return errors.New(strings.Join(s.Errors, ", "))
			}
			if r.Ready != nil {
				if err := r.Ready(s); err != nil {
					return err
				}
			}
			switch {
			case leaderIndex == 0:
				return errors.New("no leader")
			case s.RaftAppliedIndex < leaderIndex:
				return fmt.Errorf("applied raft index %d, leader was at %d", s.RaftAppliedIndex, leaderIndex)
			}
			n.logf("[%s] %s %s and caught up with the leader (raft index %d)", r.Verb, self.Name, orDefault(r.Serves, "serves"), s.RaftAppliedIndex)
			return nil
		}
		return fmt.Errorf("%s is not in the member list", self.Name)
	})
}

// swapManifest replaces this node's manifest with data (nil: the same
// manifest again, a restart) so that the kubelet starts the new pod at
// once: it moves the manifest away (parked, so that a killed run leaves it
// to be put back), waits until etcd has stopped and let go of its data,
// then writes data. A manifest rewritten in place restarts etcd too, but
// the real kubelet starts the new pod of the same name only on a later
// sync: 10-16 s here, against about 4 s this way. If etcd does not stop,
// the manifest it had goes back and the error says so.
func (n *Node) swapManifest(ctx context.Context, localURL, dataDir string, timeout time.Duration, data []byte) error {
	path, parked := n.ManifestPath(), n.parkedManifestPath()
	if err := os.Rename(path, parked); err != nil {
		return fmt.Errorf("moving %s away: %w", path, err)
	}
	putBack := func(cause error) error {
		if err := os.Rename(parked, path); err != nil {
			return fmt.Errorf("%w; putting back %s from %s failed too: %v: move it back by hand", cause, path, parked, err)
		}
		return fmt.Errorf("%w; the manifest is back in place", cause)
	}
	if err := waitStopped(ctx, localURL, dataDir, timeout); err != nil {
		return putBack(err)
	}
	if data == nil {
		if err := os.Rename(parked, path); err != nil {
			return fmt.Errorf("putting back %s from %s: %w", path, parked, err)
		}
		return nil
	}
	n.waitPodCleanedUp(ctx, data, timeout)
	if ctx.Err() != nil {
		// Stopped before the change: the old etcd comes back.
		return putBack(ctx.Err())
	}
	if err := staticpod.WriteFile(path, data); err != nil {
		return putBack(fmt.Errorf("writing %s: %w", path, err))
	}
	return os.Remove(parked)
}

// podWorkerSettle is how long the kubelet may take, after it removed a
// stopped pod's directory, to let a new pod of the same name start: its
// housekeeping (every 2 s) removes the directory, and with it the pod's
// cgroups, as soon as the pod's containers are stopped, but the pod worker
// lets go of the name only once its next runtime relist (every 1 s) has
// seen them exit. Kubelet 1.37's logs at -v 4, on three nodes upgraded in
// turn: the name was let go 0.1 s after the directory went, and a manifest
// written in between waited 13 s (docs/benchmarks.md, "Rolling etcd
// upgrade"). A relist period, and as much again for a loaded machine.
const podWorkerSettle = 2 * time.Second

// waitPodCleanedUp waits, best effort, until the kubelet has cleaned up
// the stopped etcd pod and let go of its name. A new pod of the same name
// (the manifest data, changed) that arrives before that waits for the
// kubelet's pod worker back-off, 10 to 15 s; one that arrives after it
// starts at once.
func (n *Node) waitPodCleanedUp(ctx context.Context, manifest []byte, timeout time.Duration) {
	m, err := staticpod.Parse(n.ManifestPath(), manifest)
	if err != nil {
		return
	}
	container := m.Pod.Spec.Containers[m.Container].Name
	stopping := len(n.staticPodContainerDirs(container)) > 0
	if err := n.waitPodGone(ctx, container, timeout); err != nil {
		if ctx.Err() == nil {
			n.logf("[etcd] Note: %v; writing the new manifest anyway (the kubelet starts it once the old pod is gone)", err)
		}
		return
	}
	if stopping {
		select {
		case <-ctx.Done():
		case <-time.After(podWorkerSettle):
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
