package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// bootNode is one control-plane "node" of the bootstrap suite: its own
// directories, its own 127.0.0.x address and ports, and a kubelet stand-in
// that runs whatever etcd manifest the plugin writes there.
type bootNode struct {
	name, ip, dir         string
	client, peer, metrics string
	kubelet               *etcdtest.Kubelet
}

func newBootNode(t *testing.T, root, version, name, ip string) *bootNode {
	t.Helper()
	var ports []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	}
	n := &bootNode{name: name, ip: ip, dir: filepath.Join(root, name), client: ports[0], peer: ports[1], metrics: ports[2]}
	n.kubelet = etcdtest.StartKubelet(t, version, filepath.Join(n.dir, "manifests", "etcd.yaml"))
	return n
}

func (n *bootNode) url() string { return "https://" + n.ip + ":" + n.client }

func (n *bootNode) dirs() []string {
	return []string{"--pki-dir", filepath.Join(n.dir, "pki"), "--manifests-dir", filepath.Join(n.dir, "manifests"), "--data-dir", filepath.Join(n.dir, "data")}
}

func (n *bootNode) identity() []string {
	return append([]string{"--name", n.name, "--advertise-address", n.ip, "--key-algorithm", "ECDSA-P256",
		"--client-port", n.client, "--peer-port", n.peer, "--metrics-port", n.metrics}, n.dirs()...)
}

// copyCAFrom copies etcd/ca.{crt,key}, as an operator does before a join.
func (n *bootNode) copyCAFrom(t *testing.T, from *bootNode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(n.dir, "pki", "etcd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key"} {
		data, err := os.ReadFile(filepath.Join(from.dir, "pki", "etcd", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "pki", "etcd", f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func (n *bootNode) config(t *testing.T, nodes ...*bootNode) *connect.Config {
	t.Helper()
	var eps []string
	for _, o := range nodes {
		eps = append(eps, o.url())
	}
	pki := filepath.Join(n.dir, "pki", "etcd")
	cfg, err := connect.NewConfig(eps, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "healthcheck-client.crt"), filepath.Join(pki, "healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustPlugin(t *testing.T, args ...string) result {
	t.Helper()
	r := plugin(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("kubectl etcd %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// sameData waits until every member reports the same HashKV at the same
// revision: they hold the same data.
func sameData(t *testing.T, cfg *connect.Config) {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hashes, err := hashes(ctx, cli, cfg.Endpoints)
		cancel()
		if err == nil {
			first := hashes[0]
			same := true
			for _, h := range hashes[1:] {
				same = same && h == first
			}
			if same {
				t.Logf("every member has HashKV %s", first)
				return
			}
			last = fmt.Sprint(hashes)
		} else {
			last = err.Error()
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("members do not converge on the same data: %s", last)
}

func hashes(ctx context.Context, cli *clientv3.Client, endpoints []string) ([]string, error) {
	resp, err := cli.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	rev := resp.Header.Revision
	var out []string
	for _, ep := range endpoints {
		h, err := cli.HashKV(ctx, ep, rev)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ep, err)
		}
		out = append(out, fmt.Sprintf("%d@%d", h.Hash, rev))
	}
	return out, nil
}

func waitVoters(t *testing.T, cfg *connect.Config, want int) {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.MemberList(ctx)
		cancel()
		if err == nil {
			voters := 0
			for _, m := range resp.Members {
				if !m.IsLearner && m.Name != "" {
					voters++
				}
			}
			if voters == want && len(resp.Members) == want {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("cluster did not reach %d voters", want)
}

func putKey(t *testing.T, cfg *connect.Config, key, value string) {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, value); err != nil {
		t.Fatal(err)
	}
}

// TestNodeBootstrap plays three control-plane nodes: init one, join two,
// take one out and back in, renew certificates with rolling restarts,
// checking after each step that every member holds the same data.
func TestNodeBootstrap(t *testing.T) {
	for _, version := range etcdtest.Versions(t) {
		t.Run("etcd-"+version, func(t *testing.T) {
			root := t.TempDir()
			n1 := newBootNode(t, root, version, "cp-1", "127.0.0.11")
			n2 := newBootNode(t, root, version, "cp-2", "127.0.0.12")
			n3 := newBootNode(t, root, version, "cp-3", "127.0.0.13")

			t.Log("init cp-1; its kubelet starts etcd from the manifest")
			mustPlugin(t, append([]string{"init"}, n1.identity()...)...)
			all1 := n1.config(t, n1)
			waitVoters(t, all1, 1)
			for i := range 50 {
				putKey(t, all1, fmt.Sprintf("/registry/pods/default/p%02d", i), strings.Repeat("x", 100))
			}

			for _, n := range []*bootNode{n2, n3} {
				t.Logf("join %s", n.name)
				n.copyCAFrom(t, n1)
				r := mustPlugin(t, append([]string{"join", "--endpoints", n1.url(), "--timeout", "2m"}, n.identity()...)...)
				if !strings.Contains(r.stdout, "joined as a voting member") {
					t.Errorf("join printed %q", r.stdout)
				}
			}
			all := n1.config(t, n1, n2, n3)
			waitVoters(t, all, 3)
			sameData(t, all)

			t.Log("leave cp-2; the cluster keeps serving with two members")
			mustPlugin(t, append([]string{"leave", "--yes"}, n2.dirs()...)...)
			if n2.kubelet.Running() {
				t.Error("cp-2's etcd still runs after leave")
			}
			two := n1.config(t, n1, n3)
			waitVoters(t, two, 2)
			putKey(t, two, "/registry/after-leave", "v")
			sameData(t, two)

			t.Log("rejoin cp-2")
			mustPlugin(t, append([]string{"join", "--endpoints", n1.url() + "," + n3.url(), "--timeout", "2m"}, n2.identity()...)...)
			waitVoters(t, all, 3)
			sameData(t, all)

			t.Log("health through the plugin: every member healthy")
			r := mustPlugin(t, "health", "--endpoints", strings.Join(all.Endpoints, ","), "--cacert", all.CACertFile, "--cert", all.CertFile, "--key", all.KeyFile)
			if strings.Count(r.stdout, "true") != 3 {
				t.Errorf("health:\n%s", r.stdout)
			}

			t.Log("renew certificates and restart the members one by one (two of them started at once) while a writer writes throughout")
			rollingRenewal(t, []*bootNode{n1, n2, n3})

			t.Log("the restart preflight refuses while another member hangs")
			restartRefusedWhileDown(t, n1, n3, all)
		})
	}
}
