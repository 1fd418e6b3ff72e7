package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// SnapshotRestore restores a snapshot as the only member of the etcd that a
// static pod manifest runs on this node: the disaster-recovery job of the
// etcd recovery guide, done in one go. The old data directory is never
// deleted: the snapshot goes into a fresh directory and the manifest is
// pointed at it.
type SnapshotRestore struct {
	// ManifestPath is the etcd static pod manifest.
	ManifestPath string
	// Restorer holds the snapshot file and how to restore it (hash check,
	// revision bump). Its DataDir, when set, is the new data directory on
	// the host; by default <old data dir>-restore-<UTC time>. Name and peer
	// URLs come from the manifest.
	snapshot.Restorer
	// Source is the snapshot as the user named it (an s3:// URL) when
	// SnapshotPath is a local copy fetched from it: the plan, the log and
	// the errors name it rather than the copy.
	Source string
	// BackupDir receives the original manifest; by default
	// etcd-restore-<UTC time> beside the manifests directory, where the
	// kubelet does not look.
	BackupDir string
	// Config reaches the local member (the manifest's client URL and
	// certificates) to wait for it to stop and to serve again.
	Config *connect.Config
	// Timeout bounds the wait for etcd to stop and the wait for it to serve
	// the restored data; 5 minutes by default.
	Timeout time.Duration
	// Now names the new directories; time.Now by default.
	Now func() time.Time
	// DryRun checks everything and prints the plan and the new manifest to
	// Node.Out, changing nothing.
	DryRun bool
	// Node gives the log and output streams.
	Node *Node
}

// RestorePlan is what a restore will do, as the preflight found it.
type RestorePlan struct {
	ManifestPath   string              `json:"manifestPath"`
	ManifestBackup string              `json:"manifestBackup"`
	OldDataDir     string              `json:"oldDataDir"`
	DataDir        string              `json:"dataDir"`
	Name           string              `json:"name"`
	PeerURLs       []string            `json:"peerURLs"`
	ClientURL      string              `json:"clientURL"`
	Snapshot       snapshot.FileStatus `json:"snapshot"`
	// Revision is the revision the member starts at after the restore.
	Revision  int64  `json:"revision"`
	NeedsEtcd string `json:"needsEtcd,omitempty"`
	// Running says whether etcd answered on ClientURL before the restore.
	Running bool `json:"running"`
	// ClusterToken is the --initial-cluster-token of the restored
	// cluster: the manifest's (else etcd's default) with -restore-<UTC
	// time>. etcd derives member and cluster IDs from the token and the
	// peer URLs, so with the old token a member first bootstrapped alone
	// (kubeadm's init, then joins) comes back with its old IDs, and the
	// old members, still running until their nodes are reset, reach it
	// as their peer: their raft messages (a heartbeat committing past its
	// log) crash it. A new token gives the restored cluster IDs of its
	// own, and their messages are refused as from another cluster.
	ClusterToken string   `json:"clusterToken"`
	Warnings     []string `json:"warnings,omitempty"`

	original []byte
	manifest []byte
	// token is the manifest's --initial-cluster-token, the base of
	// restored cluster.
	token string
}

// RestoreOutcome is what a restore did.
type RestoreOutcome struct {
	RestorePlan
	// ServedRevision is the revision the restored member reported once it
	// served again.
	ServedRevision int64 `json:"servedRevision"`
	// JoinSteps bring back the other members the snapshot names, one
	// command a node, for a restore of the whole cluster.
	JoinSteps []string      `json:"joinSteps,omitempty"`
	Took      time.Duration `json:"took"`
}

func (r *SnapshotRestore) logf(format string, args ...any) { r.Node.logf(format, args...) }

// source is the snapshot as the user named it.
func (r *SnapshotRestore) source() string {
	if r.Source != "" {
		return r.Source
	}
	return r.SnapshotPath
}

func (r *SnapshotRestore) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 5 * time.Minute
	}
	return r.Timeout
}

