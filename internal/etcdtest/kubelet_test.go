package etcdtest

import (
	"slices"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

func TestKubeletCommandMapsHostPaths(t *testing.T) {
	// A manifest with kubeadm's container paths, whose volumes point at
	// test directories: the stand-in runs etcd on the host paths.
	pod := staticpod.NewEtcdPod(staticpod.EtcdPodSpec{Name: "cp-1", AdvertiseAddress: "127.0.0.11"})
	for i := range pod.Spec.Volumes {
		pod.Spec.Volumes[i].HostPath.Path = "/tmp/node1/" + pod.Spec.Volumes[i].Name
	}
	data, err := staticpod.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	k := &Kubelet{Binary: "/cache/etcd", ManifestPath: "etcd.yaml"}
	args, err := k.Command(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"/cache/etcd",
		"--data-dir=/tmp/node1/etcd-data",
		"--cert-file=/tmp/node1/etcd-certs/server.crt",
		"--trusted-ca-file=/tmp/node1/etcd-certs/ca.crt",
		"--name=cp-1",
		"--listen-metrics-urls=http://127.0.0.1:2381",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("command lacks %s: %v", want, args)
		}
	}
	if remap("--data-dir=/var/lib/etcd-other", "/var/lib/etcd", "/x") != "--data-dir=/var/lib/etcd-other" {
		t.Error("a sibling path with the same prefix was remapped")
	}
}
