package storage

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		prefix, key string
		want        Key
		resource    string
		ok          bool
	}{
		{"/registry", "/registry/pods/default/web", Key{"pods", "default", "web"}, "pods", true},
		{"/registry", "/registry/namespaces/default", Key{"namespaces", "", "default"}, "namespaces", true},
		{"/registry", "/registry/services/specs/default/kubernetes", Key{"services/specs", "default", "kubernetes"}, "services", true},
		{"/registry", "/registry/services/endpoints/default/kubernetes", Key{"services/endpoints", "default", "kubernetes"}, "endpoints", true},
		{"/registry", "/registry/minions/node-1", Key{"minions", "", "node-1"}, "nodes", true},
		{"/registry", "/registry/apiregistration.k8s.io/apiservices/v1.apps", Key{"apiregistration.k8s.io/apiservices", "", "v1.apps"}, "apiservices.apiregistration.k8s.io", true},
		{"/registry", "/registry/example.com/widgets/ns/w", Key{"example.com/widgets", "ns", "w"}, "widgets.example.com", true},
		{"/registry", "/registry/ranges/serviceips", Key{"ranges", "", "serviceips"}, "ranges", true},
		{"/kubernetes.io/", "/kubernetes.io/secrets/p/s", Key{"secrets", "p", "s"}, "secrets", true},
		{"/registry", "/other/pods/a/b", Key{}, "", false},
		{"/registry", "/registry/pods", Key{Path: "pods"}, "", false},
		{"/registry", "/registry/a/b/c/d", Key{Path: "a"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			k, ok := ParseKey(tt.prefix, tt.key)
			if ok != tt.ok || k != tt.want || ok && k.Resource() != tt.resource {
				t.Errorf("ParseKey = %+v %v (resource %q), want %+v %v (%q)", k, ok, k.Resource(), tt.want, tt.ok, tt.resource)
			}
		})
	}
}

func TestCanonicalResourceAndPaths(t *testing.T) {
	tests := []struct{ in, canonical, firstPath string }{
		{"pods", "pods", "pods"},
		{"po", "pods", "pods"},
		{"Pod", "pods", "pods"},
		{"svc", "services", "services/specs"},
		{"nodes", "nodes", "minions"},
		{"deployment", "deployments.apps", "deployments"},
		{"deployments.apps", "deployments.apps", "deployments"},
		{"ingresses", "ingresses.extensions", "ingress"},
		{"crd", "customresourcedefinitions.apiextensions.k8s.io", "apiextensions.k8s.io/customresourcedefinitions"},
		{"apiservices", "apiservices.apiregistration.k8s.io", "apiregistration.k8s.io/apiservices"},
		{"leases", "leases.coordination.k8s.io", "leases"},
		{"events", "events", "events"},
		{"widgets.example.com", "widgets.example.com", "widgets"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := CanonicalResource(tt.in)
			if c != tt.canonical {
				t.Fatalf("CanonicalResource(%q) = %q, want %q", tt.in, c, tt.canonical)
			}
			if p := CandidatePaths(c); p[0] != tt.firstPath {
				t.Errorf("CandidatePaths(%q) = %v, want %q first", c, p, tt.firstPath)
			}
		})
	}
	for gvk, want := range map[schema.GroupVersionKind][2]string{
		{Version: "v1", Kind: "Service"}:                                     {"services", "services/specs"},
		{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}:   {"networkpolicies.networking.k8s.io", "networkpolicies"},
		{Group: "example.com", Version: "v1", Kind: "Box"}:                   {"boxes.example.com", "example.com/boxes"},
		{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}: {"apiservices.apiregistration.k8s.io", "apiregistration.k8s.io/apiservices"},
		{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}:       {"storageclasses.storage.k8s.io", "storageclasses"},
		{Version: "v1", Kind: "Endpoints"}:                                   {"endpoints", "services/endpoints"},
		{Group: "scheduling.k8s.io", Version: "v1", Kind: "PriorityClass"}:   {"priorityclasses.scheduling.k8s.io", "priorityclasses"},
		{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}:        {"poddisruptionbudgets.policy", "poddisruptionbudgets"},
	} {
		r, p := ResourceFor(gvk)
		if r != want[0] || p != want[1] {
			t.Errorf("ResourceFor(%s) = %q %q, want %q %q", gvk, r, p, want[0], want[1])
		}
	}
}
