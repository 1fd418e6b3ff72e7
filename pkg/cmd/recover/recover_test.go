package recover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

// testNode is a control-plane node whose etcd static pod the kubelet
// stand-in runs with the real etcd binary.
type testNode struct {
	name, ip, dir string
	args          []string // node layout flags
	url           string
	kubelet       *etcdtest.Kubelet
}

func (n *testNode) manifest() string { return filepath.Join(n.dir, "manifests", "etcd.yaml") }
func (n *testNode) dataDir() string  { return filepath.Join(n.dir, "data") }

// conn reaches the node's member through its manifest and certificates.
func (n *testNode) conn() []string {
	return []string{"--etcd-manifest", n.manifest(), "--pki-dir", filepath.Join(n.dir, "pki")}
}

func newNode(t testing.TB, root, name, ip string) *testNode {
	dir := filepath.Join(root, name)
	args, url := cmdtest.NodeArgs(t, dir, name, ip)
	return &testNode{name: name, ip: ip, dir: dir, url: url, args: args}
}

// cluster starts three nodes: init on the first, join on the others.
func cluster(t testing.TB, version string) []*testNode {
	t.Helper()
	root := t.TempDir()
	nodes := []*testNode{newNode(t, root, "cp-1", "127.0.0.41"), newNode(t, root, "cp-2", "127.0.0.42"), newNode(t, root, "cp-3", "127.0.0.43")}
	if _, stderr, _, err := cmdtest.Run(t, append([]string{"init"}, nodes[0].args...)...); err != nil {
		t.Fatalf("init: %v\n%s", err, stderr)
	}
	nodes[0].kubelet = etcdtest.StartKubelet(t, version, nodes[0].manifest())
	cmdtest.WaitHealthy(t, nodes[0].conn())
	for _, n := range nodes[1:] {
		cmdtest.CopyCA(t, nodes[0].dir, n.dir)
		n.kubelet = etcdtest.StartKubelet(t, version, n.manifest())
		if _, stderr, _, err := cmdtest.Run(t, append([]string{"join", "--endpoints", nodes[0].url, "--timeout", "2m"}, n.args...)...); err != nil {
			t.Fatalf("join %s: %v\n%s", n.name, err, stderr)
		}
	}
	return nodes
}

// client reaches one node's member.
func client(t testing.TB, n *testNode) (*connect.Config, *clientv3.Client) {
	t.Helper()
	f := connect.NewFlags()
	f.EtcdManifest, f.PKIDir = n.manifest(), filepath.Join(n.dir, "pki")
	f.Getenv = func(string) string { return "" }
	cfg, err := f.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cfg, cli
}

