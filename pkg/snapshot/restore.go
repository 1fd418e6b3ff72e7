package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
)

// DefaultBumpRevision is what the etcd recovery guide recommends for a
// Kubernetes control plane: far above any revision a watcher has seen.
const DefaultBumpRevision = 1_000_000_000

// Restorer makes a new data directory for one member from a snapshot file,
// through etcdutl's restore.
type Restorer struct {
	SnapshotPath string
	DataDir      string
	// Name, PeerURLs, InitialCluster and InitialClusterToken describe the
	// member and the new cluster, as etcd's flags of the same names.
	Name                string
	PeerURLs            []string
	InitialCluster      string
	InitialClusterToken string
	// SkipHashCheck accepts a file without a valid sha256 trailer, such as
	// member/snap/db copied out of a data directory.
	SkipHashCheck bool
	// BumpRevision raises the revision and MarkCompacted marks it
	// compacted, so watchers (the apiserver's watch cache) must re-list
	// instead of keeping deleted objects. Both or neither.
	BumpRevision  uint64
	MarkCompacted bool
}

// RestoreResult describes a restored data directory.
type RestoreResult struct {
	Snapshot FileStatus `json:"snapshot"`
	DataDir  string     `json:"dataDir"`
	Name     string     `json:"name"`
	PeerURLs []string   `json:"peerURLs"`
	// InitialCluster is the membership written into the data directory.
	InitialCluster      string `json:"initialCluster"`
	InitialClusterToken string `json:"initialClusterToken"`
	// Revision is the revision the restored member starts at. The
	// snapshot's key count is not read (Snapshot.TotalKeys is 0): counting
	// takes another pass over the whole file.
	Revision int64 `json:"revision"`
	// NeedsEtcd is the oldest etcd minor version that starts this data
	// ("3.6"), empty when the snapshot records no storage version.
	NeedsEtcd string `json:"needsEtcd,omitempty"`
}

// Validate checks the restore settings without touching any file.
func (r *Restorer) Validate() error {
	switch {
	case r.SnapshotPath == "":
		return errors.New("no snapshot file given")
	case r.DataDir == "":
		return errors.New("--data-dir is required: a new, empty directory for the member's data")
	case r.Name == "":
		return errors.New("--name is required: the member's name, as etcd's --name")
	case len(r.PeerURLs) == 0:
		return errors.New("--initial-advertise-peer-urls is required: the member's peer URLs, such as https://10.0.0.1:2380")
	case r.BumpRevision > 0 && !r.MarkCompacted:
		return errors.New("--bump-revision needs --mark-compacted: a bumped revision that is not compacted lets watchers resume across the gap")
	case r.MarkCompacted && r.BumpRevision == 0:
		return errors.New("--mark-compacted needs --bump-revision greater than 0")
	}
	if r.InitialCluster != "" && !strings.Contains(r.InitialCluster, r.Name+"=") {
		return fmt.Errorf("--initial-cluster %q does not list this member (%s=...)", r.InitialCluster, r.Name)
	}
	return nil
}

