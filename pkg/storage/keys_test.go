package storage

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
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

func TestResolveAndSegmentsOnASnapshot(t *testing.T) {
	s := &Snapshot{Revision: 9}
	for _, k := range []string{
		"/registry/apiregistration.k8s.io/apiservices/v1.",
		"/registry/example.com/widgets/ns1/w1",
		"/registry/health",
		"/registry/minions/n1",
		"/registry/namespaces/ns1",
		"/registry/services/specs/ns1/svc",
		"/registry/stable.io/crontabs/c1",
	} {
		s.KVs = append(s.KVs, KV{Key: k, ModRevision: 1})
	}
	src := &SnapshotSource{Snapshot: s}
	ctx := context.Background()
	segs, err := Segments(ctx, src, "/registry/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(segs, " "); got != "apiregistration.k8s.io example.com health minions namespaces services stable.io" {
		t.Errorf("segments %q", got)
	}
	for _, tt := range []struct {
		in   string
		want Resolved
	}{
		{"nodes", Resolved{"nodes", "minions", false, true}},
		{"svc", Resolved{"services", "services/specs", true, true}},
		{"widgets", Resolved{"widgets.example.com", "example.com/widgets", true, true}},
		{"crontabs", Resolved{"crontabs.stable.io", "stable.io/crontabs", false, true}},
		{"widgets.example.com", Resolved{"widgets.example.com", "example.com/widgets", true, true}},
		{"pods", Resolved{"pods", "pods", false, false}},
	} {
		r, err := Resolve(ctx, src, "/registry", tt.in, 0)
		if err != nil || r != tt.want {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", tt.in, r, err, tt.want)
		}
	}
}

func TestPrinterFormats(t *testing.T) {
	value := encodeT(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n")
	kvs := []KV{
		{Key: "/registry/deployments/prod/web", Value: value, ModRevision: 5},
		{Key: "/registry/deployments/prod/web2", Value: value, ModRevision: 6},
	}
	var d Decoder
	print := func(format string, list bool) (string, string) {
		var out, errOut bytes.Buffer
		p := &Printer{Out: &out, ErrOut: &errOut, Format: format, List: list, Prefix: "/registry"}
		if err := p.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			o, err := d.Decode(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Print(kv, o); err != nil {
				return out.String(), err.Error()
			}
		}
		if err := p.End(); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	out, _ := print(OutputTable, true)
	if want := "RESOURCE      NAMESPACE   NAME   SIZE   MODREV\ndeployments   prod        web    "; !strings.HasPrefix(out, want) {
		t.Errorf("table:\n%s", out)
	}
	out, _ = print(OutputName, true)
	if out != "deployment.apps/web\ndeployment.apps/web\n" {
		t.Errorf("name: %q", out)
	}
	out, _ = print(OutputKeys, true)
	if out != "/registry/deployments/prod/web\n/registry/deployments/prod/web2\n" {
		t.Errorf("keys: %q", out)
	}
	if out, _ := print(OutputRaw, true); out != fmt.Sprintf("30 %d\n/registry/deployments/prod/web%s\n31 %d\n/registry/deployments/prod/web2%s\n", len(kvs[0].Value), kvs[0].Value, len(kvs[1].Value), kvs[1].Value) {
		t.Errorf("raw of two keys, framed: %q", out)
	}
	for _, f := range []string{OutputYAML, OutputJSON} {
		out, _ = print(f, true)
		var l struct {
			Kind  string           `json:"kind"`
			Items []map[string]any `json:"items"`
		}
		if err := yamlUnmarshal(out, &l); err != nil || l.Kind != "List" || len(l.Items) != 2 || l.Items[1]["metadata"].(map[string]any)["resourceVersion"] != "6" {
			t.Errorf("%s list (%v):\n%s", f, err, out)
		}
	}
	kvs = nil
	out, _ = print(OutputYAML, true)
	if out != "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n" {
		t.Errorf("empty yaml list: %q", out)
	}
	out, _ = print(OutputJSON, true)
	var l struct{ Items []any }
	if err := yamlUnmarshal(out, &l); err != nil || l.Items == nil {
		t.Errorf("empty json list (%v): %q", err, out)
	}
}

func encodeT(t *testing.T, doc string) []byte {
	t.Helper()
	v, _, err := Encode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func yamlUnmarshal(s string, v any) error { return yaml.Unmarshal([]byte(s), v) }
