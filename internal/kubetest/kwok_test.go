package kubetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEtcdControlPlane checks the harness with kubectl itself: the etcd
// pods run on Ready nodes as kubeadm lays them out, and `kubectl exec`
// runs the real etcdctl with the certificates the pod names, reaching that
// pod's member.
func TestEtcdControlPlane(t *testing.T) {
	cp := StartEtcdControlPlane(t, "3.7.3")
	ctx := context.Background()
	out, err := cp.API.Kubectl(ctx, "-n", EtcdNamespace, "get", "pods", "-l", "component=etcd,tier=control-plane",
		"-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.annotations.kubeadm\.kubernetes\.io/etcd\.advertise-client-urls}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range cp.Etcd.State.Members {
		want := cp.Pods[i] + " " + cp.Nodes[i] + " Running " + m.ClientURL
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get pods lacks %q:\n%s", want, out)
		}
	}

	m := cp.Etcd.State.Members[1]
	pod, err := cp.API.Client.CoreV1().Pods(EtcdNamespace).Get(ctx, cp.Pods[1], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{}
	for _, arg := range pod.Spec.Containers[0].Command[1:] {
		k, v, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		flags[k] = v
	}
	out, err = cp.API.Kubectl(ctx, "-n", EtcdNamespace, "exec", cp.Pods[1], "-c", "etcd", "--",
		"etcdctl", "--endpoints="+flags["advertise-client-urls"], "--cacert="+flags["trusted-ca-file"],
		"--cert="+flags["cert-file"], "--key="+flags["key-file"], "endpoint", "status", "-w", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st []struct {
		Endpoint string
		Status   struct {
			Version string `json:"version"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 || st[0].Endpoint != m.ClientURL || st[0].Status.Version != "3.7.3" {
		t.Errorf("kubectl exec etcdctl endpoint status = %v\n%s", err, out)
	}
}
