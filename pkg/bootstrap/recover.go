package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// QuorumRecovery starts a cluster whose quorum is lost for good again from
// the most advanced data this node has: this member's, or a copy of
// another member's data directory. The original data directory is never
// written: the data is copied, the copy made a one-member cluster (etcd's
// force-new-cluster, which applies every committed entry of the WAL:
// through the embedded server when the manifest's image is the same etcd
// minor as this program's, else through that image as the static pod on
// the copy), saved as a snapshot and restored with the revision bumped and
// compacted (so kube-apiserver's watch caches re-list), and the manifest
// pointed at the result with this member alone.
type QuorumRecovery struct {
	// ManifestPath is this node's etcd static pod manifest.
	ManifestPath string
	// Config reaches the members (the manifest's client URL and
	// certificates).
	Config *connect.Config
	// Compare lists data directories copied from other nodes: the most
	// advanced copy (by committed index) is recovered from.
	Compare []string
	// Force recovers even when a quorum answers.
	Force bool
	// DataDir is the new data directory; <old>-recover-<UTC time> by
	// default.
	DataDir string
	// BackupDir receives the original manifest; etcd-recover-<UTC time>
	// beside the manifests directory by default.
	BackupDir string
	// BumpRevision is added to the revision, which is marked compacted.
	BumpRevision uint64
	// Timeout bounds each wait (etcd stopping, serving); 5 minutes.
	Timeout time.Duration
	Now     func() time.Time
	DryRun  bool
	Node    *Node
	// AfterStep, when set, is called after each step with its name; tests
	// interrupt the recovery there.
	AfterStep func(step string)
}

