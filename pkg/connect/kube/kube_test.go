package kube

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

func kubeadmPod(node, ip string) *corev1.Pod {
	pod := staticpod.NewEtcdPod(staticpod.EtcdPodSpec{Name: node, AdvertiseAddress: ip})
	pod.Name = "etcd-" + node
	pod.Spec.NodeName = node
	pod.Status.Phase = corev1.PodRunning
	return pod
}

func TestFromPodReadsKubeadmsPod(t *testing.T) {
	p, err := FromPod(kubeadmPod("cp-1", "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	want := EtcdPod{Namespace: "kube-system", Name: "etcd-cp-1", Node: "cp-1", Phase: corev1.PodRunning, Container: "etcd",
		ClientURLs: []string{"https://10.0.0.1:2379"}, Member: "cp-1",
		CACert: "/etc/kubernetes/pki/etcd/ca.crt", Cert: "/etc/kubernetes/pki/etcd/server.crt", Key: "/etc/kubernetes/pki/etcd/server.key"}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("FromPod() = %+v\nwant %+v", p, want)
	}

	t.Log("Without kubeadm's annotation, the client URL comes from the command line")
	pod := kubeadmPod("cp-2", "10.0.0.2")
	delete(pod.Annotations, staticpod.AdvertiseClientURLsAnnotation)
	if p, err := FromPod(pod); err != nil || !reflect.DeepEqual(p.ClientURLs, []string{"https://10.0.0.2:2379"}) {
		t.Errorf("FromPod() without annotation = %v, %v", p.ClientURLs, err)
	}

	t.Log("A pod that runs no etcd is refused, naming the pod")
	pod.Spec.Containers[0].Command = []string{"sleep", "1d"}
	if _, err := FromPod(pod); err == nil || !strings.Contains(err.Error(), "pod kube-system/etcd-cp-2") {
		t.Errorf("FromPod(not etcd) error = %v", err)
	}
}

func TestForMemberMatchesByURLThenName(t *testing.T) {
	var pods []EtcdPod
	for _, n := range []struct{ node, ip string }{{"cp-1", "10.0.0.1"}, {"cp-2", "10.0.0.2"}} {
		p, err := FromPod(kubeadmPod(n.node, n.ip))
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	tests := []struct {
		name, member string
		urls         []string
		wantPod      string
	}{
		{"by client URL, whatever the name", "renamed", []string{"https://10.0.0.2:2379/"}, "etcd-cp-2"},
		{"by name for a member that advertises another URL", "cp-1", []string{"https://192.168.0.1:2379"}, "etcd-cp-1"},
		{"an unstarted member has neither", "", nil, ""},
		{"no such member", "cp-9", []string{"https://10.0.0.9:2379"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := ForMember(pods, tt.member, tt.urls)
			if ok != (tt.wantPod != "") || p.Name != tt.wantPod {
				t.Errorf("ForMember(%q, %v) = %q, %v; want %q", tt.member, tt.urls, p.Name, ok, tt.wantPod)
			}
		})
	}
}

func TestGetArgs(t *testing.T) {
	tests := []struct {
		name string
		in   *pb.RangeRequest
		want []string
	}{
		{"one key", &pb.RangeRequest{Key: []byte("/registry/pods/default/a")}, []string{"get", "--", "/registry/pods/default/a"}},
		{"a page of a range at a revision", &pb.RangeRequest{Key: []byte("/registry/pods/"), RangeEnd: []byte("/registry/pods0"), Limit: 500, Revision: 42, KeysOnly: true},
			[]string{"get", "--limit=500", "--rev=42", "--keys-only", "--", "/registry/pods/", "/registry/pods0"}},
		{"from a key, serializable, counted", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Serializable: true, CountOnly: true},
			[]string{"get", "--consistency=s", "--count-only", "--from-key", "--", "a"}},
		{"sorted", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD},
			[]string{"get", "--order=DESCEND", "--sort-by=MODIFY", "--", "a", "b"}},
		{"a key that looks like a flag", &pb.RangeRequest{Key: []byte("--prefix")}, []string{"get", "--", "--prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GetArgs(tt.in)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GetArgs() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := GetArgs(&pb.RangeRequest{Key: []byte("a\x00b")}); err == nil || !strings.Contains(err.Error(), "--via port-forward") {
		t.Errorf("GetArgs(NUL in key) error = %v, want a refusal that names port-forward", err)
	}
}

func TestAPIErrorNamesVerbAndResource(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods/portforward"}, "etcd-cp-1", errors.New("no RBAC policy matched"))
	err := APIError(forbidden, "create", "pods/portforward", "kube-system", "etcd-cp-1")
	var fe *ForbiddenError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), `RBAC forbids "create" on "pods/portforward" in namespace kube-system`) {
		t.Errorf("APIError(forbidden) = %v", err)
	}
	upgrade := errors.New(`error upgrading connection: pods "etcd-cp-1" is forbidden: User "bob" cannot create resource "pods/exec"`)
	if err := APIError(upgrade, "create", "pods/exec", "kube-system", "etcd-cp-1"); !strings.Contains(err.Error(), `RBAC forbids "create" on "pods/exec"`) {
		t.Errorf("APIError(forbidden upgrade) = %v", err)
	}
}