// Restore checks the snapshot, restores it into a fresh directory beside
// DataDir and renames that into place, so a failed or interrupted restore
// leaves no data directory that looks usable. It refuses a DataDir that
// is not empty.
func (r *Restorer) Restore() (res *RestoreResult, err error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if r.InitialCluster == "" {
		var pairs []string
		for _, u := range r.PeerURLs {
			pairs = append(pairs, r.Name+"="+u)
		}
		r.InitialCluster = strings.Join(pairs, ",")
	}
	if r.InitialClusterToken == "" {
		r.InitialClusterToken = "etcd-cluster"
	}
	dataDir, err := filepath.Abs(r.DataDir)
	if err != nil {
		return nil, err
	}
	existed := false
	if entries, err := os.ReadDir(dataDir); err == nil {
		if len(entries) > 0 {
			return nil, fmt.Errorf("refusing to restore into %s: it is not empty (move the old data aside, or choose a new --data-dir)", dataDir)
		}
		existed = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}

	// A plain file's trailer is checked by etcdutl as it copies the file,
	// rather than in a pass of its own.
	raw, st, cleanup, err := prepare(r.SnapshotPath, parent, true)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	etcdutlChecks := st.HashCheck == "" && hasTrailer(st.FileSize) && !r.SkipHashCheck
	if st.HashCheck == "" && !etcdutlChecks {
		st.HashCheck = HashNoTrailer
	}
	if st.HashCheck == HashNoTrailer && !r.SkipHashCheck {
		return nil, &CorruptError{Path: r.SnapshotPath, Reason: "it has no sha256 trailer, so its integrity cannot be checked: a file saved by etcd has one (is it truncated?); for member/snap/db copied out of a data directory pass --skip-hash-check"}
	}
	if err := peek(raw, r.SnapshotPath, st); err != nil {
		return nil, err
	}

	staging, err := os.MkdirTemp(parent, filepath.Base(dataDir)+datadir.StagingInfix)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
		}
	}()
	if err := r.run(raw, staging, !etcdutlChecks); err != nil {
		if strings.Contains(err.Error(), "expected sha256") {
			return nil, &CorruptError{Path: r.SnapshotPath, Reason: "the sha256 trailer does not match the data"}
		}
		return nil, fmt.Errorf("restoring %s: %w", r.SnapshotPath, err)
	}
	if etcdutlChecks {
		st.HashCheck = HashOK
	}
	if existed {
		if err := os.Remove(dataDir); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(staging, dataDir); err != nil {
		return nil, fmt.Errorf("moving the restored data into %s: %w", dataDir, err)
	}
	if err := fileutil.SyncDir(parent); err != nil {
		return nil, err
	}
	res = &RestoreResult{
		Snapshot: *st, DataDir: dataDir, Name: r.Name, PeerURLs: r.PeerURLs,
		InitialCluster: r.InitialCluster, InitialClusterToken: r.InitialClusterToken,
		Revision: st.Revision, NeedsEtcd: MinorVersion(st.StorageVersion),
	}
	if r.MarkCompacted {
		res.Revision += int64(r.BumpRevision)
	}
	return res, nil
}

// run calls etcdutl's restore, turning a panic on a damaged database into
// an error.
func (r *Restorer) run(raw, dir string, skipHashCheck bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the database is damaged: %v", p)
		}
	}()
	return etcdutl.NewV3(zap.NewNop()).Restore(etcdutl.RestoreConfig{
		SnapshotPath:        raw,
		Name:                r.Name,
		OutputDataDir:       dir,
		PeerURLs:            r.PeerURLs,
		InitialCluster:      r.InitialCluster,
		InitialClusterToken: r.InitialClusterToken,
		SkipHashCheck:       skipHashCheck,
		RevisionBump:        r.BumpRevision,
		MarkCompacted:       r.MarkCompacted,
	})
}

// MinorVersion turns a storage version such as "3.6.0" into "3.6"; "" when
// there is none.
func MinorVersion(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// NextSteps says, command by command, how to bring the restored member up.
func (res *RestoreResult) NextSteps() []string {
	need := "the etcd version that wrote the snapshot (it records no storage version, so it predates etcd 3.6)"
	if res.NeedsEtcd != "" {
		need = fmt.Sprintf("etcd %s or newer (storage version %s): an older etcd refuses it", res.NeedsEtcd, res.Snapshot.StorageVersion)
	}
	steps := []string{
		"Stop every kube-apiserver and every etcd member of the old cluster (on a kubeadm node: move /etc/kubernetes/manifests/kube-apiserver.yaml and etcd.yaml out of the manifests directory).",
	}
	others := otherMembers(res.InitialCluster, res.Name)
	if len(others) > 0 {
		steps = append(steps, fmt.Sprintf("Restore the SAME snapshot file on every other member listed in --initial-cluster (%s), each with its own --name and --initial-advertise-peer-urls, the same --initial-cluster and --initial-cluster-token %s.", strings.Join(others, ", "), res.InitialClusterToken))
	}
	steps = append(steps,
		fmt.Sprintf("Start etcd on the restored data with %s:\n       etcd --name %s --data-dir %s --initial-advertise-peer-urls %s --initial-cluster %s --initial-cluster-token %s --initial-cluster-state new  (plus your usual listen and TLS flags)\n     On a kubeadm node, point the etcd-data hostPath volume (and --data-dir) in etcd.yaml at %s, then put etcd.yaml back.",
			need, res.Name, res.DataDir, strings.Join(res.PeerURLs, ","), res.InitialCluster, res.InitialClusterToken, res.DataDir),
		"Check the cluster: kubectl etcd health && kubectl etcd status",
		"Start the kube-apiservers again (put kube-apiserver.yaml back), then restart kube-controller-manager, kube-scheduler and the kubelets so no component keeps state newer than the snapshot.",
	)
	return steps
}

func otherMembers(initialCluster, name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, pair := range strings.Split(initialCluster, ",") {
		n, _, _ := strings.Cut(pair, "=")
		if n != name && n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
