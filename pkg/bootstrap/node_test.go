package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// These tests run the real etcd binary as the kubelet would run the
// manifests the library writes (etcdtest.Kubelet), each node on its own
// 127.0.0.x address with its own ports, so they need no root and run
// beside other tests in the unit stage. The stand-in stays here for what
// a real kubelet cannot give a library test: steps of the library's own
// (a join undone halfway, a learner added by hand) checked in process, in
// seconds, without root or the kubelet build. The same flows through the
// plugin on real kubelets are e2e/bootstrap_test.go and
// e2e/restore_node_test.go.

// e2eNode is a test "machine": its directories, its kubelet stand-in.
type e2eNode struct {
	*Node
	log *strings.Builder
}

func newE2ENode(t *testing.T, root, name, ip string) *e2eNode {
	t.Helper()
	ports := etcdtest.FreePorts(t, 3)
	n := testNode(filepath.Join(root, name), name, ip)
	n.ClientPort, n.PeerPort, n.MetricsPort = ports[0], ports[1], ports[2]
	log := &strings.Builder{}
	n.Log = log
	return &e2eNode{Node: n, log: log}
}

func (e *e2eNode) clientURL() string { return e.Spec().ClientURL() }

// initAndRun inits the node, lets the kubelet stand-in run its manifest
// with etcd version, and waits until its member is healthy; it returns the
// stand-in and the one member.
func (e *e2eNode) initAndRun(t *testing.T, version string) (*etcdtest.Kubelet, []cluster.Member) {
	t.Helper()
	if err := e.Init(time.Now()); err != nil {
		t.Fatal(err)
	}
	k := etcdtest.StartKubelet(t, version, e.ManifestPath())
	return k, waitHealthy(t, e.config(t), 1, 60*time.Second)
}

