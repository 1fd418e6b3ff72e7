package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/members"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// UpgradeOptions shape the change of this node's etcd image.
type UpgradeOptions struct {
	// RestartOptions bound the waits and the restart lock, shared with
	// RestartEtcd so upgrades and restarts on several nodes take turns.
	RestartOptions
	// Image is the new etcd image; when empty, Version with the
	// repository of the manifest's image.
	Image   string
	Version string
	// BackupDir receives the snapshot and the old manifest; by default a
	// new directory beside the manifests directory
	// (/etc/kubernetes/etcd-upgrade-TIME).
	BackupDir string
	// Now stamps the backup directory; time.Now when nil.
	Now func() time.Time
}

// UpgradeResult says what an upgrade did.
type UpgradeResult struct {
	From, To   string
	BackupDir  string
	RolledBack bool
}

// targetImage is the image the options ask for, from the manifest's.
func (o UpgradeOptions) targetImage(current string) (upgrade.Image, error) {
	if (o.Image == "") == (o.Version == "") {
		return upgrade.Image{}, errors.New("give exactly one of --image and --version")
	}
	if o.Image != "" {
		return upgrade.ParseImage(o.Image)
	}
	v, err := upgrade.TagVersion(o.Version)
	if err != nil {
		return upgrade.Image{}, fmt.Errorf("--version: %w", err)
	}
	cur, err := upgrade.ParseImage(current)
	if err != nil {
		return upgrade.Image{}, fmt.Errorf("--version needs the manifest's image to name its repository: %w; give --image", err)
	}
	return upgrade.ParseImage(cur.WithVersion(v))
}

// UpgradeEtcd changes the image of this node's etcd static pod to another
// etcd release while the cluster serves. Like RestartEtcd it takes the
// restart lock, so upgrades started on every node at once go one member
// at a time, and it checks the restart preflight (quorum to spare). Then
// the version rules (package upgrade) and the free disk for a backup; then
// it saves a verified snapshot of this member and a copy of the manifest
// into the backup directory, checks the snapshot's v3 members bucket
// against the raft membership, moves leadership away, and writes the
// manifest with the new image. The gate: the member serves, reports the
// new version, and catches up with the leader within Timeout; otherwise
// the old manifest goes back and the error says what happened.
func (n *Node) UpgradeEtcd(ctx context.Context, opts UpgradeOptions) (*UpgradeResult, error) {
	if err := n.recoverParkedManifest(); err != nil {
		return nil, err
	}
	path := n.ManifestPath()
	oldData, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("upgrading etcd: %w", err)
	}
	m, err := staticpod.Parse(path, oldData)
	if err != nil {
		return nil, fmt.Errorf("upgrading etcd: %w", err)
	}
	oldImage := m.Pod.Spec.Containers[m.Container].Image
	target, err := opts.targetImage(oldImage)
	if err != nil {
		return nil, err
	}
	newImage := target.Repository + ":" + target.Tag
	res := &UpgradeResult{From: oldImage, To: newImage}
	if oldImage == newImage {
		n.logf("[upgrade] %s already runs %s; nothing to do", path, newImage)
		return res, nil
	}
	localURL, err := m.LocalClientURL()
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	access := opts.ClusterAccess
	if len(access.Endpoints) == 0 {
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
	op := &members.Operator{Config: cfg, Client: cli, Progress: n.Log}
	name, peerURLs := m.Flags["name"], m.List("initial-advertise-peer-urls")
	n.logf("[upgrade] %s: %s -> %s", name, oldImage, newImage)

	list, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		return nil, fmt.Errorf("cannot read the cluster before upgrading %s: %w", name, err)
	}
	self := findSelfMember(list, name, peerURLs)
	if self == nil {
		return nil, fmt.Errorf("member %s of %s is not in the cluster (members: %s)", name, path, members.List(list))
	}
	var others []string
	for _, o := range list {
		if o.ID != self.ID && o.Started && o.Endpoint != "" {
			others = append(others, o.Endpoint)
		}
	}
	if opts.BackupDir == "" {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		opts.BackupDir = filepath.Join(filepath.Dir(filepath.Clean(n.ManifestsDir)), "etcd-upgrade-"+now().UTC().Format("20060102T150405Z"))
	}
	res.BackupDir = opts.BackupDir

	newManifest, err := withImage(m, newImage)
	if err != nil {
		return nil, err
	}
	if n.DryRun {
		plan, err := n.upgradePreflight(ctx, op, cli, *self, target.Version, opts)
		if err != nil {
			return nil, err
		}
		n.dryRunRestart(ctx, cfg, plan, others, localURL)
		n.logf("[dry-run] would save a verified snapshot of %s and a copy of %s into %s", name, path, opts.BackupDir)
		n.logf("[dry-run] would write %s with image %s, then wait until %s serves, reports %s and catches up, or put the old manifest back", path, newImage, localURL, target.Version)
		fmt.Fprintf(n.Out, "# %s\n%s", path, newManifest)
		return res, nil
	}
	held, err := n.takeRestartLock(ctx, cfg, others, name, opts.RestartOptions)
	if err != nil {
		return nil, err
	}
	if held != nil {
		defer n.releaseRestartLock(ctx, held)
	}
	// Under the lock: another node may have upgraded its member meanwhile.
	plan, err := n.upgradePreflight(ctx, op, cli, *self, target.Version, opts)
	if err != nil {
		return nil, err
	}
	if err := n.backUp(ctx, cfg, cli, *self, localURL, list, oldData, opts.BackupDir); err != nil {
		return nil, err
	}
	if plan.preflight.Transferee != nil {
		if err := op.MoveLeader(ctx, *plan.preflight.Transferee); err != nil {
			n.logf("[upgrade] Warning: %v; upgrading anyway", err)
		}
	}
	if err := staticpod.WriteFile(path, newManifest); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	n.logf("[upgrade] Wrote %s with image %s; waiting for %s to serve %s", path, newImage, name, target.Version)
	if gateErr := n.upgradeGate(ctx, cfg, op, *self, localURL, target.Version, opts.Timeout); gateErr != nil {
		res.RolledBack = true
		if err := staticpod.WriteFile(path, oldData); err != nil {
			return res, fmt.Errorf("%s did not come up on %s (%v), and putting back the old manifest failed: %w; the old manifest is in %s", name, newImage, gateErr, err, opts.BackupDir)
		}
		n.logf("[upgrade] %s did not come up on %s: %v; put back the old manifest (image %s)", name, newImage, gateErr, oldImage)
		if err := n.waitServingWith(ctx, cfg, localURL, opts.Timeout); err != nil {
			return res, fmt.Errorf("upgrade of %s to %s failed (%v); the old manifest is back but etcd does not serve: %w; the snapshot is in %s", name, newImage, gateErr, err, opts.BackupDir)
		}
		return res, fmt.Errorf("upgrade of %s to %s failed: %v; rolled back to %s, which serves", name, newImage, gateErr, oldImage)
	}
	var all []string
	for _, s := range plan.statuses {
		if s.Started && s.Endpoint != "" {
			all = append(all, s.Endpoint)
		}
	}
	if err := cluster.WaitServing(ctx, cfg, all, opts.Timeout, nil); err != nil {
		return res, fmt.Errorf("the cluster after upgrading %s: %w", name, err)
	}
	n.logf("[upgrade] %s runs %s; every member serves", name, target.Version)
	return res, nil
}