// Preflight checks the manifest and the snapshot and plans the restore,
// changing nothing.
func (r *SnapshotRestore) Preflight(ctx context.Context) (*RestorePlan, error) {
	if r.Node == nil {
		r.Node = NewNode()
	}
	stamp := backupStamp(r.Now)
	if err := CheckInterruptedRestore(r.ManifestPath); err != nil {
		return nil, err
	}
	lm, m, err := readLocalMember(r.ManifestPath, r.DataDir, r.BackupDir, "restore", "restore", stamp)
	if err != nil {
		return nil, err
	}
	p := &RestorePlan{
		ManifestPath: lm.ManifestPath, ManifestBackup: lm.ManifestBackup, OldDataDir: lm.OldDataDir, DataDir: lm.DataDir,
		Name: lm.Name, PeerURLs: lm.PeerURLs, ClientURL: lm.ClientURL, original: lm.original, token: lm.token,
	}
	p.ClusterToken = newClusterToken(p.token, r.InitialClusterToken, "restore", stamp)
	if _, err := os.Stat(p.ManifestBackup); err == nil {
		return nil, fmt.Errorf("preflight: %s already exists: an earlier restore keeps its manifest there; wait a second or choose another backup directory", p.ManifestBackup)
	}

	st, err := snapshot.Status(r.SnapshotPath, filepath.Dir(p.DataDir))
	if err != nil {
		var ce *snapshot.CorruptError
		if errors.As(err, &ce) {
			ce.Path = r.source()
		}
		return nil, fmt.Errorf("preflight: %w", err)
	}
	if st.HashCheck == snapshot.HashNoTrailer && !r.SkipHashCheck {
		return nil, fmt.Errorf("preflight: %w", &snapshot.CorruptError{Path: r.source(), Reason: "it has no sha256 trailer, so its integrity cannot be checked (is it truncated?); for member/snap/db copied out of a data directory pass --skip-hash-check"})
	}
	p.Snapshot = *st
	p.Snapshot.Path = r.source()
	p.Revision = st.Revision
	if r.MarkCompacted {
		p.Revision += int64(r.BumpRevision)
	}
	p.NeedsEtcd = snapshot.MinorVersion(st.StorageVersion)
	p.Warnings = restoreWarnings(m, p)

	if p.manifest, err = aloneManifest(m, p.DataDir, p.Name, p.PeerURLs, p.token, p.ClusterToken); err != nil {
		return nil, err
	}
	if r.Config != nil {
		_, err := r.Config.Probe(ctx, p.ClientURL)
		p.Running = err == nil
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("etcd did not answer: %v; the restore goes on, as moving the manifest away makes the kubelet stop the pod whatever its state", err))
		}
	}
	r.logf("[preflight] %s runs member %s (%s), data in %s; etcd answering: %v", p.ManifestPath, p.Name, p.ClientURL, p.OldDataDir, p.Running)
	r.logf("[preflight] snapshot %s: revision %d, sha256 trailer %s; the member will start at revision %d", p.Snapshot.Path, p.Snapshot.Revision, p.Snapshot.HashCheck, p.Revision)
	for _, w := range p.Warnings {
		r.logf("[preflight] warning: %s", w)
	}
	r.Node.logLeftovers("preflight", p.OldDataDir)
	return p, nil
}

// CheckInterruptedRestore explains a missing manifest that an earlier
// restore moved away: one killed after its first step leaves the node
// without etcd, and its backup of the manifest is the way back.
func CheckInterruptedRestore(manifestPath string) error {
	if _, err := os.Stat(manifestPath); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	backups, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(manifestPath)), "etcd-restore-*", filepath.Base(manifestPath)))
	if len(backups) == 0 {
		return nil
	}
	sort.Strings(backups) // named by time: the newest last
	return fmt.Errorf("preflight: %s does not exist, and an earlier restore kept a manifest in %s: if that restore was interrupted, copy it back to %s to run etcd on its old data again", manifestPath, backups[len(backups)-1], manifestPath)
}

// restoreWarnings lists what the operator should know before the restore.
func restoreWarnings(m *staticpod.EtcdManifest, p *RestorePlan) []string {
	var out []string
	var others []string
	for _, pair := range m.List("initial-cluster") {
		if n, _, _ := strings.Cut(pair, "="); n != p.Name {
			others = append(others, n)
		}
	}
	if len(others) > 0 {
		out = append(out, fmt.Sprintf("the manifest lists other members (%s): the restored cluster has only %s; stop etcd on those nodes and add them back with 'kubectl etcd reset' then 'kubectl etcd join'", strings.Join(others, ", "), p.Name))
	}
	image := m.Pod.Spec.Containers[m.Container].Image
	if _, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":"); ok && p.NeedsEtcd != "" {
		if have := snapshot.MinorVersion(strings.TrimPrefix(tag, "v")); have != "" && olderMinor(have, p.NeedsEtcd) {
			out = append(out, fmt.Sprintf("the snapshot needs etcd %s or newer, the manifest runs image %s: etcd will refuse the data; change the image first", p.NeedsEtcd, image))
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(m.Path), "kube-apiserver.yaml")); err == nil {
		out = append(out, "kube-apiserver runs on this node: after the restore restart kube-apiserver, kube-controller-manager, kube-scheduler and the kubelets so none keeps state newer than the snapshot")
	}
	return out
}

