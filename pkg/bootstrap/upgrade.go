package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
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
	// Confirm, when set, is asked before anything changes (not in a dry
	// run), with the image the manifest runs and the new one; an error
	// stops the upgrade.
	Confirm func(from, to string) error
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
	m, oldData, err := n.readManifest()
	if err != nil {
		return nil, fmt.Errorf("upgrading etcd: %w", err)
	}
	path := n.ManifestPath()
	oldImage := m.Pod.Spec.Containers[m.Container].Image
	target, err := opts.targetImage(oldImage)
	if err != nil {
		return nil, err
	}
	newImage := target.Repository + ":" + target.Tag
	res := &UpgradeResult{From: oldImage, To: newImage}
	inPlace := oldImage == newImage
	newManifest := oldData
	if !inPlace {
		if newManifest, err = withImage(m, newImage); err != nil {
			return nil, err
		}
	}
	if opts.Confirm != nil && !n.DryRun && !inPlace {
		if err := opts.Confirm(oldImage, newImage); err != nil {
			return res, err
		}
	}
	name := m.Flags["name"]
	out, err := n.rollOut(ctx, manifestRollout{
		RestartOptions: opts.RestartOptions,
		Verb:           "upgrade",
		Title:          fmt.Sprintf("upgrade of %s to %s", name, newImage),
		From:           oldImage,
		To:             newImage,
		Old:            oldData,
		M:              m,
		New:            newManifest,
		BackupDir:      opts.BackupDir,
		Now:            opts.Now,
		Preflight: func(ctx context.Context, env *rolloutEnv, plan *restartPlan) error {
			return n.upgradePreflight(ctx, env, plan, m, target.Version, opts.Force)
		},
		BackUp: func(ctx context.Context, env *rolloutEnv) error {
			return n.backUp(ctx, env)
		},
		Ready: func(s cluster.MemberStatus) error {
			if s.Version != target.Version.String() {
				return fmt.Errorf("reports version %s, want %s", s.Version, target.Version)
			}
			return nil
		},
		RollbackRefused: rollbackRefused(oldImage, newImage),
		InPlace:         inPlace,
		GoBack: func(prev *staticpod.EtcdManifest) string {
			return "kubectl etcd upgrade --image " + prev.Pod.Spec.Containers[prev.Container].Image
		},
		Serve:  "serve " + target.Version.String(),
		Serves: "serves version " + target.Version.String(),
		DryRun: func(env *rolloutEnv) {
			n.logf("[dry-run] would save a verified snapshot of %s and a copy of %s into %s", name, path, env.backupDir)
			n.logf("[dry-run] would write %s with image %s, then wait until %s serves, reports %s and catches up, or put the old manifest back", path, newImage, env.localURL, target.Version)
		},
	})
	res.BackupDir, res.RolledBack = out.BackupDir, out.RolledBack
	if err != nil {
		return res, err
	}
	return res, nil
}