// write puts keys through n and returns the acknowledged ones with the
// highest revision handed out.
func write(t *testing.T, n *testNode, prefix string, count int) (map[string]string, int64) {
	t.Helper()
	_, cli := client(t, n)
	acked := map[string]string{}
	var rev int64
	for i := range count {
		k, v := fmt.Sprintf("/registry/configmaps/default/%s-%d", prefix, i), fmt.Sprintf("value-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Put(ctx, k, v)
		cancel()
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		acked[k] = v
		rev = resp.Header.Revision
	}
	return acked, rev
}

// lose kills a node's etcd (kill -9) and deletes its manifest and data:
// the node is gone for good.
func lose(t testing.TB, n *testNode) {
	t.Helper()
	n.kubelet.Kill()
	if err := os.Remove(n.manifest()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(n.dataDir()); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverQuorum(t *testing.T) {
	version := etcdtest.NewestVersion(t) // the recovery's etcd is 3.7: so is the image
	nodes := cluster(t, version)
	cp1 := nodes[0]
	acked, lastRev := write(t, cp1, "before", 200)
	_, cli0 := client(t, cp1)
	ml0, err := cli0.MemberList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var oldID uint64
	for _, m := range ml0.Members {
		if m.Name == "cp-1" {
			oldID = m.ID
		}
	}

	t.Log("a quorum answers: the recovery is refused")
	_, stderr, code, err := cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--yes")...)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "a quorum answers") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("recover with quorum: exit %d, %v\n%s", code, err, stderr)
	}

	t.Log("cp-2 and cp-3 are lost for good: kill -9, manifests and data deleted")
	lose(t, nodes[1])
	lose(t, nodes[2])
	original, err := os.ReadFile(cp1.manifest())
	if err != nil {
		t.Fatal(err)
	}

	t.Log("--dry-run prints the preflight and the plan, and changes nothing")
	out, stderr, code, err := cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--dry-run", "--command-timeout", "2s")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d, %v\n%s", code, err, stderr)
	}
	for _, want := range []string{"no quorum", "member cp-2 (", "unreachable", "this member's committed index", "recovering from " + cp1.dataDir(), "may be lost: cp-2 was not compared",
		"1. move " + cp1.manifest(), "force-new-cluster", "marked compacted", "sudo kubectl etcd join --name cp-3 --advertise-address 127.0.0.43 --endpoints " + cp1.url} {
		if !strings.Contains(stderr, want) {
			t.Errorf("dry run does not say %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(out, "--initial-cluster=cp-1=") {
		t.Errorf("dry run does not print the new manifest:\n%s", out)
	}
	if now, _ := os.ReadFile(cp1.manifest()); !bytes.Equal(now, original) {
		t.Error("the dry run changed the manifest")
	}

	t.Log("without --yes and no terminal: refused")
	if _, _, code, err := cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--command-timeout", "2s")...); code != 1 || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("no confirmation: exit %d, %v", code, err)
	}

	t.Log("recover quorum on cp-1")
	start := time.Now()
	out, stderr, code, err = cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--yes", "--command-timeout", "2s", "--timeout", "2m", "-o", "json")...)
	if code != 0 {
		t.Fatalf("recover: exit %d, %v\n%s", code, err, stderr)
	}
	t.Logf("recovered in %s:\n%s", time.Since(start).Round(time.Millisecond), stderr)
	var res bootstrap.RecoverOutcome
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, step := range []string{"[1/5 stop]", "[2/5 copy]", "[3/5 force-new-cluster]", "[4/5 restore]", "[5/5 start]", "[done]"} {
		if !strings.Contains(stderr, step) {
			t.Errorf("step %s not printed", step)
		}
	}
	if res.Revision <= lastRev+1_000_000_000-1 {
		t.Errorf("revision %d is not bumped above %d by 1e9", res.Revision, lastRev)
	}
	if len(res.JoinSteps) != 2 || !strings.Contains(res.JoinSteps[0], "kubectl etcd reset --yes && sudo kubectl etcd join --name cp-2 --advertise-address 127.0.0.42") {
		t.Errorf("join steps: %q", res.JoinSteps)
	}

	t.Log("every acknowledged write is there; the member is alone; the old revisions are compacted")
	_, cli := client(t, cp1)
	ctx := context.Background()
	resp, err := cli.Get(ctx, "/registry/configmaps/default/before-", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	for k, v := range acked {
		if got[k] != v {
			t.Errorf("%s = %q after the recovery, want %q", k, got[k], v)
		}
	}
	if resp.Header.Revision < lastRev+1_000_000_000 {
		t.Errorf("served revision %d", resp.Header.Revision)
	}
	if _, err := cli.Get(ctx, "/registry/configmaps/default/before-1", clientv3.WithRev(lastRev)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("a read at the old revision %d: %v, want compacted", lastRev, err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 1 || ml.Members[0].Name != "cp-1" {
		t.Fatalf("members after the recovery: %v %+v", err, ml)
	}
	// A cluster of its own: the members it dropped, should they come
	// back with their data, cannot reach it as their old peer.
	if ml.Members[0].ID == oldID || ml.Header.ClusterId == ml0.Header.ClusterId {
		t.Errorf("the recovered member kept its member ID %x or cluster ID %x", oldID, ml0.Header.ClusterId)
	}
	if !strings.HasPrefix(res.ClusterToken, "etcd-cluster-recover-") {
		t.Errorf("cluster token %q", res.ClusterToken)
	}
	more, _ := write(t, cp1, "after", 20)

	t.Log("cp-2 and cp-3 join back with the printed steps (reset, join)")
	for _, n := range nodes[1:] {
		if _, stderr, code, err := cmdtest.Run(t, "reset", "--yes", "--manifests-dir", filepath.Join(n.dir, "manifests"), "--data-dir", n.dataDir()); code != 0 {
			t.Fatalf("reset %s: %v\n%s", n.name, err, stderr)
		}
		if _, stderr, _, err := cmdtest.Run(t, append([]string{"join", "--endpoints", cp1.url, "--timeout", "2m"}, n.args...)...); err != nil {
			t.Fatalf("join %s back: %v\n%s", n.name, err, stderr)
		}
	}
	cfg, cli := client(t, cp1)
	var c *maintenance.Consistency
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		c, err = maintenance.CheckConsistency(ctx, cfg, cli)
		if err == nil && c.Consistent && len(c.Members) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HashKV after the joins: %v %+v", err, c)
		}
	}
	_, cli3 := client(t, nodes[2])
	for k, v := range more {
		r, err := cli3.Get(ctx, k)
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != v {
			t.Errorf("%s on cp-3: %v %+v", k, err, r)
		}
	}
}

// TestRecoverQuorumCompareAndFaults: the survivor is behind and a copy of
// another member's data is ahead; interruptions at each step leave the
// original data as it was and the manifest back.
func TestRecoverQuorumCompareAndFaults(t *testing.T) {
	version := etcdtest.NewestVersion(t)
	nodes := cluster(t, version)
	cp1, cp2 := nodes[0], nodes[1]
	write(t, cp1, "both", 50)

	t.Log("cp-1 stops (its data frozen); cp-2 and cp-3 go on and commit more, cp-3 leading; then both are killed at once, cp-3 lost and cp-2's data copied to cp-1's node")
	cp1Manifest, _ := os.ReadFile(cp1.manifest())
	if err := os.Rename(cp1.manifest(), cp1.manifest()+".away"); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, cp1)
	cp3 := nodes[2]
	if _, stderr, _, err := cmdtest.Run(t, append(cp3.conn(), "member", "move-leader", "cp-3", "--yes", "--force")...); err != nil {
		t.Fatalf("move-leader cp-3: %v\n%s", err, stderr)
	}
	// The leader answers a put once cp-2 holds it too, and tells cp-2
	// it is committed afterwards; cp-2 records that only with its next
	// synced write. Killed at once, cp-2's data holds the last puts past
	// its committed index, and only cp-2 holds them: the recovery must
	// still keep them, as an election of cp-2 by cp-1 and cp-2 would.
	ahead, _ := write(t, cp3, "ahead", 50)
	cp2.kubelet.Kill()
	lose(t, cp3)
	cp2Manifest, _ := os.ReadFile(cp2.manifest())
	if err := os.Remove(cp2.manifest()); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, cp2)
	copyDir := filepath.Join(t.TempDir(), "cp-2-etcd")
	if err := os.CopyFS(copyDir, os.DirFS(cp2.dataDir())); err != nil {
		t.Fatal(err)
	}
	_ = cp2Manifest
	if err := os.Rename(cp1.manifest()+".away", cp1.manifest()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // cp-1 runs again, without quorum

	t.Log("kill the recovery after each step: the original data is unchanged and the manifest is back")
	for _, at := range []string{"stop", "copy", "force-new-cluster", "restore"} {
		t.Run("interrupted after "+at, func(t *testing.T) {
			cfg, _ := client(t, cp1)
			node := bootstrap.NewNode()
			var log bytes.Buffer
			node.Log = &log
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var hashAtStop map[string]string
			newDir := filepath.Join(t.TempDir(), "new")
			r := &bootstrap.QuorumRecovery{ManifestPath: cp1.manifest(), Config: cfg, Compare: []string{copyDir}, Timeout: time.Minute, Node: node,
				DataDir: newDir,
				AfterStep: func(step string) {
					if step == "stop" {
						hashAtStop = etcdtest.FileHashes(t, cp1.dataDir())
					}
					if step == at {
						if changed := etcdtest.ChangedFiles(hashAtStop, etcdtest.FileHashes(t, cp1.dataDir())); len(changed) > 0 {
							t.Errorf("the original data changed between the stop and %s: %s", at, changed)
						}
						cancel()
					}
				}}
			_, err := r.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "the original manifest is back") {
				t.Fatalf("interrupted after %s: %v\n%s", at, err, log.String())
			}
			if now, _ := os.ReadFile(cp1.manifest()); !bytes.Equal(now, cp1Manifest) {
				t.Errorf("the manifest is not the original after an interruption at %s", at)
			}
			// The copy and its snapshot, as large as the data, go with the
			// rollback: no later run would remove them.
			for _, scratch := range []string{newDir + ".work", newDir + ".work.snapshot.db"} {
				if _, err := os.Stat(scratch); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("interrupted after %s: %s is still there (%v)", at, scratch, err)
				}
			}
			waitRunning(t, cp1)
		})
	}

	t.Log("a recovery killed with the manifest moved aside is undone by the next run")
	backup := filepath.Join(filepath.Dir(filepath.Dir(cp1.manifest())), "etcd-recover-20260101T000000Z", "etcd.yaml")
	os.MkdirAll(filepath.Dir(backup), 0o700)
	if err := os.Rename(cp1.manifest(), backup); err != nil {
		t.Fatal(err)
	}
	_, _, code, err := cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--yes")...)
	if code != 1 || !strings.Contains(err.Error(), "an earlier recovery was interrupted") {
		t.Errorf("after a killed recovery: exit %d, %v", code, err)
	}
	if now, _ := os.ReadFile(cp1.manifest()); !bytes.Equal(now, cp1Manifest) {
		t.Error("the manifest was not put back")
	}
	os.RemoveAll(filepath.Dir(backup))
	waitRunning(t, cp1)

	t.Log("a copy whose database is truncated is not recovered from, however far its WAL goes")
	damaged := filepath.Join(t.TempDir(), "cp-2-etcd-damaged")
	if err := os.CopyFS(damaged, os.DirFS(copyDir)); err != nil {
		t.Fatal(err)
	}
	// The file is larger than its pages (bbolt grows it ahead): 16 KiB
	// cuts into them.
	if err := os.Truncate(filepath.Join(damaged, "member", "snap", "db"), 16<<10); err != nil {
		t.Fatal(err)
	}
	// And the copy a recovery killed mid-way (SIGKILL: no rollback) left
	// beside the data: the preflight tells of it.
	killed := cp1.dataDir() + "-recover-20260101T000000Z.work"
	if err := os.CopyFS(killed, os.DirFS(copyDir)); err != nil {
		t.Fatal(err)
	}
	// And a copy of another cluster's member, mixed up with these, whose
	// log goes further than any of them.
	other := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	etcdtest.PutMany(t, other.Config(), "/registry/configmaps/other/", 300)
	other.Stop(0)
	foreign := other.State.Members[0].DataDir
	_, stderr, code, err := cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--dry-run", "--compare", damaged+","+foreign, "--command-timeout", "2s")...)
	if code != 0 || !strings.Contains(stderr, "data "+damaged+": unusable: database") || !strings.Contains(stderr, "recovering from "+cp1.dataDir()) {
		t.Errorf("--compare with a truncated copy and another cluster's: exit %d, %v\n%s", code, err, stderr)
	}
	if !regexp.MustCompile(`data ` + regexp.QuoteMeta(foreign) + `: unusable: another cluster's data: cluster ID \w+, this member's is \w+`).MatchString(stderr) {
		t.Errorf("the preflight does not refuse another cluster's copy %s:\n%s", foreign, stderr)
	}
	if !strings.Contains(stderr, killed+" (") || !strings.Contains(stderr, "was left by an interrupted recover quorum (its copy of the data) and is not used: remove it with rm -rf "+killed) {
		t.Errorf("the preflight does not tell of the copy a killed recovery left in %s:\n%s", killed, stderr)
	}
	os.RemoveAll(killed)

	t.Log("--compare with cp-2's copy: it is the most advanced, the recovery uses it, cp-2's writes are there")
	_, stderr, code, err = cmdtest.Run(t, append(cp1.conn(), "recover", "quorum", "--yes", "--compare", copyDir, "--command-timeout", "2s", "--timeout", "2m")...)
	if code != 0 {
		t.Fatalf("recover --compare: exit %d, %v\n%s", code, err, stderr)
	}
	if !strings.Contains(stderr, "the copy "+copyDir+" (member cp-2) is the most advanced") || !strings.Contains(stderr, "recovering from "+copyDir) {
		t.Errorf("the preflight does not pick cp-2's copy:\n%s", stderr)
	}
	if regexp.MustCompile(`data ` + regexp.QuoteMeta(copyDir) + `: \d+ entries past the committed index are not known committed`).MatchString(stderr) {
		t.Errorf("the recovery drops entries cp-2 held, though cp-1 and cp-2 would elect it:\n%s", stderr)
	}
	if !strings.Contains(stderr, "may be lost: cp-3 was not compared: nothing it committed is lost if each compared copy is its member's data as the member stopped") {
		t.Errorf("the preflight does not say what cp-3, not compared, may have committed:\n%s", stderr)
	}
	if strings.Contains(stderr, "raft would elect its member, cp-2, and commit them") {
		t.Log("cp-2's copy held entries past its committed index, kept as raft would")
	}
	_, cli := client(t, cp1)
	for k, v := range ahead {
		r, err := cli.Get(context.Background(), k)
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != v {
			t.Errorf("%s (written while cp-1 was down): %v", k, err)
		}
	}
}