// config reaches the node's member with its healthcheck-client certificate.
func (e *e2eNode) config(t *testing.T) *connect.Config {
	t.Helper()
	cfg, err := e.clusterConfig(ClusterAccess{Endpoints: []string{e.clientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// copyCA gives a joining node the cluster's CA, as an operator (or kubeadm
// --upload-certs) does.
func copyCA(t *testing.T, from, to *e2eNode) {
	t.Helper()
	for _, ext := range []string{".crt", ".key"} {
		data, err := os.ReadFile(filepath.Join(from.PKIDir, "etcd", "ca"+ext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(to.PKIDir, "etcd"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to.PKIDir, "etcd", "ca"+ext), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitHealthy waits until the cluster reached through cfg has want members,
// all healthy voters.
func waitHealthy(t *testing.T, cfg *connect.Config, want int, timeout time.Duration) []cluster.Member {
	t.Helper()
	cli := etcdtest.Client(t, cfg)
	defer cli.Close()
	var members []cluster.Member
	err := poll.Until(context.Background(), fmt.Sprintf("%d healthy members at %s", want, strings.Join(cfg.Endpoints, ",")), 200*time.Millisecond, timeout, func(ctx context.Context) error {
		hs, err := cluster.CheckHealth(ctx, cfg, cli)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if !h.Healthy {
				return errors.New(h.Name + ": " + h.Error)
			}
		}
		if len(hs) != want {
			return fmt.Errorf("%d members", len(hs))
		}
		members, err = cluster.ListMembers(ctx, cfg, cli)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return members
}

func voters(ms []cluster.Member) int {
	v := 0
	for _, m := range ms {
		if !m.Learner && m.Started {
			v++
		}
	}
	return v
}

func memberCount(t *testing.T, cfg *connect.Config) int {
	t.Helper()
	cli := etcdtest.Client(t, cfg)
	defer cli.Close()
	ms, err := cluster.ListMembers(context.Background(), cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func etcdVersion(t *testing.T) string {
	if testing.Short() {
		t.Skip("runs real etcd binaries")
	}
	return etcdtest.Versions(t)[0]
}

// forEachVersion runs test as a subtest for every etcd release the tests
// cover, skipped in -short mode.
func forEachVersion(t *testing.T, test func(t *testing.T, version string)) {
	etcdVersion(t)
	etcdtest.ForEachVersion(t, test)
}

func TestInitJoinLeaveWithRealEtcd(t *testing.T) { forEachVersion(t, testInitJoinLeave) }

func testInitJoinLeave(t *testing.T, version string) {
	root := t.TempDir()
	ctx := context.Background()
	n1 := newE2ENode(t, root, "cp-1", "127.0.0.11")
	n2 := newE2ENode(t, root, "cp-2", "127.0.0.12")

	t.Log("init cp-1 and let the kubelet stand-in run its manifest")
	k1, ms := n1.initAndRun(t, version)
	if ms[0].Name != "cp-1" || ms[0].Endpoint != n1.clientURL() {
		t.Fatalf("members after init: %+v", ms)
	}
	etcdtest.PutKey(t, n1.config(t), "/registry/test", "before-join")

	t.Log("join cp-2: learner, manifest, catch up, promote")
	copyCA(t, n1, n2)
	k2 := etcdtest.StartKubelet(t, version, n2.ManifestPath())
	res, err := n2.Join(ctx, JoinOptions{ClusterAccess: ClusterAccess{Endpoints: []string{n1.clientURL()}}, Timeout: 2 * time.Minute}, time.Now())
	if err != nil {
		t.Fatalf("join: %v\n%s", err, n2.log)
	}
	if res.Reused || len(res.CleanedUp) > 0 {
		t.Errorf("fresh join result: %+v", res)
	}
	both := n1.config(t)
	both.Endpoints = append(both.Endpoints, n2.clientURL())
	ms = waitHealthy(t, both, 2, 60*time.Second)
	if voters(ms) != 2 {
		t.Fatalf("want two voters, got %+v", ms)
	}
	if got := etcdtest.GetKey(t, n2.config(t), "/registry/test"); got != "before-join" {
		t.Errorf("cp-2 reads %q, want the value written before it joined", got)
	}
	t.Logf("join progress:\n%s", n2.log)

	t.Log("join cp-2 again: nothing to do")
	if res, err := n2.Join(ctx, JoinOptions{ClusterAccess: ClusterAccess{Endpoints: []string{n1.clientURL()}}, Timeout: time.Minute}, time.Now()); err != nil || res.MemberID == "" {
		t.Fatalf("second join = %+v, %v", res, err)
	}
	if got := memberCount(t, n1.config(t)); got != 2 {
		t.Fatalf("second join left %d members, want 2", got)
	}

	t.Log("another node name on cp-2's address is refused")
	impostor := *n2.Node
	impostor.Name = "cp-x"
	impostor.PKIDir = filepath.Join(root, "cp-x", "pki")
	impostor.ManifestsDir = filepath.Join(root, "cp-x", "manifests")
	impostor.DataDir = filepath.Join(root, "cp-x", "data")
	copyCA(t, n1, &e2eNode{Node: &impostor})
	if _, err := impostor.Join(ctx, JoinOptions{ClusterAccess: ClusterAccess{Endpoints: []string{n1.clientURL()}}, Timeout: time.Minute}, time.Now()); err == nil || !strings.Contains(err.Error(), "belongs to member cp-2") {
		t.Errorf("join of cp-x on cp-2's peer URL = %v, want a refusal", err)
	}

	t.Log("leave cp-2")
	n2.DryRun = true
	if _, err := n2.Reset(ctx, time.Second); err != nil || !strings.Contains(n2.log.String(), "still a member of a 2-member cluster") {
		t.Errorf("reset --dry-run of a member = %v, want a warning that it is still a member:\n%s", err, n2.log)
	}
	if lres, err := n2.Leave(ctx, LeaveOptions{}); err != nil || lres.Removed || len(lres.Cleaned) > 0 {
		t.Fatalf("leave --dry-run = %+v, %v; want nothing done", lres, err)
	}
	if got := memberCount(t, n1.config(t)); got != 2 || !k2.Running() {
		t.Fatalf("after leave --dry-run: %d members, cp-2 running %v", got, k2.Running())
	}
	n2.DryRun = false
	lres, err := n2.Leave(ctx, LeaveOptions{})
	if err != nil {
		t.Fatalf("leave: %v\n%s", err, n2.log)
	}
	if !lres.Removed {
		t.Errorf("leave result %+v, want removed", lres)
	}
	if _, err := os.Stat(n2.ManifestPath()); !os.IsNotExist(err) {
		t.Errorf("manifest of cp-2 still there after leave: %v", err)
	}
	if entries, _ := dirEntries(n2.DataDir); len(entries) != 0 {
		t.Errorf("data dir of cp-2 not cleared: %v", entries)
	}
	if k2.Running() {
		t.Error("cp-2's etcd still runs after leave")
	}
	ms = waitHealthy(t, n1.config(t), 1, 30*time.Second)
	if ms[0].Name != "cp-1" {
		t.Errorf("remaining member %+v", ms)
	}

	t.Log("leave the last member is refused without --force")
	if _, err := n1.Leave(ctx, LeaveOptions{}); err == nil || !strings.Contains(err.Error(), "last member") {
		t.Errorf("leave of the last member = %v, want a refusal", err)
	}
	if !k1.Running() {
		t.Error("refused leave stopped cp-1")
	}

	t.Log("reset cp-1: local clean-up")
	cleaned, err := n1.Reset(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(cleaned) != 2 || k1.Running() {
		t.Errorf("reset cleaned %v, etcd running %v", cleaned, k1.Running())
	}
}

func TestJoinTimeoutUndoesAndRejoinResumes(t *testing.T) {
	version := etcdVersion(t)
	root := t.TempDir()
	ctx := context.Background()
	n1 := newE2ENode(t, root, "cp-1", "127.0.0.11")
	n2 := newE2ENode(t, root, "cp-2", "127.0.0.12")
	k1, _ := n1.initAndRun(t, version)
	cfg1 := n1.config(t)
	copyCA(t, n1, n2)
	access := ClusterAccess{Endpoints: []string{n1.clientURL()}}

	t.Log("no kubelet on cp-2: the learner never starts, the join times out and undoes itself")
	_, err := n2.Join(ctx, JoinOptions{ClusterAccess: access, Timeout: 3 * time.Second}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "undone: removed learner") || !strings.Contains(err.Error(), "deleted "+n2.ManifestPath()) {
		t.Fatalf("join without a kubelet = %v, want a timeout that says what it undid", err)
	}
	if got := memberCount(t, cfg1); got != 1 {
		t.Fatalf("%d members after the failed join, want 1", got)
	}
	if _, err := os.Stat(n2.ManifestPath()); !os.IsNotExist(err) {
		t.Errorf("manifest left behind: %v", err)
	}

	t.Log("a join killed after adding the learner, before writing the manifest: the next join takes the learner over")
	cli := etcdtest.Client(t, cfg1)
	defer cli.Close()
	added, err := cli.MemberAddAsLearner(ctx, []string{n2.Spec().PeerURL()})
	if err != nil {
		t.Fatal(err)
	}
	k2 := etcdtest.StartKubelet(t, version, n2.ManifestPath())
	res, err := n2.Join(ctx, JoinOptions{ClusterAccess: access, Timeout: 2 * time.Minute}, time.Now())
	if err != nil {
		t.Fatalf("join: %v\n%s", err, n2.log)
	}
	if !res.Reused || res.MemberID != cluster.FormatID(added.Member.ID) {
		t.Errorf("join result %+v, want learner %x reused", res, added.Member.ID)
	}
	both := n1.config(t)
	both.Endpoints = append(both.Endpoints, n2.clientURL())
	if ms := waitHealthy(t, both, 2, 60*time.Second); voters(ms) != 2 {
		t.Fatalf("want two voters: %+v", ms)
	}

	t.Log("a join killed after writing the manifest: the next join takes over the learner")
	if _, err := n2.Leave(ctx, LeaveOptions{}); err != nil {
		t.Fatalf("leave: %v\n%s", err, n2.log)
	}
	resp, err := cli.MemberAddAsLearner(ctx, []string{n2.Spec().PeerURL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.writeJoinManifest(n2.Spec(), resp.Members, resp.Member.ID); err != nil {
		t.Fatal(err)
	}
	res, err = n2.Join(ctx, JoinOptions{ClusterAccess: access, Timeout: 2 * time.Minute}, time.Now())
	if err != nil {
		t.Fatalf("resumed join: %v\n%s", err, n2.log)
	}
	if !res.Reused || res.MemberID != cluster.FormatID(resp.Member.ID) {
		t.Errorf("resumed join %+v, want learner %x reused", res, resp.Member.ID)
	}
	if ms := waitHealthy(t, both, 2, 60*time.Second); voters(ms) != 2 {
		t.Fatalf("want two voters: %+v", ms)
	}
	if !k2.Running() {
		t.Error("cp-2 not running")
	}

	t.Log("with cp-1 down, leaving cp-2 would leave no healthy quorum: refused, nothing changed")
	parked := n1.ManifestPath() + ".parked"
	if err := os.Rename(n1.ManifestPath(), parked); err != nil {
		t.Fatal(err)
	}
	if err := poll.Until(ctx, "the kubelet stand-in to stop cp-1", 100*time.Millisecond, 30*time.Second, func(context.Context) error {
		if k1.Running() {
			return errors.New("still running")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n2only := ClusterAccess{Endpoints: []string{n2.clientURL()}, CommandTimeout: 2 * time.Second}
	if lres, err := n2.Leave(ctx, LeaveOptions{ClusterAccess: n2only}); err == nil || (lres != nil && lres.Removed) {
		t.Fatalf("leave with the other voter down = %+v, %v; want a refusal", lres, err)
	} else {
		t.Logf("refused: %v", err)
	}
	if _, err := os.Stat(n2.ManifestPath()); err != nil || !k2.Running() {
		t.Fatalf("refused leave touched cp-2: manifest %v, running %v", err, k2.Running())
	}
	if err := os.Rename(parked, n1.ManifestPath()); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, both, 2, 60*time.Second)

	t.Log("cp-2's etcd crashes while it joins again: the kubelet restarts it and the join still ends with two voters")
	if _, err := n2.Leave(ctx, LeaveOptions{}); err != nil {
		t.Fatalf("leave: %v\n%s", err, n2.log)
	}
	starts := k2.Starts()
	joined := make(chan error, 1)
	go func() {
		_, err := n2.Join(ctx, JoinOptions{ClusterAccess: access, Timeout: 2 * time.Minute}, time.Now())
		joined <- err
	}()
	if err := poll.Until(ctx, "the kubelet stand-in to start cp-2", 50*time.Millisecond, 60*time.Second, func(context.Context) error {
		if k2.Starts() == starts {
			return errors.New("not started")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	k2.Kill()
	if err := <-joined; err != nil {
		t.Fatalf("join with a crash: %v\n%s", err, n2.log)
	}
	if ms := waitHealthy(t, both, 2, 60*time.Second); voters(ms) != 2 {
		t.Fatalf("want two voters: %+v", ms)
	}

	t.Log("leave the leader: leadership moves first")
	leader := leaderOf(t, cli)
	leaving := n1
	if leader == "cp-2" {
		leaving = n2
	}
	lres, err := leaving.Leave(ctx, LeaveOptions{ClusterAccess: ClusterAccess{Endpoints: both.Endpoints}})
	if err != nil {
		t.Fatalf("leave %s: %v\n%s", leader, err, leaving.log)
	}
	if lres.MovedLeaderTo == "" || !lres.Removed {
		t.Errorf("leave of leader %s: %+v, want leadership moved", leader, lres)
	}
}

func leaderOf(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range cli.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			continue
		}
		for _, m := range ms.Members {
			if m.ID == st.Leader {
				return m.Name
			}
		}
	}
	t.Fatal("no leader")
	return ""
}

func TestJoinWithAnotherCAIsExplained(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	n := newE2ENode(t, t.TempDir(), "cp-2", "127.0.0.12")
	if _, err := pki.LoadOrCreateCA(n.PKIDir, pki.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	_, err := n.Join(context.Background(), JoinOptions{ClusterAccess: ClusterAccess{Endpoints: c.Config().Endpoints}, Timeout: 10 * time.Second}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Fatalf("join with a CA of its own = %v, want the certificate problem named", err)
	}
	if got := memberCount(t, c.Config()); got != 1 {
		t.Errorf("%d members after a refused join, want 1", got)
	}
}
