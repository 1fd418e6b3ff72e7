package node_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// initFirst runs `kubectl etcd init` with args, the flags of the node
// under dir (cmdtest.NodeArgs), lets the kubelet stand-in run its manifest
// with etcd version and waits until its member at url is healthy. It
// returns the flags that reach the member with the node's
// healthcheck-client certificate.
func initFirst(t *testing.T, version, dir, url string, args []string) []string {
	t.Helper()
	if _, stderr, _, err := cmdtest.Run(t, append([]string{"init"}, args...)...); err != nil {
		t.Fatalf("init: %v\n%s", err, stderr)
	}
	etcdtest.StartKubelet(t, version, filepath.Join(dir, "manifests", "etcd.yaml"))
	conn := []string{"--endpoints", url, "--pki-dir", filepath.Join(dir, "pki"),
		"--cacert", filepath.Join(dir, "pki", "etcd", "ca.crt"),
		"--cert", filepath.Join(dir, "pki", "etcd", "healthcheck-client.crt"),
		"--key", filepath.Join(dir, "pki", "etcd", "healthcheck-client.key")}
	cmdtest.WaitHealthy(t, conn)
	return conn
}

func memberList(t *testing.T, conn []string) []cluster.Member {
	t.Helper()
	out, _, _, err := cmdtest.Run(t, append(conn, "member", "list", "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var ms []cluster.Member
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return ms
}

// TestJoinReplacesStaleMember rebuilds a node that is still a member: its
// etcd killed, its disk wiped, then joined again under its old name, once
// on the same address and once on a new one.
func TestJoinReplacesStaleMember(t *testing.T) {
	version := etcdtest.Versions(t)[0]
	root := t.TempDir()
	dir1, dir3, dir2 := filepath.Join(root, "cp-1"), filepath.Join(root, "cp-3"), filepath.Join(root, "cp-2")
	args1, url1 := cmdtest.NodeArgs(t, dir1, "cp-1", "127.0.0.31")
	args3, _ := cmdtest.NodeArgs(t, dir3, "cp-3", "127.0.0.34")
	args2, _ := cmdtest.NodeArgs(t, dir2, "cp-2", "127.0.0.32")
	conn1 := initFirst(t, version, dir1, url1, args1)
	join := []string{"join", "--endpoints", url1, "--timeout", "2m"}
	cmdtest.CopyCA(t, dir1, dir3)
	etcdtest.StartKubelet(t, version, filepath.Join(dir3, "manifests", "etcd.yaml"))
	if _, stderr, _, err := cmdtest.Run(t, append(join, args3...)...); err != nil {
		t.Fatalf("join cp-3: %v\n%s", err, stderr)
	}
	cmdtest.CopyCA(t, dir1, dir2)
	k2 := etcdtest.StartKubelet(t, version, filepath.Join(dir2, "manifests", "etcd.yaml"))
	if _, stderr, _, err := cmdtest.Run(t, append(join, args2...)...); err != nil {
		t.Fatalf("join: %v\n%s", err, stderr)
	}
	first := memberList(t, conn1)
	if len(first) != 3 {
		t.Fatalf("members: %+v", first)
	}
	oldID := byName(t, first, "cp-2").ID

	t.Log("cp-2 answers: a join of cp-2 from a new address is refused, it would remove a working member")
	dir2b := filepath.Join(root, "cp-2-new")
	args2b, _ := cmdtest.NodeArgs(t, dir2b, "cp-2", "127.0.0.33")
	cmdtest.CopyCA(t, dir1, dir2b)
	_, stderr, _, err := cmdtest.Run(t, append(join, args2b...)...)
	if err == nil || !strings.Contains(err.Error(), "still answers") || !strings.Contains(err.Error(), "--replace") || !strings.Contains(stderr, "Preflight: remove member cp-2 ("+oldID+")") {
		t.Fatalf("replacing a member that answers: %v\n%s", err, stderr)
	}
	if ms := memberList(t, conn1); len(ms) != 3 || byName(t, ms, "cp-2").ID != oldID {
		t.Fatalf("the refused join changed the members: %+v", ms)
	}

	t.Log("cp-2 crashes (kill -9) and its disk is wiped: the node is rebuilt with nothing but the CA")
	k2.Kill()
	if err := os.Remove(filepath.Join(dir2, "manifests", "etcd.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"data", "pki"} {
		if err := os.RemoveAll(filepath.Join(dir2, d)); err != nil {
			t.Fatal(err)
		}
	}
	cmdtest.CopyCA(t, dir1, dir2)

	t.Log("join --dry-run prints the preflight of removing the stale member and changes nothing")
	// A dry run writes no certificates: it reaches the cluster with cp-1's.
	dry := append(append(append([]string{}, join...), "--dry-run", "--cert", conn1[7], "--key", conn1[9]), args2...)
	_, stderr, _, err = cmdtest.Run(t, dry...)
	if err != nil || !strings.Contains(stderr, "Preflight: remove member cp-2 ("+oldID+")") || !strings.Contains(stderr, "data directory "+filepath.Join(dir2, "data")+" is empty") ||
		!strings.Contains(stderr, "verdict: safe") || !strings.Contains(stderr, "would remove stale member") {
		t.Fatalf("dry run: %v\n%s", err, stderr)
	}
	if ms := memberList(t, conn1); len(ms) != 3 || byName(t, ms, "cp-2").ID != oldID {
		t.Fatalf("the dry run changed the members: %+v", ms)
	}

	t.Log("join on the rebuilt cp-2 removes its stale member first, then joins: no 'member already exists'")
	out, stderr, _, err := cmdtest.Run(t, append(join, args2...)...)
	if err != nil {
		t.Fatalf("rejoin: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "replacing stale member "+oldID) || !strings.Contains(stderr, "Removed stale member cp-2 ("+oldID+")") {
		t.Errorf("rejoin said:\n%s%s", out, stderr)
	}
	ms := memberList(t, conn1)
	m2 := byName(t, ms, "cp-2")
	if len(ms) != 3 || m2.ID == oldID || m2.Learner || !m2.Started {
		t.Fatalf("members after the rejoin: %+v", ms)
	}
	cmdtest.WaitHealthy(t, conn1)

	t.Log("cp-2 is rebuilt again, this time on a new address: the member named cp-2 under the old peer URL is replaced")
	secondID := m2.ID
	k2.Kill()
	if err := os.Remove(filepath.Join(dir2, "manifests", "etcd.yaml")); err != nil {
		t.Fatal(err)
	}
	etcdtest.StartKubelet(t, version, filepath.Join(dir2b, "manifests", "etcd.yaml"))
	// Until the health of cp-2's old self shows it down.
	time.Sleep(2 * time.Second)
	out, stderr, _, err = cmdtest.Run(t, append(join, args2b...)...)
	if err != nil || !strings.Contains(stderr, "this node under its old address") || !strings.Contains(out, "replacing stale member "+secondID) {
		t.Fatalf("rejoin on a new address: %v\n%s%s", err, out, stderr)
	}
	ms = memberList(t, conn1)
	if m := byName(t, ms, "cp-2"); len(ms) != 3 || !strings.Contains(strings.Join(m.PeerURLs, ","), "127.0.0.33") {
		t.Fatalf("members after the rejoin on a new address: %+v", ms)
	}
	cmdtest.WaitHealthy(t, conn1)
}

func byName(t *testing.T, ms []cluster.Member, name string) cluster.Member {
	t.Helper()
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no member %s in %+v", name, ms)
	return cluster.Member{}
}