func waitStopped(t *testing.T, n *testNode) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.kubelet.Running() {
		if time.Now().After(deadline) {
			t.Fatalf("%s's etcd did not stop", n.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRunning waits until the kubelet runs the node's etcd again. A
// member restarted without quorum answers nobody, so that is all there is
// to see.
func waitRunning(t *testing.T, n *testNode) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !n.kubelet.Running() {
		if time.Now().After(deadline) {
			t.Fatalf("%s's etcd was not started again", n.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkRecoverQuorum1GiB times `kubectl etcd recover quorum` on a
// member whose database holds 1 GiB (65,536 values of 16 KiB, written
// through a cluster of three stand-in kubelets running the newest
// reference etcd), from the command's start until the one-member cluster
// serves (the command returns then), after the two other members were
// killed and their data deleted. The setup is not timed. docs/benchmarks.md
// has the command and a run.
func BenchmarkRecoverQuorum1GiB(b *testing.B) {
	version := etcdtest.NewestVersion(b)
	for range b.N {
		b.StopTimer()
		nodes := cluster(b, version)
		cp1 := nodes[0]
		cfg, cli := client(b, cp1)
		etcdtest.PutManyOf(b, cfg, "/registry/configmaps/bench/cm-", 1<<16, strings.Repeat("x", 16<<10))
		st, err := cli.Status(context.Background(), cp1.url)
		if err != nil {
			b.Fatal(err)
		}
		if st.DbSize < 1<<30 {
			b.Fatalf("the database is %d MiB, not 1 GiB", st.DbSize>>20)
		}
		lose(b, nodes[1])
		lose(b, nodes[2])
		b.StartTimer()
		out, stderr, code, err := cmdtest.Run(b, append(cp1.conn(), "recover", "quorum", "--yes", "--command-timeout", "2s", "--timeout", "10m", "-o", "json")...)
		b.StopTimer()
		if code != 0 {
			b.Fatalf("recover: exit %d, %v\n%s", code, err, stderr)
		}
		var res bootstrap.RecoverOutcome
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		b.ReportMetric(float64(st.DbSize)/(1<<20), "db-MiB")
		b.ReportMetric(res.Took.Seconds(), "steps-s")
		b.Logf("database %d MiB; recover quorum:\n%s", st.DbSize>>20, stderr)
	}
}
