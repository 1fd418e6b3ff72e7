package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/nodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// bootNode is one control-plane node of the bootstrap suite: a real
// kubelet and containerd in a network namespace of its own
// (internal/nodetest), so etcd listens on the ports kubeadm gives it, on
// the node's own 127.0.0.1 and its address 10.250.0.N. kubectl-etcd runs
// inside the node, as an operator runs it there.
type bootNode struct {
	name, ip, version string
	client            string
	node              *nodetest.Node
}

// startBootNodes starts n real nodes holding the etcd image of version.
func startBootNodes(t *testing.T, version string, n int, opts ...nodetest.Option) []*bootNode {
	t.Helper()
	_, nodes := startBootCluster(t, version, n, opts...)
	return nodes
}

func startBootCluster(t *testing.T, version string, n int, opts ...nodetest.Option) (*nodetest.Cluster, []*bootNode) {
	t.Helper()
	c := nodetest.Start(t, append([]nodetest.Option{nodetest.WithNodes(n), nodetest.WithEtcdVersion(version), nodetest.WithPlugin(pluginBin)}, opts...)...)
	var nodes []*bootNode
	for _, nd := range c.Nodes {
		nodes = append(nodes, &bootNode{name: nd.Name, ip: nd.IP, version: version, client: "2379", node: nd})
	}
	return c, nodes
}

func (n *bootNode) url() string { return "https://" + n.ip + ":" + n.client }

// dirs are the node's directory flags (Kubectl adds --pki-dir).
func (n *bootNode) dirs() []string { return n.node.DirFlags() }

// manifestDataDir is the data directory n's etcd manifest runs etcd on,
// as leave and reset find it.
func (n *bootNode) manifestDataDir() (string, error) {
	m, err := staticpod.Read(n.node.EtcdManifest())
	if err != nil {
		return "", err
	}
	return m.HostDataDir()
}

// cleanupFlags are the flags of leave and reset, which wait for the
// kubelet to clean up the pod before clearing the data dir.
func (n *bootNode) cleanupFlags() []string {
	return append(n.dirs(), "--kubelet-root-dir", n.node.KubeletRootDir())
}

// manifestFlags are the flags of a command that works through n's etcd
// manifest and waits for the kubelet (leave and reset with the data
// directory the manifest names, upgrade, config set, certs renew).
func (n *bootNode) manifestFlags() []string {
	return []string{"--manifests-dir", n.node.ManifestsDir(), "--kubelet-root-dir", n.node.KubeletRootDir()}
}

func (n *bootNode) identity() []string {
	return append([]string{"--name", n.name, "--advertise-address", n.ip, "--key-algorithm", "ECDSA-P256",
		"--image", nodetest.EtcdImage(n.version)}, n.dirs()...)
}

