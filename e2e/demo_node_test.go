package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

// TestThreeNodeControlPlane is what `make demo-node` shows: the etcd of a
// three-node control plane bootstrapped with kubectl etcd init and join
// on real kubelets, then member list -o wide and status run on a node as
// an operator would, and all of it torn down.
func TestThreeNodeControlPlane(t *testing.T) {
	versions := etcdtest.Versions(t)
	nodes := startBootNodes(t, versions[len(versions)-1], 3)
	show := func(n *bootNode, args ...string) result {
		t.Helper()
		r := n.mustKubectl(t, args...)
		t.Logf("%s$ kubectl etcd %s\n%s", n.name, strings.Join(args, " "), r.stdout)
		return r
	}
	show(nodes[0], append([]string{"init"}, nodes[0].identity()...)...)
	waitVoters(t, nodes[0].config(t, nodes[0]), 1)
	for _, n := range nodes[1:] {
		n.copyCAFrom(t, nodes[0])
		show(n, append([]string{"join", "--endpoints", nodes[0].url(), "--timeout", "2m"}, n.identity()...)...)
	}
	waitVoters(t, nodes[0].config(t, nodes...), 3)

	r := show(nodes[0], "member", "list", "-o", "wide")
	for _, n := range nodes {
		if !strings.Contains(r.stdout, n.name) || !strings.Contains(r.stdout, n.url()) {
			t.Errorf("member list -o wide lacks %s at %s", n.name, n.url())
		}
	}
	pki := filepath.Join(nodes[2].node.PKIDir(), "etcd")
	r = show(nodes[2], "status", "--endpoints", nodes[0].url()+","+nodes[1].url()+","+nodes[2].url(),
		"--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "healthcheck-client.crt"), "--key", filepath.Join(pki, "healthcheck-client.key"))
	if strings.Count(r.stdout, "true") < 1 || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("status does not show three members, one leading:\n%s", r.stdout)
	}
}
