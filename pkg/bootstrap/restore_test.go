package bootstrap

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

func TestRestoreWithManifestWithRealEtcd(t *testing.T) { forEachVersion(t, testRestoreWithManifest) }

func testRestoreWithManifest(t *testing.T, version string) {
	root := t.TempDir()
	ctx := context.Background()
	n := newE2ENode(t, root, "cp-1", "127.0.0.21")
	k, _ := n.initAndRun(t, version)

	t.Log("a member with keys, a snapshot, more writes")
	etcdtest.PutKey(t, n.config(t), "/registry/a", "in-snapshot")
	etcdtest.PutKey(t, n.config(t), "/registry/b", "in-snapshot")
	cli := etcdtest.Client(t, n.config(t))
	defer cli.Close()
	file := filepath.Join(root, "etcd.db")
	saved, err := (&snapshot.Saver{Config: n.config(t), Client: cli, Path: file, NoMetadata: true}).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	etcdtest.PutKey(t, n.config(t), "/registry/a", "after-snapshot")
	etcdtest.PutKey(t, n.config(t), "/registry/c", "after-snapshot")
	original, err := os.ReadFile(n.ManifestPath())
	if err != nil {
		t.Fatal(err)
	}
	newRestore := func() *SnapshotRestore {
		return &SnapshotRestore{
			ManifestPath: n.ManifestPath(),
			Restorer:     snapshot.Restorer{SnapshotPath: file, BumpRevision: snapshot.DefaultBumpRevision, MarkCompacted: true},
			Config:       n.config(t),
			Timeout:      2 * time.Minute,
			Node:         n.Node,
		}
	}

	t.Log("a corrupt snapshot is refused in the preflight: nothing changes")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(root, "bad.db")
	if err := os.WriteFile(bad, data[:len(data)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRestore()
	r.SnapshotPath = bad
	if _, err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "preflight") {
		t.Errorf("restore of a truncated snapshot = %v, want a preflight error", err)
	}

	t.Log("a dry run prints the plan and the new manifest and changes nothing")
	var out bytes.Buffer
	n.Out = &out
	r = newRestore()
	r.DryRun = true
	plan, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Running || !strings.Contains(out.String(), "--data-dir="+plan.DataDir) {
		t.Errorf("dry run: running %v, output:\n%s", plan.Running, out.String())
	}
	if now, _ := os.ReadFile(n.ManifestPath()); !bytes.Equal(now, original) || !k.Running() {
		t.Fatal("the dry run changed the manifest or stopped etcd")
	}
	if ms := plan.Snapshot.Members; len(ms) != 1 || ms[0].Name != "cp-1" || len(plan.JoinSteps) != 0 {
		t.Errorf("the snapshot of a one-member cluster names members %+v and join steps %q; want cp-1 alone and none", ms, plan.JoinSteps)
	}

	t.Log("restore: the member serves the snapshot's keys, not the later writes, above the bump")
	startsBefore := k.Starts()
	res, err := newRestore().Run(ctx)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, n.log)
	}
	t.Logf("restore progress:\n%s", n.log)
	if got := etcdtest.GetKey(t, n.config(t), "/registry/a"); got != "in-snapshot" {
		t.Errorf("/registry/a = %q, want the value of the snapshot", got)
	}
	if got := etcdtest.GetKey(t, n.config(t), "/registry/b"); got != "in-snapshot" {
		t.Errorf("/registry/b = %q, want the value of the snapshot", got)
	}
	if got := etcdtest.GetKey(t, n.config(t), "/registry/c"); got != "" {
		t.Errorf("/registry/c = %q, written after the snapshot, want none", got)
	}
	if want := saved.Revision + snapshot.DefaultBumpRevision; res.ServedRevision < want {
		t.Errorf("served revision %d, want at least %d", res.ServedRevision, want)
	}
	if k.Starts() <= startsBefore {
		t.Error("the kubelet stand-in did not restart etcd")
	}
	m, err := staticpod.Read(n.ManifestPath())
	if err != nil {
		t.Fatal(err)
	}
	if dir, _ := m.HostDataDir(); dir != res.DataDir || m.Flags["data-dir"] != res.DataDir || !strings.HasPrefix(res.DataDir, n.DataDir+"-restore-") {
		t.Errorf("manifest data dir %s (--data-dir %s), want %s next to %s", dir, m.Flags["data-dir"], res.DataDir, n.DataDir)
	}
	if backup, err := os.ReadFile(res.ManifestBackup); err != nil || !bytes.Equal(backup, original) {
		t.Errorf("original manifest not kept in %s: %v", res.ManifestBackup, err)
	}
	if strings.HasPrefix(res.ManifestBackup, n.ManifestsDir+"/") {
		t.Errorf("backup %s is inside the manifests directory", res.ManifestBackup)
	}
	if _, err := os.Stat(filepath.Join(n.DataDir, "member", "wal")); err != nil {
		t.Errorf("old data dir not kept: %v", err)
	}

	t.Log("a new write works and gets a revision above the bump")
	etcdtest.PutKey(t, n.config(t), "/registry/d", "after-restore")
	if got := etcdtest.GetKey(t, n.config(t), "/registry/d"); got != "after-restore" {
		t.Errorf("/registry/d = %q", got)
	}
}