// copyCAFrom copies etcd/ca.{crt,key}, as an operator does before a join.
func (n *bootNode) copyCAFrom(t *testing.T, from *bootNode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(n.node.PKIDir(), "etcd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key"} {
		data, err := os.ReadFile(filepath.Join(from.node.PKIDir(), "etcd", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.node.PKIDir(), "etcd", f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// config reaches the etcd of nodes from inside n, with n's client
// certificate.
func (n *bootNode) config(t *testing.T, nodes ...*bootNode) *connect.Config {
	t.Helper()
	var eps []string
	for _, o := range nodes {
		eps = append(eps, o.url())
	}
	pki := filepath.Join(n.node.PKIDir(), "etcd")
	cfg, err := connect.NewConfig(eps, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "healthcheck-client.crt"), filepath.Join(pki, "healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dial = n.node.Dial
	return cfg
}

// kubectl runs kubectl etcd ARGS on the node; the error is a failure to
// run it at all.
func (n *bootNode) kubectl(t *testing.T, args ...string) (result, error) {
	r, err := execute(n.node.Kubectl(args...))
	if err != nil {
		return result{}, fmt.Errorf("running kubectl etcd %s on %s: %v", strings.Join(args, " "), n.name, err)
	}
	t.Logf("%s: kubectl etcd %s -> exit %d", n.name, strings.Join(args, " "), r.code)
	return r, nil
}

// mustKubectl runs kubectl etcd ARGS on the node and wants exit 0.
func (n *bootNode) mustKubectl(t *testing.T, args ...string) result {
	t.Helper()
	r, err := n.kubectl(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("%s: kubectl etcd %s: exit %d\n%s\n%s", n.name, strings.Join(args, " "), r.code, r.stderr, n.node.Logs(20))
	}
	return r
}

// initAndJoin runs init on the first node and join on the others, and
// returns a configuration reaching every member from the first node.
func initAndJoin(t *testing.T, nodes []*bootNode) *connect.Config {
	t.Helper()
	n1 := nodes[0]
	t.Logf("init %s, join the others", n1.name)
	n1.mustKubectl(t, append([]string{"init"}, n1.identity()...)...)
	waitVoters(t, n1.config(t, n1), 1)
	for _, n := range nodes[1:] {
		n.copyCAFrom(t, n1)
		n.mustKubectl(t, append([]string{"join", "--endpoints", n1.url(), "--timeout", "2m"}, n.identity()...)...)
	}
	all := n1.config(t, nodes...)
	waitVoters(t, all, len(nodes))
	return all
}

// sameData waits until every member reports the same HashKV at the same
// revision: they hold the same data.
func sameData(t *testing.T, cfg *connect.Config) {
	t.Helper()
	cli := etcdtest.Client(t, cfg)
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
	cli := etcdtest.Client(t, cfg)
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

// TestNodeBootstrap plays three control-plane nodes, each with a real
// kubelet: init one, join two, take one out and back in, renew
// certificates with rolling restarts, checking after each step that every
// member holds the same data.
func TestNodeBootstrap(t *testing.T) {
	etcdtest.ForEachVersion(t, func(t *testing.T, version string) {
		nodes := startBootNodes(t, version, 3)
		n1, n2, n3 := nodes[0], nodes[1], nodes[2]

		t.Log("init cp-1; its kubelet starts etcd from the manifest")
		n1.mustKubectl(t, append([]string{"init"}, n1.identity()...)...)
		all1 := n1.config(t, n1)
		waitVoters(t, all1, 1)
		for i := range 50 {
			etcdtest.PutKey(t, all1, fmt.Sprintf("/registry/pods/default/p%02d", i), strings.Repeat("x", 100))
		}

		for _, n := range []*bootNode{n2, n3} {
			t.Logf("join %s", n.name)
			n.copyCAFrom(t, n1)
			r := n.mustKubectl(t, append([]string{"join", "--endpoints", n1.url(), "--timeout", "2m"}, n.identity()...)...)
			if !strings.Contains(r.stdout, "joined as a voting member") {
				t.Errorf("join printed %q", r.stdout)
			}
			// The member starts as a learner and is promoted only once
			// the real kubelet has started it and it has caught up.
			if !strings.Contains(r.stderr, "Added "+n.name+" as learner") || !strings.Contains(r.stderr, "Promoted learner") {
				t.Errorf("join did not go through a learner that was then promoted:\n%s", r.stderr)
			}
		}
		all := n1.config(t, n1, n2, n3)
		waitVoters(t, all, 3)
		sameData(t, all)

		t.Log("leave cp-2; its kubelet stops etcd, the cluster keeps serving with two members")
		n2.mustKubectl(t, append([]string{"leave", "--yes"}, n2.cleanupFlags()...)...)
		n2.node.WaitEtcd(false, 30*time.Second)
		// The removed member exits by itself and its kubelet
		// restarts it until it sees the manifest gone: no such
		// restart may write into the cleared data dir.
		if entries, _ := os.ReadDir(n2.node.DataDir()); len(entries) != 0 {
			t.Errorf("leave left %d entries in the data dir once the kubelet stopped etcd", len(entries))
		}
		two := n1.config(t, n1, n3)
		waitVoters(t, two, 2)
		etcdtest.PutKey(t, two, "/registry/after-leave", "v")
		sameData(t, two)

		t.Log("rejoin cp-2")
		n2.mustKubectl(t, append([]string{"join", "--endpoints", n1.url() + "," + n3.url(), "--timeout", "2m"}, n2.identity()...)...)
		waitVoters(t, all, 3)
		sameData(t, all)

		t.Log("health through the plugin: every member healthy")
		r := n1.mustKubectl(t, "health", "--endpoints", strings.Join(all.Endpoints, ","), "--cacert", all.CACertFile, "--cert", all.CertFile, "--key", all.KeyFile)
		if strings.Count(r.stdout, "true") != 3 {
			t.Errorf("health:\n%s", r.stdout)
		}

		t.Log("renew certificates and restart the members one by one (two of them started at once) while a writer writes throughout")
		rollingRenewal(t, []*bootNode{n1, n2, n3})

		t.Log("the restart preflight refuses while another member hangs")
		restartRefusedWhileDown(t, n1, n3, all)

		t.Log("reset cp-3: its kubelet stops etcd and its data is gone; cp-1 then removes its member")
		n3.mustKubectl(t, append([]string{"reset", "--yes"}, n3.cleanupFlags()...)...)
		n3.node.WaitEtcd(false, 30*time.Second)
		if entries, _ := os.ReadDir(n3.node.DataDir()); len(entries) != 0 {
			t.Errorf("reset left %d entries in the data dir", len(entries))
		}
		n1.mustKubectl(t, "member", "remove", n3.name, "--yes")
		left := n1.config(t, n1, n2)
		waitVoters(t, left, 2)
		etcdtest.PutKey(t, left, "/registry/after-reset", "v")
		sameData(t, left)
	})
}
