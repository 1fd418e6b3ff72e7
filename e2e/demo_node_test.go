package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/nodetest"
)

// TestThreeNodeControlPlane is what `make demo-node` shows: the etcd of a
// three-node control plane bootstrapped with kubectl etcd init and join
// on real kubelets registered with a kube-apiserver, then member list -o
// wide (with each member's node and mirror pod from the API) and status
// run on a node as an operator would, and all of it torn down. The
// kube-apiserver stores its objects in an etcd of its own on the host:
// the nodes' etcd is reachable only inside their network.
func TestThreeNodeControlPlane(t *testing.T) {
	version := etcdtest.NewestVersion(t)
	etcd := etcdtest.StartProcesses(t, version, etcdtest.WithClusterSize(1))
	// The server reaches the kubelets (exec, port-forward) through a proxy
	// into the nodes' network.
	egress := nodetest.StartEgressProxy(t)
	api := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State),
		kubetest.Flags("--egress-selector-config-file="+egress.WriteEgressConfig(t, t.TempDir()), "--kubelet-preferred-address-types=InternalIP"))
	c, nodes := startBootCluster(t, version, 3, nodetest.WithAPIServer(api.URL, api.AdminToken), nodetest.WithEgressProxy(egress))
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

	t.Log("the kubelets registered their nodes and mirror pods")
	deadline := time.Now().Add(90 * time.Second)
	for {
		pods, err := api.Client.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: "component=etcd"})
		nodeList, nerr := api.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		running := 0
		if err == nil {
			for _, p := range pods.Items {
				if p.Status.Phase == "Running" {
					running++
				}
			}
		}
		if nerr == nil && running == 3 && len(nodeList.Items) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 nodes and running etcd mirror pods in the API: %v %v", err, nerr)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Log("through the Kubernetes API: etcdctl runs in each etcd pod (exec through the real kubelets)")
	r := show(nodes[0], "member", "list", "-o", "wide", "--via", "exec", "--kubeconfig", c.Kubeconfig())
	for _, n := range nodes {
		if !strings.Contains(r.stdout, n.url()) || !strings.Contains(r.stdout, " "+n.name+" ") || !strings.Contains(r.stdout, "etcd-"+n.name) {
			t.Errorf("member list -o wide lacks %s at %s on node %s, pod etcd-%s", n.name, n.url(), n.name, n.name)
		}
	}
	pki := filepath.Join(nodes[2].node.PKIDir(), "etcd")
	certs := []string{"--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "healthcheck-client.crt"), "--key", filepath.Join(pki, "healthcheck-client.key")}
	t.Log("through the Kubernetes API with a client certificate: a port-forward tunnel to each etcd pod")
	r = show(nodes[2], append([]string{"health", "--via", "port-forward", "--kubeconfig", c.Kubeconfig()}, certs...)...)
	if strings.Count(r.stdout, "true") != 3 {
		t.Errorf("health through port-forward does not show three healthy members:\n%s", r.stdout)
	}
	r = show(nodes[2], "status", "--endpoints", nodes[0].url()+","+nodes[1].url()+","+nodes[2].url(),
		"--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "healthcheck-client.crt"), "--key", filepath.Join(pki, "healthcheck-client.key"))
	if strings.Count(r.stdout, "true") < 1 || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("status does not show three members, one leading:\n%s", r.stdout)
	}
}