// withImage is the manifest with the etcd container's image replaced,
// and the flags the new release names differently renamed.
func withImage(m *staticpod.EtcdManifest, image string) ([]byte, error) {
	pod := m.Pod.DeepCopy()
	pod.Spec.Containers[m.Container].Image = image
	if err := flagsForImage(pod, image); err != nil {
		return nil, err
	}
	return staticpod.Marshal(pod)
}

// flagsForImage renames the etcd flags of pod that the release of image
// spells differently (upgrade.FlagChanges): 3.5 knows no --feature-gates,
// 3.7 no --experimental-* flags. An image whose tag names no release is
// left alone.
func flagsForImage(pod *corev1.Pod, image string) error {
	img, err := upgrade.ParseImage(image)
	if err != nil {
		return nil
	}
	m, err := staticpod.FromPod("the etcd pod", pod)
	if err != nil {
		return err
	}
	for flag, value := range upgrade.FlagChanges(m.Flags, img.Version) {
		m.SetFlag(flag, value)
	}
	return nil
}

// upgradePreflight prints and checks everything before the change: the
// restart preflight (health, quorum to spare, leadership), the versions
// and storage versions of every member, the version rules, and the free
// disk for the backup.
func (n *Node) upgradePreflight(ctx context.Context, op *members.Operator, cli *clientv3.Client, self cluster.Member, target *version.Version, opts UpgradeOptions) (*restartPlan, error) {
	plan, err := n.restartPreflight(ctx, op, self, opts.Force)
	if err != nil {
		return nil, err
	}
	var ms []upgrade.Member
	var dbSize int64
	for _, s := range plan.statuses {
		sv := s.StorageVersion
		if sv == "" {
			sv = "none reported"
		}
		n.logf("[upgrade] member %s: version %s, storage version %s", s.Name, orNone(s.Version), sv)
		ms = append(ms, upgrade.Member{Name: s.Name, Version: s.Version, StorageVersion: s.StorageVersion, Learner: s.Learner})
		if s.ID == self.ID {
			dbSize = s.DBSize
		}
	}
	downgrade := downgradeTarget(ctx, op.Config, cli, self.Endpoint)
	if downgrade != "" {
		n.logf("[upgrade] the cluster's downgrade is enabled for %s", downgrade)
	}
	findings := upgrade.Check(upgrade.Plan{Self: self.Name, Members: ms, Target: target, DowngradeTarget: downgrade})
	for _, f := range findings {
		n.logf("[upgrade] %s", f)
	}
	if err := upgrade.Err(findings); err != nil && !opts.Force {
		return nil, err
	}
	if err := n.checkV2Entries(self.Name, target); err != nil && !opts.Force {
		return nil, err
	}
	dir := opts.BackupDir
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("free disk for the backup in %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	need := dbSize + dbSize/10
	n.logf("[upgrade] backup into %s: needs about %s, %s free", opts.BackupDir, humanize.IBytes(uint64(need)), humanize.IBytes(uint64(free)))
	if free < need && !opts.Force {
		return nil, fmt.Errorf("upgrade refused: %s has %s free, the backup needs about %s; give --backup-dir on a larger disk", dir, humanize.IBytes(uint64(free)), humanize.IBytes(uint64(need)))
	}
	return plan, nil
}

func orNone(s string) string {
	if s == "" {
		return "unknown (no answer)"
	}
	return s
}

// downgradeTarget is the MAJOR.MINOR the cluster's downgrade is enabled
// for, as a member reports it (etcd 3.6 and later); empty when none.
func downgradeTarget(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, endpoint string) string {
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Status(rctx, endpoint)
	if err != nil || resp.DowngradeInfo == nil || !resp.DowngradeInfo.Enabled {
		return ""
	}
	v, err := version.ParseGeneric(resp.DowngradeInfo.TargetVersion)
	if err != nil {
		return resp.DowngradeInfo.TargetVersion
	}
	return fmt.Sprintf("%d.%d", v.Major(), v.Minor())
}

// backUp saves a verified snapshot of this member and the manifest into
// dir, then checks the snapshot's v3 members bucket against the raft
// membership (the #19557 trap) before anything changes.
func (n *Node) backUp(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, self cluster.Member, localURL string, list []cluster.Member, manifest []byte, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, staticpod.ManifestFileName), manifest, 0o600); err != nil {
		return fmt.Errorf("copying the manifest into %s: %w", dir, err)
	}
	snapPath := filepath.Join(dir, "snapshot.db")
	saved, err := (&snapshot.Saver{Config: cfg, Client: cli, Endpoint: localURL, Path: snapPath, Compression: snapshot.None, NoMetadata: true, Log: n.Log}).Save(ctx)
	if err != nil {
		return fmt.Errorf("backup before the upgrade: %w", err)
	}
	n.logf("[upgrade] Saved a verified snapshot of %s (%s, %s) and the manifest into %s", self.Name, saved.Verified, humanize.IBytes(uint64(saved.FileSize)), dir)
	bucket, err := upgrade.BucketMembers(snapPath)
	if err != nil {
		return fmt.Errorf("reading the members bucket of %s: %w", snapPath, err)
	}
	var raft []string
	for _, m := range list {
		raft = append(raft, m.ID)
	}
	if mismatch := upgrade.MembershipMismatch(raft, bucket); mismatch != "" {
		return fmt.Errorf("upgrade refused: the data of %s disagrees with the raft membership: %s", self.Name, mismatch)
	}
	n.logf("[upgrade] The v3 members bucket of %s agrees with the raft membership (%d members)", self.Name, len(raft))
	return nil
}