// olderMinor compares "3.6" < "3.7".
func olderMinor(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := range 2 {
		x, err1 := strconv.Atoi(pa[i])
		y, err2 := strconv.Atoi(pb[i])
		if err1 != nil || err2 != nil {
			return false
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Run restores: preflight, move the manifest aside so the kubelet stops
// etcd, wait until etcd stopped answering, restore into the new data
// directory, write the manifest pointing at it, wait until etcd serves.
// When a step fails the original manifest is put back (the old data was
// never touched) and the error says how things stand.
func (r *SnapshotRestore) Run(ctx context.Context) (*RestoreOutcome, error) {
	p, err := r.Preflight(ctx)
	if err != nil {
		return nil, err
	}
	return r.RunPlan(ctx, p)
}

// RunPlan is Run with the plan of an earlier Preflight, so a command can
// show it and ask before anything changes without checking the snapshot
// twice.
func (r *SnapshotRestore) RunPlan(ctx context.Context, p *RestorePlan) (*RestoreOutcome, error) {
	start := time.Now()
	if p == nil || p.manifest == nil {
		return nil, errors.New("no restore plan: call Preflight first")
	}
	out := &RestoreOutcome{RestorePlan: *p, JoinSteps: p.joinSteps()}
	if r.DryRun {
		r.logf("[dry-run] would move %s to %s, wait until etcd stops, restore into %s, write the manifest below to %s, and wait until etcd serves", p.ManifestPath, p.ManifestBackup, p.DataDir, p.ManifestPath)
		if len(out.JoinSteps) > 0 {
			r.logf("[dry-run] then, to restore the whole cluster, on the other nodes of the snapshot:")
		}
		r.Node.dryRunEnd(out.JoinSteps, p.ManifestPath, p.manifest)
		return out, nil
	}
	if r.Config == nil {
		return nil, errors.New("no connection configuration to reach the local member")
	}

	// 1. Stop the static pod.
	if err := moveManifestAside(p.ManifestPath, p.ManifestBackup); err != nil {
		return nil, err
	}
	r.logf("[stop] Moved %s to %s; waiting for etcd to stop", p.ManifestPath, p.ManifestBackup)
	node := &Node{DataDir: p.OldDataDir, Log: r.Node.Log, KubeletRootDir: r.Node.KubeletRootDir}
	rollback := func(cause error, state string) error {
		since := time.Now()
		if werr := staticpod.WriteFile(p.ManifestPath, p.original); werr != nil {
			return fmt.Errorf("%w; putting the original manifest back failed too: %v: copy %s to %s by hand (the old data in %s is untouched)", cause, werr, p.ManifestBackup, p.ManifestPath, p.OldDataDir)
		}
		r.logf("[rollback] Put the original manifest back in %s: the kubelet starts etcd again on the old data in %s", p.ManifestPath, p.OldDataDir)
		if ctx.Err() != nil {
			// Interrupted: say what stands without waiting any longer.
			return fmt.Errorf("%w; the original manifest is back in place, so the kubelet starts etcd on the untouched old data in %s; %s", cause, p.OldDataDir, state)
		}
		if werr := node.waitServingWith(ctx, r.Config, p.ClientURL, r.timeout(), since); werr != nil {
			return fmt.Errorf("%w; the original manifest is back in place but etcd did not serve the old data in %s either: %v (check the kubelet and the etcd container log); %s", cause, p.OldDataDir, werr, state)
		}
		return fmt.Errorf("%w; the original manifest is back in place and etcd serves the old data again from %s; %s", cause, p.OldDataDir, state)
	}
	if err := waitStopped(ctx, p.ClientURL, p.OldDataDir, r.timeout()); err != nil {
		return nil, rollback(err, "nothing was restored")
	}
	r.logf("[stop] etcd stopped answering on %s", p.ClientURL)

	// 2. Restore into the new directory.
	rs := r.Restorer
	rs.DataDir, rs.Name, rs.PeerURLs, rs.InitialCluster = p.DataDir, p.Name, p.PeerURLs, ""
	rs.InitialClusterToken = p.ClusterToken
	r.logf("[restore] Restoring %s into %s as a new cluster (token %s)", p.Snapshot.Path, p.DataDir, p.ClusterToken)
	res, err := rs.Restore()
	if err != nil {
		return nil, rollback(fmt.Errorf("restoring: %w", err), "no restored data directory was left")
	}
	r.logf("[restore] Restored revision %d, bumped to %d", res.Snapshot.Revision, res.Revision)

	// 3. Point the manifest at it and let the kubelet start etcd.
	r.Node.waitPodCleanedUp(ctx, p.manifest, r.timeout())
	started := time.Now()
	if err := staticpod.WriteFile(p.ManifestPath, p.manifest); err != nil {
		return nil, rollback(err, fmt.Sprintf("the restored data is kept in %s", p.DataDir))
	}
	r.logf("[start] Wrote %s with the data volume and --data-dir on %s; waiting for etcd to serve", p.ManifestPath, p.DataDir)
	if err := node.waitServingWith(ctx, r.Config, p.ClientURL, r.timeout(), started); err != nil {
		return nil, rollback(fmt.Errorf("waiting for etcd on the restored data: %w", err), fmt.Sprintf("the restored data is kept in %s for a look (the etcd container log says why it did not serve)", p.DataDir))
	}
	out.ServedRevision = servedRevision(ctx, r.Config, p.ClientURL)
	out.Took = time.Since(start).Round(time.Millisecond)
	r.logf("[done] Member %s serves the snapshot at revision %d; the original manifest is kept in %s and the old data in %s", p.Name, out.ServedRevision, p.ManifestBackup, p.OldDataDir)
	return out, nil
}

// moveManifestAside moves the etcd manifest at path to backup, so that the
// kubelet stops etcd: the first step of a restore and of a recovery. When
// it fails nothing was changed, and the error says so.
func moveManifestAside(path, backup string) error {
	if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
		return fmt.Errorf("creating the manifest backup directory: %w", err)
	}
	if err := os.Rename(path, backup); err != nil {
		return fmt.Errorf("moving %s aside: %w (nothing was changed)", path, err)
	}
	return nil
}

// servedRevision is the revision the member at url reports; 0 when it does
// not answer.
func servedRevision(ctx context.Context, cfg *connect.Config, url string) int64 {
	cli, err := cfg.ClientFor(url)
	if err != nil {
		return 0
	}
	defer cli.Close()
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Status(rctx, url)
	if err != nil {
		return 0
	}
	return resp.Header.Revision
}

// NewManifest is the manifest the restore writes, for a dry run.
func (p *RestorePlan) NewManifest() []byte { return bytes.Clone(p.manifest) }

// newClusterToken is the --initial-cluster-token of a cluster a restore or
// recovery (suffix) makes anew at stamp: the manifest's token (else
// fallback, else etcd's default) with -suffix-stamp. etcd derives the
// member and cluster IDs of a cluster it bootstraps from the token and the
// peer URLs, so a new token gives the new cluster IDs of its own.
func newClusterToken(token, fallback, suffix, stamp string) string {
	base := token
	if base == "" {
		base = fallback
	}
	if base == "" {
		base = "etcd-cluster"
	}
	return base + "-" + suffix + "-" + strings.ToLower(stamp)
}

// aloneManifest is the manifest m of a member that a restore or recovery
// starts alone: the data volume, its mount and --data-dir on the new
// directory dataDir, this member (name at peerURLs) alone in
// --initial-cluster, and the new cluster token where the manifest named
// one (token).
func aloneManifest(m *staticpod.EtcdManifest, dataDir, name string, peerURLs []string, token, newToken string) ([]byte, error) {
	if err := m.MoveDataDir(dataDir); err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	pairs := make([]string, 0, len(peerURLs))
	for _, u := range peerURLs {
		pairs = append(pairs, name+"="+u)
	}
	m.SetFlag("initial-cluster", strings.Join(pairs, ","))
	m.SetFlag("initial-cluster-state", "")
	if token != "" {
		m.SetFlag("initial-cluster-token", newToken)
	}
	return m.Marshal()
}

// localMember is what a restore or a recovery learns of this node's member
// from its static pod manifest before it changes anything.
type localMember struct {
	ManifestPath, ManifestBackup string
	OldDataDir, DataDir          string
	Name                         string
	PeerURLs                     []string
	ClientURL                    string
	original                     []byte
	token                        string
}

// backupStamp is the time, now (time.Now when nil) in UTC, that names the
// directories a restore, a recovery or a rollout keeps the old manifest and
// data in: such names sort by when they were made.
func backupStamp(now func() time.Time) string {
	if now == nil {
		now = time.Now
	}
	return now().UTC().Format("20060102T150405Z")
}

// dryRunEnd ends the dry run of a restore or a recovery the same way: the
// commands left for the other nodes, then the manifest it would write.
func (n *Node) dryRunEnd(joinSteps []string, manifestPath string, manifest []byte) {
	for _, s := range joinSteps {
		n.logf("[dry-run]      %s", s)
	}
	if n.Out != nil {
		fmt.Fprintf(n.Out, "# [dry-run] would write %s\n%s", manifestPath, manifest)
	}
}

// readLocalMember reads the manifest at manifestPath and settles the
// directories a restore or recovery (noun, as the errors say it) uses: the
// new data directory (dataDir, else the old one with -suffix-stamp), which
// must be new and empty, and where the original manifest is kept
// (backupDir, else etcd-suffix-stamp beside the manifests directory).
func readLocalMember(manifestPath, dataDir, backupDir, noun, suffix, stamp string) (*localMember, *staticpod.EtcdManifest, error) {
	original, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, nil, fmt.Errorf("preflight: reading the etcd manifest: %w", err)
	}
	m, err := staticpod.Parse(manifestPath, original)
	if err != nil {
		return nil, nil, fmt.Errorf("preflight: %w", err)
	}
	lm := &localMember{ManifestPath: manifestPath, original: original, Name: m.Flags["name"], PeerURLs: m.List("initial-advertise-peer-urls"), token: m.Flags["initial-cluster-token"]}
	if lm.Name == "" || len(lm.PeerURLs) == 0 {
		return nil, nil, fmt.Errorf("preflight: %s: the etcd command lacks --name or --initial-advertise-peer-urls", manifestPath)
	}
	if lm.ClientURL, err = m.LocalClientURL(); err != nil {
		return nil, nil, fmt.Errorf("preflight: %w", err)
	}
	if lm.OldDataDir, err = m.HostDataDir(); err != nil {
		return nil, nil, fmt.Errorf("preflight: %w", err)
	}
	lm.DataDir = dataDir
	if lm.DataDir == "" {
		lm.DataDir = filepath.Clean(lm.OldDataDir) + "-" + suffix + "-" + stamp
	}
	if lm.DataDir, err = filepath.Abs(lm.DataDir); err != nil {
		return nil, nil, err
	}
	if lm.DataDir == filepath.Clean(lm.OldDataDir) {
		return nil, nil, fmt.Errorf("preflight: --data-dir %s is the current data directory: the %s goes into a new one, so the old data stays", lm.DataDir, noun)
	}
	if entries, err := os.ReadDir(lm.DataDir); err == nil && len(entries) > 0 {
		return nil, nil, fmt.Errorf("preflight: the new data directory %s is not empty: choose another --data-dir", lm.DataDir)
	}
	if backupDir == "" {
		backupDir = filepath.Join(filepath.Dir(filepath.Dir(manifestPath)), "etcd-"+suffix+"-"+stamp)
	}
	lm.ManifestBackup = filepath.Join(backupDir, filepath.Base(manifestPath))
	return lm, m, nil
}

// joinSteps bring back the members of the snapshot's cluster other than
// this node's, by the names and peer URLs the snapshot holds.
func (p *RestorePlan) joinSteps() []string {
	var others []otherNode
	for _, m := range p.Snapshot.Members {
		if m.Name == p.Name || m.Name == "" || len(m.PeerURLs) == 0 {
			continue
		}
		others = append(others, otherNode{Name: m.Name, PeerURL: m.PeerURLs[0]})
	}
	return joinSteps(others, readJoinTarget(p.ManifestPath, p.original, p.ClientURL))
}