// MemberReach is one member of the cluster as the preflight saw it.
type MemberReach struct {
	// ID is the member ID in hex, as etcd prints it.
	ID        string `json:"id,omitempty"`
	Name      string `json:"name"`
	PeerURL   string `json:"peerURL"`
	ClientURL string `json:"clientURL,omitempty"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// RaftIndex is the committed index the member reports.
	RaftIndex uint64 `json:"raftIndex,omitempty"`
}

// Candidate is one data directory the recovery could start from.
type Candidate struct {
	Dir string `json:"dir"`
	// Member is the member whose data it is, by name when known.
	Member string `json:"member"`
	Commit uint64 `json:"commit"`
	// LastIndex is the WAL's last entry: those past Commit are not known
	// to be committed, and force-new-cluster drops them.
	LastIndex uint64 `json:"lastIndex"`
	Term      uint64 `json:"term"`
	Error     string `json:"error,omitempty"`
}

// RecoverPlan is what the recovery will do.
type RecoverPlan struct {
	ManifestPath   string        `json:"manifestPath"`
	ManifestBackup string        `json:"manifestBackup"`
	OldDataDir     string        `json:"oldDataDir"`
	WorkDir        string        `json:"workDir"`
	DataDir        string        `json:"dataDir"`
	Name           string        `json:"name"`
	PeerURLs       []string      `json:"peerURLs"`
	ClientURL      string        `json:"clientURL"`
	Members        []MemberReach `json:"members"`
	QuorumAnswers  bool          `json:"quorumAnswers"`
	// Committed is this member's committed index.
	Committed  uint64      `json:"committed"`
	Candidates []Candidate `json:"candidates"`
	// Source is the data directory recovered from.
	Source string `json:"source"`
	// ForceNewClusterImage is the etcd image that makes the one-member
	// cluster of the copy, run by the kubelet as the static pod: the
	// manifest's own, when its etcd is another minor than the one linked
	// into this program. Empty: the embedded etcd does it. A server writes
	// its own storage version into the data it opens, and an older etcd
	// refuses data of a newer storage version, so the embedded 3.7 would
	// leave data the member's 3.6 image does not start on; etcd 3.6's own
	// force-new-cluster keeps it 3.6, and the restore that follows keeps
	// the snapshot's storage version.
	ForceNewClusterImage string `json:"forceNewClusterImage,omitempty"`
	// ClusterToken is the --initial-cluster-token of the recovered
	// cluster: the manifest's (else etcd's default) with -recover-<UTC
	// time>. force-new-cluster keeps the member and cluster IDs, but the
	// recovery then restores a snapshot of the copy, and a restore
	// bootstraps a new cluster whose IDs etcd derives from the token and
	// the peer URLs: with the old token, a member first bootstrapped
	// alone (kubeadm's init node) gets its old member ID and its old
	// cluster ID back. The members the recovery drops are often only cut
	// off, not gone: if their nodes come back with their data before
	// they are reset, two of them make a quorum of the old cluster, and
	// their leader reaches this member at its peer URL as the member it
	// still is to them, under the cluster ID it expects. Seen on real
	// kubelets with the old token (the e2e test of issue 14, which brings
	// two such members back): the recovered member took the old leader's
	// entries and panicked applying them, in a crash loop, so the
	// recovered cluster was gone; snapshot restore --manifest met the same
	// (see RestorePlan.ClusterToken). With a new token the recovered
	// cluster has IDs of its own, their messages are refused as from
	// another cluster, and the data stays as recovered until they are
	// reset and join (the same test checks it).
	ClusterToken string `json:"clusterToken"`
	// CommitTo, when set, is the commit index the copy's WAL is given
	// before force-new-cluster (which drops the entries past it): the
	// compared data dirs show a majority held the source's entries up to
	// there (committedByMajority), or, with Elected, that raft would have
	// elected the source and committed its whole log (electedLog).
	CommitTo uint64 `json:"commitTo,omitempty"`
	// Elected: the source's log is at least as up to date as those of
	// the other compared voters, a majority with it.
	Elected  bool     `json:"elected,omitempty"`
	MayLose  []string `json:"mayLose,omitempty"`
	Running  bool     `json:"running"`
	Warnings []string `json:"warnings,omitempty"`

	original []byte
	manifest []byte
	token    string
	others   []MemberReach
}

// RecoverOutcome is what the recovery did.
type RecoverOutcome struct {
	RecoverPlan
	// Revision is the revision the recovered member serves at.
	Revision int64 `json:"revision"`
	// JoinSteps are the commands to run on the other nodes.
	JoinSteps []string      `json:"joinSteps"`
	Took      time.Duration `json:"took"`
}

func (r *QuorumRecovery) logf(format string, args ...any) { r.Node.logf(format, args...) }

func (r *QuorumRecovery) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 5 * time.Minute
	}
	return r.Timeout
}

// recoverBackupGlob finds manifests an interrupted recovery moved aside.
func recoverBackups(manifestPath string) []string {
	backups, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(manifestPath)), "etcd-recover-*", filepath.Base(manifestPath)))
	sort.Strings(backups)
	return backups
}

// UndoInterrupted puts back the manifest of a recovery that was killed
// while it was moved aside (the data directory was never touched), or
// while the manifest in place was the temporary one that runs the image
// with --force-new-cluster on the copy, and says so. It does nothing when
// the manifest in place is any other.
func UndoInterrupted(manifestPath string) (string, error) {
	current, err := os.ReadFile(manifestPath)
	if err == nil {
		backup := forceNewClusterBy(manifestPath, current)
		if backup == "" {
			return "", nil
		}
		data, err := os.ReadFile(backup)
		if err != nil {
			return "", err
		}
		// Written in place, the kubelet stops the temporary pod and
		// starts the original one: the same pod name, on the untouched
		// data.
		if err := staticpod.WriteFile(manifestPath, data); err != nil {
			return "", err
		}
		return backup, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	backups := recoverBackups(manifestPath)
	if len(backups) == 0 {
		return "", nil
	}
	last := backups[len(backups)-1]
	data, err := os.ReadFile(last)
	if err != nil {
		return "", err
	}
	if err := staticpod.WriteFile(manifestPath, data); err != nil {
		return "", err
	}
	return last, nil
}

// recoveredSuffix names the copy of the manifest a recovery wrote, kept
// beside the original it moved aside.
const recoveredSuffix = ".recovered"

// forceNewClusterSuffix names the copy of the temporary manifest a
// recovery runs the image with --force-new-cluster on the copy by, kept
// beside the original: a recovery killed while it was in place is known
// by it, and the next run puts the original back.
const forceNewClusterSuffix = ".force-new-cluster"

// forceNewClusterBy finds the earlier recovery whose temporary manifest
// (content current) is in place, and returns the original manifest it
// kept, or "".
func forceNewClusterBy(manifestPath string, current []byte) string {
	backups := recoverBackups(manifestPath)
	for i := len(backups) - 1; i >= 0; i-- {
		if data, err := os.ReadFile(backups[i] + forceNewClusterSuffix); err == nil && bytes.Equal(data, current) {
			return backups[i]
		}
	}
	return ""
}

// recoveredBy finds the earlier recovery that wrote the manifest in place
// (content current), by the copy it kept; it returns the original
// manifest that recovery kept, or "".
func recoveredBy(manifestPath string, current []byte) string {
	backups := recoverBackups(manifestPath)
	for i := len(backups) - 1; i >= 0; i-- {
		if data, err := os.ReadFile(backups[i] + recoveredSuffix); err == nil && bytes.Equal(data, current) {
			return backups[i]
		}
	}
	return ""
}

// alreadyRecovered explains a manifest in place that an earlier recovery
// wrote (backup is the original manifest it kept), for a cluster still of
// this member alone: the recovery was done, or killed while it waited for
// etcd on the recovered data. It says what to run next.
func (r *QuorumRecovery) alreadyRecovered(p *RecoverPlan, backup string) error {
	if p.QuorumAnswers {
		var others []otherNode
		if om, err := staticpod.Read(backup); err == nil {
			if dir, err := om.HostDataDir(); err == nil {
				ins := datadir.Inspect(dir)
				for _, wm := range ins.WALMembers {
					fillMember(&wm, ins.DB)
					if wm.Name != p.Name && wm.Name != "" && len(wm.PeerURLs) > 0 {
						others = append(others, otherNode{Name: wm.Name, PeerURL: wm.PeerURLs[0]})
					}
				}
			}
		}
		steps := joinSteps(others, readJoinTarget(p.ManifestPath, p.original, p.ClientURL))
		msg := fmt.Sprintf("preflight: member %s already serves alone on the data an earlier recovery made (%s; its manifest is in place, the original kept in %s): that recovery is done", p.Name, p.OldDataDir, backup)
		if len(steps) > 0 {
			msg += "; bring back the other nodes, one at a time:\n  " + strings.Join(steps, "\n  ") + "\n"
		} else {
			msg += "; "
		}
		return errors.New(msg + fmt.Sprintf("to recover from the original data again instead, first run: cp %s %s (the kubelet then restarts etcd on it, which takes up to half a minute)", backup, p.ManifestPath))
	}
	return fmt.Errorf("preflight: the manifest in place is the one an earlier recovery wrote, and etcd does not serve on its data %s (the recovery was interrupted, or etcd does not start on it: see the etcd container's log); to go back to the original data, run: cp %s %s; once the kubelet has restarted etcd on it (up to half a minute), run the recovery again", p.OldDataDir, backup, p.ManifestPath)
}

// Preflight checks that quorum is really lost, finds the most advanced
// data and plans the recovery, changing nothing.
func (r *QuorumRecovery) Preflight(ctx context.Context) (*RecoverPlan, error) {
	if r.Node == nil {
		r.Node = NewNode()
	}
	stamp := backupStamp(r.Now)
	if err := CheckInterruptedRestore(r.ManifestPath); err != nil {
		return nil, err
	}
	if backup, err := UndoInterrupted(r.ManifestPath); err != nil {
		return nil, fmt.Errorf("preflight: putting back the manifest of an interrupted recovery: %w", err)
	} else if backup != "" {
		return nil, fmt.Errorf("preflight: an earlier recovery was interrupted with the manifest moved aside: it is back in %s from %s, and etcd starts on its untouched data; run the recovery again once it has", r.ManifestPath, backup)
	}
	lm, m, err := readLocalMember(r.ManifestPath, r.DataDir, r.BackupDir, "recovery", "recover", stamp)
	if err != nil {
		return nil, err
	}
	p := &RecoverPlan{
		ManifestPath: lm.ManifestPath, ManifestBackup: lm.ManifestBackup, OldDataDir: lm.OldDataDir, DataDir: lm.DataDir,
		WorkDir: lm.DataDir + datadir.WorkSuffix, Name: lm.Name, PeerURLs: lm.PeerURLs, ClientURL: lm.ClientURL, original: lm.original, token: lm.token,
		ClusterToken: newClusterToken(lm.token, "", "recover", stamp),
	}

	// Data the embedded etcd opens gets its storage version, which an
	// older image refuses, and the embedded etcd cannot open data of a
	// newer one: for an image of another minor the image itself makes the
	// one-member cluster.
	if have := imageMinor(m); have != "" && have != embeddedMinor() {
		p.ForceNewClusterImage = m.Pod.Spec.Containers[m.Container].Image
	}
	r.reachMembers(ctx, m, p)
	if backup := recoveredBy(p.ManifestPath, p.original); backup != "" && len(p.others) == 0 {
		return p, r.alreadyRecovered(p, backup)
	}
	if p.QuorumAnswers && !r.Force {
		return p, fmt.Errorf("preflight: refusing to recover: a quorum answers (%s), so the cluster is not lost; fix or replace the members that are down with 'kubectl etcd member remove' and 'kubectl etcd join' (pass --force to recover anyway, dropping the other members)", reachableNames(p.Members))
	}
	if err := r.pickSource(p); err != nil {
		return p, err
	}
	// The new manifest: the new data directory and this member alone.
	if p.manifest, err = aloneManifest(m, p.DataDir, p.Name, p.PeerURLs, p.token, p.ClusterToken); err != nil {
		return nil, err
	}
	r.printPreflight(p)
	return p, nil
}

// reachMembers asks every member listed in the manifest: this member's
// status (it answers without quorum), then a linearizable read, which
// only a quorum can serve.
func (r *QuorumRecovery) reachMembers(ctx context.Context, m *staticpod.EtcdManifest, p *RecoverPlan) {
	// Who the members are: this member's own list (a serializable read,
	// which needs no quorum), else the manifest's --initial-cluster.
	var listed []MemberReach
	if cli, err := r.Config.ClientFor(p.ClientURL); err == nil {
		sctx, cancel := r.Config.WithCommandTimeout(ctx)
		if st, err := cli.Status(sctx, p.ClientURL); err == nil {
			p.Running = true
			p.Committed = st.RaftIndex
		}
		if resp, err := cli.MemberList(sctx, clientv3.WithSerializable()); err == nil {
			for _, mm := range resp.Members {
				name := mm.Name
				if name == "" {
					name = unstartedName(fmt.Sprintf("%x", mm.ID))
				}
				mr := MemberReach{ID: fmt.Sprintf("%x", mm.ID), Name: name}
				if len(mm.PeerURLs) > 0 {
					mr.PeerURL = mm.PeerURLs[0]
				}
				if len(mm.ClientURLs) > 0 {
					mr.ClientURL = r.Config.MemberEndpoint(mm.ClientURLs)
				}
				listed = append(listed, mr)
			}
		}
		cancel()
		gctx, gcancel := r.Config.WithCommandTimeout(ctx)
		if _, err := cli.Get(gctx, "health"); err == nil {
			p.QuorumAnswers = true
		}
		gcancel()
		cli.Close()
	}
	if len(listed) == 0 {
		// A member restarted without quorum serves nobody (it waits to
		// publish itself through raft): its WAL knows the members. Past a
		// raft snapshot the WAL holds only their IDs (the snapshot's
		// configuration); the names and URLs are then in the v3 store's
		// members bucket, readable here when etcd does not hold the
		// database (else the recovery reads them from its copy).
		ins := datadir.Inspect(p.OldDataDir)
		for _, wm := range ins.WALMembers {
			if ins.WAL != nil && wm.ID == ins.WAL.MemberID {
				// The WAL's own member is this one, whatever it published.
				wm.Name = p.Name
			}
			fillMember(&wm, ins.DB)
			name := wm.Name
			if name == "" {
				name = unstartedName(wm.ID)
			}
			mr := MemberReach{ID: wm.ID, Name: name}
			if len(wm.PeerURLs) > 0 {
				mr.PeerURL = wm.PeerURLs[0]
			}
			if name == p.Name {
				mr.ClientURL = p.ClientURL
			} else if len(wm.ClientURLs) > 0 {
				mr.ClientURL = r.Config.MemberEndpoint(wm.ClientURLs)
			}
			listed = append(listed, mr)
		}
	}
	if len(listed) == 0 {
		for _, pair := range m.List("initial-cluster") {
			name, peer, _ := strings.Cut(pair, "=")
			mr := MemberReach{Name: name, PeerURL: peer}
			if name == p.Name {
				mr.ClientURL = p.ClientURL
			}
			listed = append(listed, mr)
		}
	}
	sort.Slice(listed, func(i, j int) bool { return listed[i].Name < listed[j].Name })
	// Every member at once: on the worst day most do not answer, and
	// each costs the command timeout.
	var wg sync.WaitGroup
	for i := range listed {
		mr := &listed[i]
		if mr.ClientURL == "" {
			mr.Error = "client URL unknown (it never started, or this member's list is not readable)"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli, err := r.Config.ClientFor(mr.ClientURL)
			if err != nil {
				mr.Error = err.Error()
				return
			}
			defer cli.Close()
			sctx, cancel := r.Config.WithCommandTimeout(ctx)
			defer cancel()
			if st, err := cli.Status(sctx, mr.ClientURL); err != nil {
				mr.Error = err.Error()
			} else {
				mr.Reachable, mr.RaftIndex = true, st.RaftIndex
			}
		}()
	}
	wg.Wait()
	p.Members = append(p.Members, listed...)
	p.setOthers()
}

// committedByMajority is how far raft's own rule commits the source's log
// beyond the commit index its WAL recorded: to the last entry that the
// compared data dirs of a majority of the voters hold with the same index
// and term, each of those members still in that term when it stopped. A
// leader answers a write once a majority holds it, but every member
// records the commit index only with a later entry (etcd writes a hard
// state that changes only the commit index without syncing it), so the
// last writes acknowledged before all the members holding them were killed
// are past the commit index in every WAL, and force-new-cluster would
// drop them. Held by a majority in the newest term any of them saw, no
// later leader could have been elected without them: they are committed,
// or would have been by the next heartbeat. 0 when there is nothing more.
func committedByMajority(source *datadir.Inspection, inspected []*datadir.Inspection) uint64 {
	if source == nil || source.WAL == nil {
		return 0
	}
	voters := voterIDs(source)
	// One log per member: two copies of one member's data count once.
	logs := map[string]*datadir.WAL{}
	for _, ins := range inspected {
		if ins == nil {
			continue // unusable
		}
		if w := ins.WAL; w != nil && voters[w.MemberID] && (logs[w.MemberID] == nil || logs[w.MemberID].LastIndex < w.LastIndex) {
			logs[w.MemberID] = w
		}
	}
	quorum := len(voters)/2 + 1
	if len(logs) < quorum {
		return 0
	}
	src := source.WAL
	var to uint64
	for i, term := range src.TailTerms {
		index := src.Commit + uint64(i) + 1
		held := 0
		for _, w := range logs {
			// The source commits the most: index is past every commit.
			if w.Term == term && index > w.Commit && index <= w.Commit+uint64(len(w.TailTerms)) && w.TailTerms[index-w.Commit-1] == term {
				held++
			}
		}
		if held < quorum {
			break
		}
		to = index
	}
	return to
}

// electedLog is the index in inspected (nil where a copy is unusable) of
// the log raft would elect among the compared voters, or -1. A candidate
// wins a vote when its log is at least as up to date as the voter's (the
// term of its last entry higher, or the same and the log as long), and
// once elected it commits its whole log with the first entry of its own
// term. A log at least as up to date as those of a majority of the voters
// (its own member among them) holds every committed entry, whichever
// members committed it: any commit majority shares a member with this one
// (raft's leader completeness). So its entries past the committed index
// are kept as that election would have kept them, among them writes only
// a follower held when the leader died, which committedByMajority cannot
// show committed. Its own member's vote counts; two copies of one member
// count once; a learner neither votes nor is elected.
func electedLog(inspected []*datadir.Inspection) int {
	best := -1
	for i, ins := range inspected {
		if ins == nil || ins.WAL == nil || !voterIDs(ins)[ins.WAL.MemberID] {
			continue // a learner's log is never elected
		}
		if best < 0 || atLeastAsUpToDate(ins.WAL, inspected[best].WAL) && (!atLeastAsUpToDate(inspected[best].WAL, ins.WAL) || ins.WAL.Commit > inspected[best].WAL.Commit) {
			best = i
		}
	}
	if best < 0 {
		return -1
	}
	src := inspected[best]
	voters := voterIDs(src)
	granted := map[string]bool{}
	for _, ins := range inspected {
		if ins == nil || ins.WAL == nil || !voters[ins.WAL.MemberID] {
			continue
		}
		if !atLeastAsUpToDate(src.WAL, ins.WAL) {
			return -1 // a voter this log may not win
		}
		granted[ins.WAL.MemberID] = true
	}
	if len(granted) < len(voters)/2+1 {
		return -1
	}
	return best
}

// voterIDs are the IDs of the voters in the membership ins's data has.
func voterIDs(ins *datadir.Inspection) map[string]bool {
	voters := map[string]bool{}
	for _, m := range ins.WALMembers {
		if !m.IsLearner {
			voters[m.ID] = true
		}
	}
	return voters
}

// atLeastAsUpToDate is raft's vote rule: whether log a is at least as up
// to date as log b.
func atLeastAsUpToDate(a, b *datadir.WAL) bool {
	return a.LastTerm > b.LastTerm || a.LastTerm == b.LastTerm && a.LastIndex >= b.LastIndex
}

// raiseCommit writes a hard state with the commit index raised to commit
// into the WAL of dataDir (the recovery's copy, never a member's own), so
// that force-new-cluster keeps the entries up to it. It returns the commit
// index the WAL had.
func raiseCommit(dataDir string, commit uint64) (uint64, error) {
	lg := zap.NewNop()
	walDir, snapDir := filepath.Join(dataDir, "member", "wal"), filepath.Join(dataDir, "member", "snap")
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return 0, err
	}
	start := &walpb.Snapshot{}
	switch s, err := snap.New(lg, snapDir).LoadNewestAvailable(walSnaps); {
	case err == nil:
		start = &walpb.Snapshot{Index: s.Metadata.Index, Term: s.Metadata.Term, ConfState: s.Metadata.ConfState}
	case !errors.Is(err, snap.ErrNoSnapshot):
		return 0, err
	}
	open := func() (*wal.WAL, *raftpb.HardState, []*raftpb.Entry, error) {
		w, err := wal.Open(lg, walDir, start)
		if err != nil {
			return nil, nil, nil, err
		}
		_, hs, ents, err := w.ReadAll()
		if err != nil {
			w.Close()
			return nil, nil, nil, err
		}
		return w, hs, ents, nil
	}
	w, hs, ents, err := open()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// A torn last record, as a killed member leaves it: etcd cuts it
		// off at start, and so does this.
		if !wal.Repair(lg, walDir) {
			return 0, fmt.Errorf("the WAL's torn tail cannot be repaired: %w", err)
		}
		w, hs, ents, err = open()
	}
	if err != nil {
		return 0, err
	}
	from := hs.GetCommit()
	if commit <= from {
		return from, w.Close()
	}
	if len(ents) == 0 || ents[len(ents)-1].GetIndex() < commit {
		w.Close()
		return 0, fmt.Errorf("its log ends before index %d", commit)
	}
	if err := w.Save(&raftpb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: &commit}, nil); err != nil {
		w.Close()
		return 0, err
	}
	// Close syncs what Save left unsynced, as a commit-only hard state.
	return from, w.Close()
}

// setOthers lists the members other than this one, for the join steps.
func (p *RecoverPlan) setOthers() {
	p.others = nil
	for _, mr := range p.Members {
		if mr.Name != p.Name {
			p.others = append(p.others, mr)
		}
	}
}

// unstartedName stands for a member whose name is not known: one that
// never started (it names itself when it does), or one the data at hand
// does not name.
func unstartedName(id string) string { return "<unstarted " + id + ">" }

// fillMember completes a member the WAL knows only by ID (past a raft
// snapshot) from the v3 store's members bucket of db, which may be nil or
// unreadable.
func fillMember(wm *datadir.Member, db *datadir.DB) {
	if db == nil || wm.Name != "" && len(wm.PeerURLs) > 0 {
		return
	}
	for _, dm := range db.Members {
		if dm.ID != wm.ID {
			continue
		}
		if wm.Name == "" {
			wm.Name = dm.Name
		}
		if len(wm.PeerURLs) == 0 {
			wm.PeerURLs = dm.PeerURLs
		}
		if len(wm.ClientURLs) == 0 {
			wm.ClientURLs = dm.ClientURLs
		}
	}
}

// nameMembers names the members the plan knows only by ID from the v3
// store's members bucket of db (a data directory's that etcd does not
// hold: a --compare copy, or the recovery's own copy), and lists the
// others again. It reports whether any member is still unnamed.
func (p *RecoverPlan) nameMembers(db *datadir.DB) bool {
	unnamed := false
	for i := range p.Members {
		mr := &p.Members[i]
		if mr.ID == "" || mr.Name != unstartedName(mr.ID) {
			continue
		}
		wm := datadir.Member{ID: mr.ID}
		if mr.PeerURL != "" {
			wm.PeerURLs = []string{mr.PeerURL}
		}
		fillMember(&wm, db)
		if wm.Name == "" {
			unnamed = true
			continue
		}
		mr.Name = wm.Name
		if mr.PeerURL == "" && len(wm.PeerURLs) > 0 {
			mr.PeerURL = wm.PeerURLs[0]
		}
	}
	sort.Slice(p.Members, func(i, j int) bool { return p.Members[i].Name < p.Members[j].Name })
	p.setOthers()
	return unnamed
}

// unnamed reports whether a member of the plan is known only by ID.
func (p *RecoverPlan) unnamed() bool {
	for _, mr := range p.Members {
		if mr.ID != "" && mr.Name == unstartedName(mr.ID) {
			return true
		}
	}
	return false
}

// pickSource compares this member's data with the --compare copies and
// takes the most advanced.
func (r *QuorumRecovery) pickSource(p *RecoverPlan) error {
	dirs := append([]string{p.OldDataDir}, r.Compare...)
	best := -1
	inspected := make([]*datadir.Inspection, len(dirs)) // the usable ones, else nil
	var source *datadir.Inspection
	cluster := "" // this member's cluster ID, from its WAL
	for i, dir := range dirs {
		ins := datadir.Inspect(dir)
		if i == 0 && ins.WAL != nil {
			cluster = ins.WAL.ClusterID
		}
		c := Candidate{Dir: dir}
		switch {
		case ins.Error != "":
			c.Error = ins.Error
		case ins.WAL == nil || ins.WAL.Error != "":
			c.Error = "WAL unreadable: " + ins.WAL.Error
		case ins.WAL.Tail == datadir.TailCorrupt:
			c.Error = "WAL damaged: " + ins.WAL.TailError
		case ins.DB != nil && !ins.DB.Locked && ins.DB.OpenError != "":
			// A copy whose database does not open would fail the
			// one-member start, however far its WAL goes; a running
			// etcd's own (locked) is its to open.
			c.Error = "database unreadable: " + ins.DB.OpenError
		case ins.DB != nil && len(ins.DB.CheckErrors) > 0:
			c.Error = "database damaged: " + strings.Join(ins.DB.CheckErrors, "; ")
		case i > 0 && cluster != "" && ins.WAL.ClusterID != cluster:
			// A copy mixed up with another cluster's (or taken before
			// an earlier recovery gave this one new IDs): its log is
			// not this cluster's, however far it goes.
			c.Error = fmt.Sprintf("another cluster's data: cluster ID %s, this member's is %s", orDefault(ins.WAL.ClusterID, "unknown"), cluster)
		default:
			c.Commit, c.LastIndex, c.Term = ins.WAL.Commit, ins.WAL.LastIndex, ins.WAL.Term
			c.Member = ins.WAL.MemberID
			for _, m := range ins.WALMembers {
				if m.ID == ins.WAL.MemberID && m.Name != "" {
					c.Member = m.Name
				}
			}
		}
		if i == 0 && !p.Running && c.Error == "" {
			p.Committed = c.Commit
		}
		if p.unnamed() && ins.DB != nil && ins.DB.OpenError == "" {
			p.nameMembers(ins.DB)
		}
		p.Candidates = append(p.Candidates, c)
		if c.Error == "" {
			inspected[i] = ins
		}
		if c.Error == "" && (best < 0 || c.Commit > p.Candidates[best].Commit) {
			best, source = i, ins
		}
	}
	if best < 0 {
		return fmt.Errorf("preflight: no usable data: %s", candidateErrors(p.Candidates))
	}
	if e := electedLog(inspected); e >= 0 {
		best, source = e, inspected[e]
		p.Elected = true
		if last := source.WAL.LastIndex; last > source.WAL.Commit {
			p.CommitTo = last
		}
	} else if to := committedByMajority(source, inspected); to > source.WAL.Commit {
		p.CommitTo = to
	}
	p.Source = p.Candidates[best].Dir
	top := p.Candidates[best]
	if best > 0 {
		how := fmt.Sprintf("committed index %d against this member's %d", top.Commit, p.Candidates[0].Commit)
		if p.Elected {
			how = fmt.Sprintf("its log the most up to date, to index %d against this member's %d", top.LastIndex, p.Candidates[0].LastIndex)
		}
		p.Warnings = append(p.Warnings, fmt.Sprintf("the copy %s (member %s) is the most advanced, %s: recovering from it (or run the recovery on %s's node)", top.Dir, top.Member, how, top.Member))
	}
	compared := map[string]bool{}
	for _, c := range p.Candidates {
		if c.Error == "" {
			compared[c.Member] = true
		}
	}
	for _, o := range p.others {
		switch {
		case compared[o.Name]:
		case p.Elected:
			// Every committed entry is in the source's log (electedLog),
			// but only if each copy is its member's last state.
			p.MayLose = append(p.MayLose, fmt.Sprintf("%s was not compared: nothing it committed is lost if each compared copy is its member's data as the member stopped (raft would elect the source among them), but a copy taken earlier may lack what %s committed since", o.Name, o.Name))
		default:
			p.MayLose = append(p.MayLose, fmt.Sprintf("%s was not compared: entries it committed past index %d are lost (copy its data dir here and pass --compare to check)", o.Name, top.Commit))
		}
	}
	return nil
}

func (r *QuorumRecovery) printPreflight(p *RecoverPlan) {
	r.logf("[preflight] %s runs member %s (%s), data in %s; etcd answering: %v", p.ManifestPath, p.Name, p.ClientURL, p.OldDataDir, p.Running)
	for _, m := range p.Members {
		if m.Reachable {
			r.logf("[preflight] member %s: reachable at %s, raft index %d", m.Name, m.ClientURL, m.RaftIndex)
		} else {
			r.logf("[preflight] member %s (%s): unreachable: %s", m.Name, m.PeerURL, m.Error)
		}
	}
	switch {
	case p.QuorumAnswers:
		r.logf("[preflight] a quorum answers: recovering anyway (--force)")
	case !p.Running:
		r.logf("[preflight] no quorum: this member does not answer at %s (a member restarted without quorum serves nobody until it reaches one)", p.ClientURL)
	default:
		r.logf("[preflight] no quorum: a linearizable read through %s got no answer", p.ClientURL)
	}
	r.logf("[preflight] this member's committed index: %d", p.Committed)
	for _, c := range p.Candidates {
		if c.Error != "" {
			r.logf("[preflight] data %s: unusable: %s", c.Dir, c.Error)
		} else {
			r.logf("[preflight] data %s: member %s, term %d, committed index %d", c.Dir, c.Member, c.Term, c.Commit)
		}
		commit := c.Commit
		if c.Dir == p.Source && p.CommitTo > commit {
			why := "are held by a majority of the voters in the term they were written in: raft commits them"
			if p.Elected {
				why = "end a log at least as up to date as those of a majority of the voters (the compared data): raft would elect its member, " + c.Member + ", and commit them"
			}
			r.logf("[preflight] data %s: entries %d to %d, past its committed index, %s, so the copy's commit index is raised to %d and they are kept", c.Dir, c.Commit+1, p.CommitTo, why, p.CommitTo)
			commit = p.CommitTo
		}
		if c.Error == "" && c.LastIndex > commit {
			// A follower learns that an entry is committed from the
			// leader's next message, and every member records the
			// commit index only with a later entry: a write
			// acknowledged just before the members holding it died may
			// be such an entry. Copies of a majority's data dirs
			// (--compare) show which of them a majority held.
			r.logf("[preflight] data %s: %d entries past the committed index are not known committed: a recovery from it drops them, as etcd's force-new-cluster does (a write acknowledged just before the members holding it died may be among them; --compare with copies of the other members' data dirs keeps those they show raft would commit)", c.Dir, c.LastIndex-commit)
		}
	}
	r.Node.logLeftovers("preflight", p.OldDataDir)
	r.logf("[preflight] recovering from %s", p.Source)
	if p.ForceNewClusterImage != "" {
		r.logf("[preflight] the manifest's image %s is another etcd minor than this kubectl-etcd's etcd %s: that image, run by the kubelet on the copy, makes the one-member cluster, so the data keeps the storage version it starts on", p.ForceNewClusterImage, embeddedMinor())
	}
	for _, l := range p.MayLose {
		r.logf("[preflight] may be lost: %s", l)
	}
	for _, w := range p.Warnings {
		r.logf("[preflight] warning: %s", w)
	}
}

// Run recovers: preflight, then the steps of RunPlan.
func (r *QuorumRecovery) Run(ctx context.Context) (*RecoverOutcome, error) {
	p, err := r.Preflight(ctx)
	if err != nil {
		return nil, err
	}
	return r.RunPlan(ctx, p)
}

// RunPlan runs the steps: stop the static pod (the manifest moved
// aside), copy the data, make a one-member cluster of the copy, save it and
// restore it with the revision bumped and compacted, point the manifest at
// it, wait until etcd serves. A failed step, an interruption or a member
// that will not start puts the original manifest back; the original data
// was never written.
func (r *QuorumRecovery) RunPlan(ctx context.Context, p *RecoverPlan) (*RecoverOutcome, error) {
	start := time.Now()
	out := &RecoverOutcome{RecoverPlan: *p}
	out.JoinSteps = r.joinSteps(p)
	bump := r.BumpRevision
	if bump == 0 {
		bump = snapshot.DefaultBumpRevision
	}
	if r.DryRun {
		r.logf("[dry-run] 1. move %s to %s and wait until etcd stops", p.ManifestPath, p.ManifestBackup)
		r.logf("[dry-run] 2. copy %s to %s (the original is never written)", p.Source, p.WorkDir)
		if p.CommitTo > 0 {
			r.logf("[dry-run]    and raise the copy's commit index to %d", p.CommitTo)
		}
		if p.ForceNewClusterImage != "" {
			r.logf("[dry-run] 3. make a one-member cluster of the copy with %s as the static pod (--force-new-cluster, serving on loopback ports of its own), save it as a snapshot and stop it", p.ForceNewClusterImage)
		} else {
			r.logf("[dry-run] 3. make a one-member cluster of the copy (force-new-cluster, embedded etcd %s) and save it as a snapshot", etcdversion.Version)
		}
		r.logf("[dry-run] 4. restore the snapshot into %s as member %s alone of a new cluster (token %s), revision bumped by %d and marked compacted", p.DataDir, p.Name, p.ClusterToken, bump)
		r.logf("[dry-run] 5. write %s with --initial-cluster %s alone and the data on %s, and wait until etcd serves", p.ManifestPath, p.Name, p.DataDir)
		r.logf("[dry-run] 6. then on the other nodes:")
		r.Node.dryRunEnd(out.JoinSteps, p.ManifestPath, p.manifest)
		return out, nil
	}
	step := func(name string) {
		if r.AfterStep != nil {
			r.AfterStep(name)
		}
	}
	node := &Node{DataDir: p.OldDataDir, Log: r.Node.Log, KubeletRootDir: r.Node.KubeletRootDir}
	// The copy and its snapshot are this run's scratch, as large as the
	// data: they go whether the run succeeds or rolls back, since no later
	// run reuses them (each names its own).
	snap := p.WorkDir + datadir.SnapshotSuffix
	removeScratch := func() {
		os.RemoveAll(p.WorkDir)
		os.Remove(snap)
	}
	rollback := func(cause error, state string) error {
		werr := staticpod.WriteFile(p.ManifestPath, p.original)
		removeScratch()
		if werr != nil {
			return fmt.Errorf("%w; putting the original manifest back failed too: %v: copy %s to %s by hand (the data in %s is untouched)", cause, werr, p.ManifestBackup, p.ManifestPath, p.OldDataDir)
		}
		r.logf("[rollback] Put the original manifest back in %s: the kubelet starts etcd again on the untouched data in %s", p.ManifestPath, p.OldDataDir)
		return fmt.Errorf("%w; the original manifest is back in place and the data in %s was not changed; %s", cause, p.OldDataDir, state)
	}
	interrupted := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("recovery interrupted: %w", err)
		}
		return nil
	}

	// 1. Stop the static pod.
	if err := moveManifestAside(p.ManifestPath, p.ManifestBackup); err != nil {
		return nil, err
	}
	r.logf("[1/5 stop] Moved %s to %s; waiting for etcd to stop", p.ManifestPath, p.ManifestBackup)
	// Each step says how long it took: on a large database the copy, the
	// save and the restore take a while, and an operator wants to see
	// which one is running.
	lapStart := time.Now()
	lap := func() time.Duration {
		d := time.Since(lapStart).Round(100 * time.Millisecond)
		lapStart = time.Now()
		return d
	}
	if err := waitStopped(ctx, p.ClientURL, p.OldDataDir, r.timeout()); err != nil {
		return nil, rollback(err, "nothing was recovered")
	}
	stopped := lap()
	step("stop")
	if err := interrupted(); err != nil {
		return nil, rollback(err, "nothing was recovered")
	}

	// 2. Copy the data.
	if err := os.RemoveAll(p.WorkDir); err != nil {
		return nil, rollback(err, "nothing was recovered")
	}
	if err := copyTree(p.Source, p.WorkDir); err != nil {
		return nil, rollback(fmt.Errorf("copying %s: %w", p.Source, err), "nothing was recovered")
	}
	r.logf("[2/5 copy] etcd stopped in %s; copied %s to %s in %s", stopped, p.Source, p.WorkDir, lap())
	if p.CommitTo > 0 {
		from, err := raiseCommit(p.WorkDir, p.CommitTo)
		if err != nil {
			return nil, rollback(fmt.Errorf("raising the commit index of the copy %s: %w", p.WorkDir, err), "nothing was recovered")
		}
		why := "a majority held those entries"
		if p.Elected {
			why = "raft would have elected its member and committed them"
		}
		r.logf("[2/5 copy] Raised the copy's commit index from %d to %d: %s", from, p.CommitTo, why)
	}
	if p.unnamed() {
		// etcd held the database in the preflight: its copy names them
		// now, before force-new-cluster removes the others from it.
		r.nameFromCopy(p, out)
	}
	step("copy")
	if err := interrupted(); err != nil {
		return nil, rollback(err, "nothing was recovered")
	}

	// 3. A one-member cluster of the copy, saved as a snapshot.
	var err error
	with := "the embedded etcd " + etcdversion.Version
	if p.ForceNewClusterImage != "" {
		with = p.ForceNewClusterImage
		err = r.forceNewClusterInPod(ctx, p, snap)
	} else {
		err = forceNewCluster(ctx, p.WorkDir, p.Name, snap, r.timeout())
	}
	if err != nil {
		return nil, rollback(fmt.Errorf("making a one-member cluster of the copy: %w", err), "nothing was recovered")
	}
	r.logf("[3/5 force-new-cluster] The copy started as a one-member cluster (%s) with every committed entry applied; saved it to %s in %s", with, snap, lap())
	step("force-new-cluster")
	if err := interrupted(); err != nil {
		return nil, rollback(err, "nothing was recovered")
	}

	// 4. Restore with the revision bumped and marked compacted.
	rs := snapshot.Restorer{SnapshotPath: snap, DataDir: p.DataDir, Name: p.Name, PeerURLs: p.PeerURLs, InitialClusterToken: p.ClusterToken, BumpRevision: bump, MarkCompacted: true}
	res, err := rs.Restore()
	if err != nil {
		return nil, rollback(fmt.Errorf("restoring the recovered snapshot: %w", err), "nothing was recovered")
	}
	r.logf("[4/5 restore] Restored into %s at revision %d (bumped by %d, marked compacted) as a new cluster (token %s) in %s", p.DataDir, res.Revision, bump, p.ClusterToken, lap())
	step("restore")
	if err := interrupted(); err != nil {
		return nil, rollback(err, "the recovered data is in "+p.DataDir)
	}

	// 5. The manifest on the new data, this member alone; a copy of it
	// beside the original tells a later run that this recovery wrote it.
	if err := os.WriteFile(p.ManifestBackup+recoveredSuffix, p.manifest, 0o600); err != nil {
		return nil, rollback(err, "the recovered data is in "+p.DataDir)
	}
	r.Node.waitPodCleanedUp(ctx, p.manifest, r.timeout())
	started := time.Now()
	if err := staticpod.WriteFile(p.ManifestPath, p.manifest); err != nil {
		return nil, rollback(err, "the recovered data is in "+p.DataDir)
	}
	r.logf("[5/5 start] Wrote %s with --initial-cluster %s alone and the data on %s; waiting for etcd to serve", p.ManifestPath, p.Name, p.DataDir)
	if err := node.waitServingWith(ctx, r.Config, p.ClientURL, r.timeout(), started); err != nil {
		return nil, rollback(fmt.Errorf("waiting for etcd on the recovered data: %w", err), fmt.Sprintf("the recovered data is kept in %s for a look (the etcd container log says why it did not serve)", p.DataDir))
	}
	step("start")
	removeScratch()
	out.Revision = servedRevision(ctx, r.Config, p.ClientURL)
	out.Took = time.Since(start).Round(time.Millisecond)
	r.logf("[done] Member %s serves alone at revision %d, %s after its manifest was written (%s in all); the original manifest is kept in %s and the original data in %s", p.Name, out.Revision, lap(), out.Took.Round(100*time.Millisecond), p.ManifestBackup, p.OldDataDir)
	r.logf("[next] On each other node, one at a time:")
	for _, s := range out.JoinSteps {
		r.logf("  %s", s)
	}
	return out, nil
}

// nameFromCopy names the members known only by ID from the copy's v3
// store and makes the join steps again with the names.
func (r *QuorumRecovery) nameFromCopy(p *RecoverPlan, out *RecoverOutcome) {
	if p.nameMembers(datadir.Inspect(p.WorkDir).DB) {
		r.logf("[2/5 copy] warning: the copy does not name every member; the join steps name the others by ID")
	}
	out.Members = p.Members
	out.JoinSteps = r.joinSteps(p)
}

// joinSteps are the commands that bring the other nodes back.
func (r *QuorumRecovery) joinSteps(p *RecoverPlan) []string {
	others := make([]otherNode, 0, len(p.others))
	for _, o := range p.others {
		others = append(others, otherNode{Name: o.Name, PeerURL: o.PeerURL})
	}
	return joinSteps(others, readJoinTarget(p.ManifestPath, p.original, p.ClientURL))
}

// otherNode is another control-plane node of the cluster, to bring back
// after this one was restored or recovered alone.
type otherNode struct{ Name, PeerURL string }

// joinSteps are the commands that bring the other nodes back into a
// cluster this node serves alone: on each, reset, then join under its old
// name and address, through the client URL and with the etcd image of
// this node's member (target).
func joinSteps(others []otherNode, target joinTarget) []string {
	var steps []string
	for _, o := range others {
		ip := "IP"
		if u, err := url.Parse(o.PeerURL); err == nil && u.Hostname() != "" {
			ip = u.Hostname()
		}
		step := fmt.Sprintf("on %s: sudo kubectl etcd reset --yes && sudo kubectl etcd join --name %s --advertise-address %s --endpoints %s", o.Name, o.Name, ip, target.Endpoint)
		if target.Image != "" {
			step += " --image " + target.Image
		}
		steps = append(steps, step)
	}
	return steps
}

// joinTarget is what the join steps take from this node's manifest.
type joinTarget struct {
	// Endpoint is the client URL other nodes reach this node's member
	// on: the manifest's first --advertise-client-urls, else local.
	Endpoint string
	// Image is the etcd image this node's member runs, empty when the
	// manifest cannot be read. The joins name it: without --image, join
	// writes its own default, which need not be the release the restored
	// member runs (a cluster upgraded since kubeadm set it up, an older
	// kubeadm, an air-gapped node that holds only the image it runs).
	Image string
}

// readJoinTarget reads the join target from the manifest at path
// (content manifest); local is this node's client URL.
func readJoinTarget(path string, manifest []byte, local string) joinTarget {
	t := joinTarget{Endpoint: local}
	m, err := staticpod.Parse(path, manifest)
	if err != nil {
		return t
	}
	if urls := m.List("advertise-client-urls"); len(urls) > 0 {
		t.Endpoint = urls[0]
	}
	t.Image = m.Pod.Spec.Containers[m.Container].Image
	return t
}

// forceNewClusterInPod makes the one-member cluster of the copy with the
// manifest's own image: the kubelet runs the manifest on the copy with
// --force-new-cluster added, listening on loopback ports nobody else uses
// (so neither kube-apiserver nor another member reaches it, and nothing
// is written to it after the save); once it serves, its database is saved
// to snapPath through the client API, and the manifest taken away again
// until etcd has stopped and let go of the copy. On failure the temporary
// manifest stays in place: the caller's rollback writes the original over
// it, which stops it.
func (r *QuorumRecovery) forceNewClusterInPod(ctx context.Context, p *RecoverPlan, snapPath string) error {
	ports, err := freeLoopbackPorts(3)
	if err != nil {
		return err
	}
	manifest, clientURL, err := forceNewClusterManifest(p, ports)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.ManifestBackup+forceNewClusterSuffix, manifest, 0o600); err != nil {
		return err
	}
	// The pod has the name of the one just stopped: written before the
	// kubelet has cleaned that one up, it would wait out a back-off.
	r.Node.waitPodCleanedUp(ctx, manifest, r.timeout())
	started := time.Now()
	if err := staticpod.WriteFile(p.ManifestPath, manifest); err != nil {
		return err
	}
	r.logf("[3/5 force-new-cluster] Wrote %s: %s on the copy %s with --force-new-cluster, serving only on %s; waiting for it to serve", p.ManifestPath, p.ForceNewClusterImage, p.WorkDir, clientURL)
	if err := cluster.WaitServing(ctx, r.Config, []string{clientURL}, r.timeout(), r.Node.giveUpOnCrashLoop(started)); err != nil {
		return fmt.Errorf("etcd %s on the copy with --force-new-cluster: %w (the etcd container log says why)", p.ForceNewClusterImage, err)
	}
	saver := snapshot.Saver{Config: r.Config, Endpoint: clientURL, Path: snapPath, Overwrite: true, NoMetadata: true}
	res, err := saver.Save(ctx)
	if err != nil {
		return fmt.Errorf("saving the one-member cluster: %w", err)
	}
	if err := os.Remove(p.ManifestPath); err != nil {
		return fmt.Errorf("taking the temporary manifest away: %w", err)
	}
	if err := waitStopped(ctx, clientURL, p.WorkDir, r.timeout()); err != nil {
		return fmt.Errorf("stopping etcd on the copy: %w", err)
	}
	r.logf("[3/5 force-new-cluster] Saved revision %d (storage version %s) and stopped etcd on the copy", res.Revision, orDefault(res.SnapshotVersion, "unknown"))
	return nil
}

// forceNewClusterManifest is the temporary manifest that runs the original
// manifest's etcd on the copy p.WorkDir with --force-new-cluster, its
// client, peer and metrics listeners on the loopback ports given (on the
// host's 127.0.0.1: the pod has the host's network), and no probes (they
// point at the metrics port kubeadm gives, and a kubelet restarting the
// pod would cut the save short). It returns the client URL.
func forceNewClusterManifest(p *RecoverPlan, ports []string) ([]byte, string, error) {
	m, err := staticpod.Parse(p.ManifestPath, p.original)
	if err != nil {
		return nil, "", err
	}
	if err := m.MoveDataDir(p.WorkDir); err != nil {
		return nil, "", err
	}
	local, err := url.Parse(p.ClientURL)
	if err != nil {
		return nil, "", fmt.Errorf("local client URL %q: %w", p.ClientURL, err)
	}
	loopback := func(scheme, port string) string {
		return (&url.URL{Scheme: scheme, Host: net.JoinHostPort("127.0.0.1", port)}).String()
	}
	peerScheme := "https"
	if peers := m.List("listen-peer-urls"); len(peers) > 0 && strings.HasPrefix(peers[0], "http://") {
		peerScheme = "http"
	}
	clientURL := loopback(local.Scheme, ports[0])
	m.SetFlag("listen-client-urls", clientURL)
	m.SetFlag("advertise-client-urls", clientURL)
	m.SetFlag("listen-peer-urls", loopback(peerScheme, ports[1]))
	m.SetFlag("listen-metrics-urls", loopback("http", ports[2]))
	m.SetFlag("force-new-cluster", "true")
	c := &m.Pod.Spec.Containers[m.Container]
	c.LivenessProbe, c.ReadinessProbe, c.StartupProbe = nil, nil, nil
	data, err := m.Marshal()
	return data, clientURL, err
}

// forceNewCluster starts the embedded etcd on dir with force-new-cluster on
// loopback ports nobody else uses, waits until it serves, saves its
// database to snapPath and stops it.
func forceNewCluster(ctx context.Context, dir, name, snapPath string, timeout time.Duration) error {
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Dir, cfg.Name, cfg.ForceNewCluster = dir, name, true
	cfg.Logger, cfg.LogLevel = "zap", "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu, _ := url.Parse("http://127.0.0.1:" + ports[0])
	pu, _ := url.Parse("http://127.0.0.1:" + ports[1])
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = name + "=" + pu.String()
	cfg.ListenMetricsUrls = nil
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("the embedded etcd did not serve within %s", timeout)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("saving the one-member cluster: %w", err)
	}
	defer rc.Close()
	f, err := os.OpenFile(snapPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("saving the one-member cluster: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freeLoopbackPorts(n int) ([]string, error) {
	var ports []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// copyTree copies a data directory, modes kept, each file synced.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// imageMinor is the etcd minor version of the manifest's image tag.
func imageMinor(m *staticpod.EtcdManifest) string {
	image := m.Pod.Spec.Containers[m.Container].Image
	if _, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":"); ok {
		return snapshot.MinorVersion(strings.TrimPrefix(tag, "v"))
	}
	return ""
}

// embeddedMinor is the minor version of the etcd server linked in.
func embeddedMinor() string { return snapshot.MinorVersion(etcdversion.Version) }

func reachableNames(ms []MemberReach) string {
	var names []string
	for _, m := range ms {
		if m.Reachable {
			names = append(names, m.Name)
		}
	}
	return strings.Join(names, ", ") + " reachable"
}

func candidateErrors(cs []Candidate) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Dir+": "+c.Error)
	}
	return strings.Join(out, "; ")
}