// upgradeGate waits until the member serves, reports the target version
// and has applied what the leader had committed when it came back.
func (n *Node) upgradeGate(ctx context.Context, cfg *connect.Config, op *members.Operator, self cluster.Member, localURL string, target *version.Version, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := n.waitServingWith(ctx, cfg, localURL, timeout); err != nil {
		return err
	}
	var leaderIndex uint64
	return poll.Until(ctx, fmt.Sprintf("%s to serve %s and catch up with the leader", self.Name, target), 500*time.Millisecond, time.Until(deadline), func(ctx context.Context) error {
		statuses, err := op.Collect(ctx)
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
			switch {
			case !s.Healthy():
				return errors.New(strings.Join(s.Errors, ", "))
			case s.Version != target.String():
				return fmt.Errorf("reports version %s, want %s", s.Version, target)
			case leaderIndex == 0:
				return errors.New("no leader")
			case s.RaftAppliedIndex < leaderIndex:
				return fmt.Errorf("applied raft index %d, leader was at %d", s.RaftAppliedIndex, leaderIndex)
			}
			n.logf("[upgrade] %s serves version %s and caught up with the leader (raft index %d)", self.Name, s.Version, s.RaftAppliedIndex)
			return nil
		}
		return fmt.Errorf("%s is not in the member list", self.Name)
	})
}