// TestRestoreRollsBackWithRealEtcd restores a snapshot of an etcd 3.7
// cluster on a node that runs etcd 3.6, which refuses the data: the
// original manifest goes back and etcd serves the old data again.
func TestRestoreRollsBackWithRealEtcd(t *testing.T) {
	etcdVersion(t)
	versions := etcdtest.Versions(t)
	older, newer := versions[0], versions[len(versions)-1]
	if snapshot.MinorVersion(older) == snapshot.MinorVersion(newer) {
		t.Skip("needs two etcd minor versions")
	}
	root := t.TempDir()
	ctx := context.Background()

	t.Logf("a snapshot of an etcd %s member", newer)
	src := newE2ENode(t, root, "src", "127.0.0.23")
	src.initAndRun(t, newer)
	etcdtest.PutKey(t, src.config(t), "/registry/a", "from-"+newer)
	cli := etcdtest.Client(t, src.config(t))
	defer cli.Close()
	file := filepath.Join(root, "etcd.db")
	if _, err := (&snapshot.Saver{Config: src.config(t), Client: cli, Path: file, NoMetadata: true}).Save(ctx); err != nil {
		t.Fatal(err)
	}

	t.Logf("restore it on a node running etcd %s: it does not serve, the restore rolls back", older)
	n := newE2ENode(t, root, "cp-1", "127.0.0.24")
	n.initAndRun(t, older)
	etcdtest.PutKey(t, n.config(t), "/registry/a", "old")
	original, err := os.ReadFile(n.ManifestPath())
	if err != nil {
		t.Fatal(err)
	}
	r := &SnapshotRestore{
		ManifestPath: n.ManifestPath(),
		Restorer:     snapshot.Restorer{SnapshotPath: file, BumpRevision: snapshot.DefaultBumpRevision, MarkCompacted: true},
		Config:       n.config(t),
		Timeout:      15 * time.Second,
		Node:         n.Node,
	}
	_, err = r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "the original manifest is back in place") || !strings.Contains(err.Error(), "restored data is kept in") {
		t.Fatalf("restore of %s data on etcd %s = %v, want a rollback\n%s", newer, older, err, n.log)
	}
	t.Logf("error: %v", err)
	if now, _ := os.ReadFile(n.ManifestPath()); !bytes.Equal(now, original) {
		t.Error("the original manifest was not put back")
	}
	waitHealthy(t, n.config(t), 1, 60*time.Second)
	if got := etcdtest.GetKey(t, n.config(t), "/registry/a"); got != "old" {
		t.Errorf("after the rollback /registry/a = %q, want the old data", got)
	}
}

// TestRestoreJoinStepsNameTheSnapshotsOtherMembers: after restoring one
// node from the snapshot of a three-member cluster, the output tells how
// to bring the two others back, by the names and addresses the snapshot
// holds, joining the restored member.
func TestRestoreJoinStepsNameTheSnapshotsOtherMembers(t *testing.T) {
	p := &RestorePlan{Name: "cp-1", ClientURL: "https://10.0.0.11:2379", Snapshot: snapshot.FileStatus{Members: []snapshot.Member{
		{ID: "1", Name: "cp-1", PeerURLs: []string{"https://10.0.0.11:2380"}},
		{ID: "2", Name: "cp-2", PeerURLs: []string{"https://10.0.0.12:2380"}},
		{ID: "3", Name: "cp-3", PeerURLs: []string{"https://[fd00::13]:2380"}},
		{ID: "4", PeerURLs: []string{"https://10.0.0.14:2380"}}, // a learner that never started has no name
	}}}
	want := []string{
		"on cp-2: sudo kubectl etcd reset --yes && sudo kubectl etcd join --name cp-2 --advertise-address 10.0.0.12 --endpoints https://10.0.0.11:2379",
		"on cp-3: sudo kubectl etcd reset --yes && sudo kubectl etcd join --name cp-3 --advertise-address fd00::13 --endpoints https://10.0.0.11:2379",
	}
	if got := p.joinSteps(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("join steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// From the restored node's manifest: the client URL it advertises and
	// the image it runs, so the others join the same etcd release and not
	// join's default (seen on real kubelets: a node holding only the image
	// the cluster runs waits for the default one forever).
	spec := staticpod.EtcdPodSpec{Name: "cp-1", AdvertiseAddress: "10.0.0.11", Image: "registry.k8s.io/etcd:3.6.16-0"}
	manifest, err := staticpod.Marshal(staticpod.NewEtcdPod(spec))
	if err != nil {
		t.Fatal(err)
	}
	p.ManifestPath, p.original, p.ClientURL = "/etc/kubernetes/manifests/etcd.yaml", manifest, "https://127.0.0.1:2379"
	want[0] = "on cp-2: sudo kubectl etcd reset --yes && sudo kubectl etcd join --name cp-2 --advertise-address 10.0.0.12 --endpoints https://10.0.0.11:2379 --image registry.k8s.io/etcd:3.6.16-0"
	if got := p.joinSteps(); len(got) != 2 || got[0] != want[0] {
		t.Errorf("join steps from the manifest:\n%s\nwant first:\n%s", strings.Join(got, "\n"), want[0])
	}
}