// rollbackRefused says why a failed upgrade from oldImage to newImage
// must not put oldImage back: once every member has run the new release,
// the leader raises the cluster version to it, and an older etcd that
// finds a higher cluster version stops ("invalid downgrade; server version
// is lower than determined cluster version"), with its old data or not.
// The way back is then etcd's downgrade, which lowers the cluster version
// first. Any member but this one answers; none answering lets the
// rollback go ahead.
func rollbackRefused(oldImage, newImage string) func(ctx context.Context, env *rolloutEnv) error {
	return func(ctx context.Context, env *rolloutEnv) error {
		old, err := upgrade.ParseImage(oldImage)
		if err != nil {
			return nil
		}
		for _, m := range env.list {
			if m.ID == env.self.ID || m.Endpoint == "" {
				continue
			}
			cv, err := cluster.ClusterVersion(ctx, env.cfg, m.Endpoint)
			if err != nil {
				continue
			}
			v, err := version.ParseGeneric(cv)
			if err != nil {
				return nil
			}
			if v.Major() > old.Version.Major() || v.Major() == old.Version.Major() && v.Minor() > old.Version.Minor() {
				return fmt.Errorf("the cluster version is already %s (member %s), and etcd %d.%d stops on a cluster of a higher version (\"invalid downgrade\"), so putting %s back would leave %s down; find why %s does not come up (the kubelet's and the etcd container's logs), or go back the supported way: kubectl etcd downgrade enable %d.%d, then kubectl etcd upgrade --image %s on every node",
					cv, m.Name, old.Version.Major(), old.Version.Minor(), oldImage, env.self.Name, newImage, old.Version.Major(), old.Version.Minor(), oldImage)
			}
			return nil
		}
		return nil
	}
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

// upgradePreflight checks, after the restart preflight (plan), what an
// upgrade needs more: the versions and storage versions of every member,
// the version rules, the WAL of this node's member (manifest m) for
// entries the target cannot replay, and the free disk for the backup.
func (n *Node) upgradePreflight(ctx context.Context, env *rolloutEnv, plan *restartPlan, m *staticpod.EtcdManifest, target *version.Version, force bool) error {
	var ms []upgrade.Member
	var dbSize int64
	for _, s := range plan.statuses {
		sv := s.StorageVersion
		if sv == "" {
			sv = "none reported"
		}
		n.logf("[upgrade] member %s: version %s, storage version %s", s.Name, orNone(s.Version), sv)
		ms = append(ms, upgrade.Member{Name: s.Name, Version: s.Version, StorageVersion: s.StorageVersion, Learner: s.Learner})
		if s.ID == env.self.ID {
			dbSize = s.DBSize
		}
	}
	downgrade := downgradeTarget(ctx, env.cfg, env.cli, env.self.Endpoint)
	if downgrade != "" {
		n.logf("[upgrade] the cluster's downgrade is enabled for %s", downgrade)
	}
	findings := upgrade.Check(upgrade.Plan{Self: env.self.Name, Members: ms, Target: target, DowngradeTarget: downgrade})
	for _, f := range findings {
		n.logf("[upgrade] %s", f)
	}
	if err := upgrade.Err(findings); err != nil && !force {
		return err
	}
	if err := n.checkV2Entries(m, env.self.Name, target); err != nil && !force {
		return err
	}
	dir := env.backupDir
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free disk for the backup in %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	need := dbSize + dbSize/10
	n.logf("[upgrade] backup into %s: needs about %s, %s free", env.backupDir, humanize.IBytes(uint64(need)), humanize.IBytes(uint64(free)))
	if free < need && !force {
		return fmt.Errorf("upgrade refused: %s has %s free, the backup needs about %s; give --backup-dir on a larger disk", dir, humanize.IBytes(uint64(free)), humanize.IBytes(uint64(need)))
	}
	return nil
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

// backUp saves a verified snapshot of this member beside the copy of the
// manifest, then checks the snapshot's v3 members bucket against the raft
// membership (the #19557 trap) before anything changes.
func (n *Node) backUp(ctx context.Context, env *rolloutEnv) error {
	dir, self := env.backupDir, env.self
	snapPath := filepath.Join(dir, "snapshot.db")
	saved, err := (&snapshot.Saver{Config: env.cfg, Client: env.cli, Endpoint: env.localURL, Path: snapPath, Compression: snapshot.None, NoMetadata: true, Log: n.Log}).Save(ctx)
	if err != nil {
		return fmt.Errorf("backup before the upgrade: %w", err)
	}
	n.logf("[upgrade] Saved a verified snapshot of %s (%s, %s) and the manifest into %s", self.Name, saved.Verified, humanize.IBytes(uint64(saved.FileSize)), dir)
	bucket, err := upgrade.BucketMembers(snapPath)
	if err != nil {
		return fmt.Errorf("reading the members bucket of %s: %w", snapPath, err)
	}
	var raft []string
	for _, m := range env.list {
		raft = append(raft, m.ID)
	}
	if mismatch := upgrade.MembershipMismatch(raft, bucket); mismatch != "" {
		return fmt.Errorf("upgrade refused: the data of %s disagrees with the raft membership: %s", self.Name, mismatch)
	}
	n.logf("[upgrade] The v3 members bucket of %s agrees with the raft membership (%d members)", self.Name, len(raft))
	return nil
}
