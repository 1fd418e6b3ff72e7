package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
)

// workload is what the real kubectl applies before the comparison: one of
// each kind a user reads back most, in a namespace of its own, plus
// cluster-scoped objects. No controller manager or scheduler runs, so
// nothing changes them after they are written.
const workload = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop, labels: {app: web}}
data: {color: blue, size: "3"}
binaryData: {blob: AAEC}
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
type: Opaque
stringData: {password: hunter2}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}, annotations: {note: "stored as protobuf"}}
spec:
  containers:
  - name: web
    image: registry.k8s.io/pause:3.10
    ports: [{containerPort: 8080, name: http}]
    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 32Mi}}
    env: [{name: MODE, value: test}]
  tolerations: [{key: example.com/spot, operator: Exists, effect: NoSchedule}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.k8s.io/pause:3.10}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: web, namespace: shop}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader, namespace: shop}
spec: {holderIdentity: web-0, leaseDurationSeconds: 15}
---
apiVersion: v1
kind: Event
metadata: {name: web-0.started, namespace: shop}
involvedObject: {kind: Pod, name: web-0, namespace: shop}
reason: Started
message: started for the test
type: Normal
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {kubernetes.io/hostname: node-1}}
spec: {podCIDR: 10.244.1.0/24, taints: [{key: example.com/spot, effect: NoSchedule}]}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
`

const widget = `
apiVersion: example.com/v1
kind: Widget
metadata: {name: gear, namespace: shop, labels: {app: web}}
spec: {size: 3, color: red}
`

// unservedPrefixes hold what kube-apiserver keeps in etcd for itself and
// serves through no API: nothing to compare them with.
var unservedPrefixes = map[string]string{
	"/registry/ranges/":           "RangeAllocations: the service IP and node port allocators' bitmaps",
	"/registry/peerserverleases/": "Endpoints each apiserver publishes for its peers (mixed-version proxy)",
	"/registry/masterleases/":     "Endpoints of the lease endpoint reconciler (off here)",
}

// extensionsScheme converts between the apiextensions versions with
// apiextensions-apiserver's own conversion and defaulting.
var extensionsScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	apiextensionsinstall.Install(s)
	return s
}()

// asServed turns a stored object into the form kube-apiserver serves it
// in. The one intended difference: CustomResourceDefinitions are still
// stored as apiextensions.k8s.io/v1beta1, a version 1.37 no longer
// serves, and kubectl etcd shows what is stored; the apiserver decodes
// them with defaulting and converts them to v1, and so does this.
func asServed(t *testing.T, stored map[string]any) map[string]any {
	t.Helper()
	if stored["apiVersion"] != "apiextensions.k8s.io/v1beta1" || stored["kind"] != "CustomResourceDefinition" {
		return stored
	}
	old := &apiextensionsv1beta1.CustomResourceDefinition{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(stored, old); err != nil {
		t.Fatalf("stored CRD: %v", err)
	}
	extensionsScheme.Default(old)
	// Through the internal version, as the apiserver converts.
	internal := &apiextensions.CustomResourceDefinition{}
	converted := &apiextensionsv1.CustomResourceDefinition{}
	if err := extensionsScheme.Convert(old, internal, nil); err != nil {
		t.Fatalf("converting the stored CRD %s: %v", old.Name, err)
	}
	if err := extensionsScheme.Convert(internal, converted, nil); err != nil {
		t.Fatalf("converting the stored CRD %s to v1: %v", old.Name, err)
	}
	converted.APIVersion, converted.Kind = apiextensionsv1.SchemeGroupVersion.String(), "CustomResourceDefinition"
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(converted)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through JSON so numbers and empty fields compare as the
	// served JSON's do.
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// encryptionKey returns 32 random bytes, base64, for an EncryptionConfiguration.
func encryptionKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func writeIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// decodeDoc parses one JSON or YAML object.
func decodeDoc(t *testing.T, what, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, s)
	}
	return m
}

// objectDiff reports where stored and served differ, "" when they are equal.
func objectDiff(stored, served map[string]any) string {
	if reflect.DeepEqual(stored, served) {
		return ""
	}
	a, _ := yaml.Marshal(stored)
	b, _ := yaml.Marshal(served)
	return lineDiff(string(a), string(b))
}

// lineDiff lists the lines only one side has: enough to see the field.
func lineDiff(stored, served string) string {
	count := map[string]int{}
	for _, l := range strings.Split(stored, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(served, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "  stored only: "+l)
		case n < 0:
			out = append(out, "  served only: "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestStoredObjectsEqualServedObjects runs a real kube-apiserver 1.37 on a
// real etcd with encryption at rest (aescbc for secrets, secretbox for
// configmaps, aesgcm for a custom resource), writes objects with the real
// kubectl, and checks that what kubectl-etcd decodes from etcd is exactly
// what the apiserver serves: every field, resourceVersion included. The
// only difference allowed is the version of CustomResourceDefinitions
// (see asServed). It also reads the same objects from a snapshot file,
// watches kubectl's changes, and rotates the secrets key and reads both
// generations.
// encryptionConfigYAML is the EncryptionConfiguration of
// TestStoredObjectsEqualServedObjects: secretsProviders (provider lines,
// the one that writes first) then identity for secrets, secretbox with k2
// for configmaps and aesgcm with k3 for widgets.
func encryptionConfigYAML(secretsProviders, k2, k3 string) string {
	return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
` + secretsProviders + `  - identity: {}
- resources: [configmaps]
  providers:
  - secretbox: {keys: [{name: k2, secret: ` + k2 + `}]}
  - identity: {}
- resources: [widgets.example.com]
  providers:
  - aesgcm: {keys: [{name: k3, secret: ` + k3 + `}]}
  - identity: {}
`
}

func TestStoredObjectsEqualServedObjects(t *testing.T) {
	etcd := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithClusterSize(1))
	dir := t.TempDir()
	k1, k2, k3 := encryptionKey(t), encryptionKey(t), encryptionKey(t)
	encConfig := writeIn(t, dir, "encryption.yaml", encryptionConfigYAML(
		"  - aescbc: {keys: [{name: k1, secret: "+k1+"}]}\n", k2, k3))
	s := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State), kubetest.EncryptionProviderConfig(encConfig))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn := append(etcd.ConnectArgs(), "--encryption-provider-config", encConfig)

	t.Log("the real kubectl applies a namespace of workloads, a node and a CRD, then a custom resource")
	if out, err := s.Kubectl(ctx, "apply", "-f", writeIn(t, dir, "workload.yaml", workload)); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("\n%s", strings.TrimSpace(out))
	}
	if _, err := s.Kubectl(ctx, "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	// The CRD is served a moment after it is established; retry briefly.
	var err error
	for i := 0; i < 20; i++ {
		if _, err = s.Kubectl(ctx, "apply", "-f", writeIn(t, dir, "widget.yaml", widget)); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}

	t.Run("values are encrypted at rest with the provider the config names", func(t *testing.T) {
		cli := etcd.Client()
		for key, prefix := range map[string]string{
			"/registry/secrets/shop/db":               "k8s:enc:aescbc:v1:k1:",
			"/registry/configmaps/shop/settings":      "k8s:enc:secretbox:v1:k2:",
			"/registry/example.com/widgets/shop/gear": "k8s:enc:aesgcm:v1:k3:",
			"/registry/pods/shop/web-0":               "k8s\x00",
		} {
			resp, err := cli.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != 1 {
				t.Errorf("%s is not in etcd", key)
				continue
			}
			if v := string(resp.Kvs[0].Value); !strings.HasPrefix(v, prefix) {
				t.Errorf("%s starts with %q, want %q", key, v[:min(len(v), len(prefix))], prefix)
			}
		}
	})

	t.Run("get RESOURCE NAME -o json and -o yaml equal kubectl get -o json", func(t *testing.T) {
		for _, obj := range []struct{ kubectl, plugin, ns, name string }{
			{"namespace", "namespaces", "", "shop"},
			{"configmap", "configmaps", "shop", "settings"},
			{"secret", "secrets", "shop", "db"},
			{"serviceaccount", "serviceaccounts", "shop", "web"},
			{"pod", "pods", "shop", "web-0"},
			{"deployment.apps", "deployments", "shop", "web"},
			{"service", "services", "shop", "web"},
			{"role.rbac.authorization.k8s.io", "roles", "shop", "reader"},
			{"rolebinding.rbac.authorization.k8s.io", "rolebindings", "shop", "reader"},
			{"lease.coordination.k8s.io", "leases", "shop", "leader"},
			{"event", "events", "shop", "web-0.started"},
			{"node", "nodes", "", "node-1"},
			{"customresourcedefinition.apiextensions.k8s.io", "customresourcedefinitions.apiextensions.k8s.io", "", "widgets.example.com"},
			{"widget.example.com", "widgets.example.com", "shop", "gear"},
			{"service", "services", "default", "kubernetes"},
			{"priorityclass.scheduling.k8s.io", "priorityclasses", "", "system-node-critical"},
			{"clusterrole.rbac.authorization.k8s.io", "clusterroles", "", "admin"},
		} {
			t.Run(obj.plugin+"/"+obj.name, func(t *testing.T) {
				kargs := []string{"get", obj.kubectl, obj.name, "-o", "json", "--show-managed-fields"}
				pargs := append(append([]string{}, conn...), "get", obj.plugin, obj.name)
				if obj.ns != "" {
					kargs = append(kargs, "-n", obj.ns)
					pargs = append(pargs, "-n", obj.ns)
				}
				out, err := s.Kubectl(ctx, kargs...)
				if err != nil {
					t.Fatal(err)
				}
				served := decodeDoc(t, "kubectl get", out)
				for _, format := range []string{"json", "yaml"} {
					r := plugin(t, nil, append(pargs, "-o", format)...)
					if r.code != 0 {
						t.Fatalf("kubectl etcd get -o %s: exit %d: %s", format, r.code, r.stderr)
					}
					if d := objectDiff(asServed(t, decodeDoc(t, "kubectl etcd get -o "+format, r.stdout)), served); d != "" {
						t.Errorf("-o %s differs from what kube-apiserver serves:\n%s", format, d)
					}
				}
			})
		}
	})

	t.Run("every key under /registry decodes and equals the served object at the same revision", func(t *testing.T) {
		resp, err := etcd.Client().Get(ctx, "/registry/")
		if err != nil {
			t.Fatal(err)
		}
		rev := resp.Header.Revision
		r := plugin(t, nil, append(conn, "get", "/registry/", "--prefix", "-o", "json", "--rev", strconv.FormatInt(rev, 10))...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("kubectl etcd get /registry/ --prefix: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		var stored struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &stored); err != nil {
			t.Fatal(err)
		}
		r2 := plugin(t, nil, append(conn, "get", "/registry/", "--prefix", "-o", "keys", "--rev", strconv.FormatInt(rev, 10))...)
		keys := strings.Fields(r2.stdout)
		if len(keys) != len(stored.Items) {
			t.Fatalf("%d keys under /registry but %d decoded objects", len(keys), len(stored.Items))
		}

		dyn, err := dynamic.NewForConfig(s.Config)
		if err != nil {
			t.Fatal(err)
		}
		disc, err := discovery.NewDiscoveryClientForConfig(s.Config)
		if err != nil {
			t.Fatal(err)
		}
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))

		// Both listings are sorted by key, so item i is keys[i].
		type storedObject struct {
			key string
			obj map[string]any
		}
		byKind := map[schema.GroupVersionKind][]storedObject{}
	items:
		for i, item := range stored.Items {
			for prefix, why := range unservedPrefixes {
				if strings.HasPrefix(keys[i], prefix) {
					t.Logf("%s: not served (%s)", keys[i], why)
					continue items
				}
			}
			item = asServed(t, item)
			u := unstructured.Unstructured{Object: item}
			byKind[u.GroupVersionKind()] = append(byKind[u.GroupVersionKind()], storedObject{keys[i], item})
		}
		// The served state at the same revision: one exact-revision list
		// per kind found in etcd, so objects the apiserver keeps changing
		// (its own lease) compare at one point in time.
		compared := 0
		for gvk, objects := range byKind {
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Errorf("%s is stored (%s...) but not served: %v", gvk, objects[0].key, err)
				continue
			}
			list, err := dyn.Resource(m.Resource).List(ctx, metav1.ListOptions{
				ResourceVersion:      strconv.FormatInt(rev, 10),
				ResourceVersionMatch: metav1.ResourceVersionMatchExact,
			})
			if err != nil {
				t.Errorf("listing %s at revision %d: %v", m.Resource, rev, err)
				continue
			}
			served := map[string]map[string]any{}
			for _, u := range list.Items {
				served[u.GetNamespace()+"/"+u.GetName()] = u.Object
			}
			for _, o := range objects {
				u := unstructured.Unstructured{Object: o.obj}
				id := u.GetNamespace() + "/" + u.GetName()
				s, ok := served[id]
				if !ok {
					t.Errorf("%s (%s %s) is in etcd but kube-apiserver does not list it", o.key, gvk.Kind, id)
					continue
				}
				delete(served, id)
				if d := objectDiff(o.obj, s); d != "" {
					t.Errorf("%s differs from what kube-apiserver serves:\n%s", o.key, d)
				}
				compared++
			}
			for id := range served {
				t.Errorf("kube-apiserver lists %s %s, kubectl etcd did not find it", gvk.Kind, id)
			}
		}
		t.Logf("%d objects of %d kinds equal what kube-apiserver serves at revision %d", compared, len(byKind), rev)
		if compared < 50 {
			t.Errorf("only %d objects compared: the listing is incomplete", compared)
		}

		t.Log("a snapshot file gives the same listing at its revision")
		snap := filepath.Join(t.TempDir(), "snap.db")
		if r := plugin(t, nil, append(etcd.ConnectArgs(), "snapshot", "save", snap)...); r.code != 0 {
			t.Fatalf("snapshot save: %s", r.stderr)
		}
		fromSnap := plugin(t, nil, "get", "/registry/", "--prefix", "-o", "json", "--rev", strconv.FormatInt(rev, 10), "--snapshot", snap, "--encryption-provider-config", encConfig)
		if fromSnap.code != 0 || fromSnap.stdout != r.stdout {
			t.Errorf("get --snapshot at revision %d differs from the live cluster (exit %d): %s", rev, fromSnap.code, fromSnap.stderr)
		}
	})

	t.Run("watch shows kubectl's create, patch and delete, decoded as served", func(t *testing.T) {
		resp, err := etcd.Client().Get(ctx, "/registry/")
		if err != nil {
			t.Fatal(err)
		}
		from := resp.Header.Revision + 1
		out, err := s.Kubectl(ctx, "create", "configmap", "watched", "-n", "shop", "--from-literal=step=one", "-o", "json", "--show-managed-fields")
		if err != nil {
			t.Fatal(err)
		}
		created := decodeDoc(t, "kubectl create", out)
		out, err = s.Kubectl(ctx, "patch", "configmap", "watched", "-n", "shop", "-p", `{"data":{"step":"two"}}`, "-o", "json", "--show-managed-fields")
		if err != nil {
			t.Fatal(err)
		}
		patched := decodeDoc(t, "kubectl patch", out)
		if _, err := s.Kubectl(ctx, "delete", "configmap", "watched", "-n", "shop"); err != nil {
			t.Fatal(err)
		}
		// From the revision before the create, so the watch sees all three
		// however late it starts.
		r := plugin(t, nil, append(conn, "watch", "configmaps", "-n", "shop", "-o", "json", "--rev", strconv.FormatInt(from, 10), "--max-events", "3")...)
		if r.code != 0 {
			t.Fatalf("watch: exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("watch printed %d events, want 3:\n%s", len(lines), r.stdout)
		}
		for i, want := range []struct {
			typ    string
			served map[string]any
		}{{"ADDED", created}, {"MODIFIED", patched}, {"DELETED", nil}} {
			var ev struct {
				Type     string         `json:"type"`
				Key      string         `json:"key"`
				Revision int64          `json:"revision"`
				Object   map[string]any `json:"object"`
			}
			if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil {
				t.Fatalf("event %d: %v\n%s", i+1, err, lines[i])
			}
			if ev.Type != want.typ || ev.Key != "/registry/configmaps/shop/watched" {
				t.Errorf("event %d: %s %s, want %s /registry/configmaps/shop/watched", i+1, ev.Type, ev.Key, want.typ)
			}
			if want.served == nil {
				continue
			}
			if rv := want.served["metadata"].(map[string]any)["resourceVersion"]; rv != strconv.FormatInt(ev.Revision, 10) {
				t.Errorf("%s at revision %d, kubectl saw resourceVersion %v", ev.Type, ev.Revision, rv)
			}
			if d := objectDiff(ev.Object, want.served); d != "" {
				t.Errorf("%s event differs from what kubectl got back:\n%s", ev.Type, d)
			}
		}
	})

	t.Run("after a key rotation both generations of secrets decrypt", func(t *testing.T) {
		k4 := encryptionKey(t)
		rotated := writeIn(t, dir, "encryption-rotated.yaml", encryptionConfigYAML(
			"  - secretbox: {keys: [{name: k4, secret: "+k4+"}]}\n"+
				"  - aescbc: {keys: [{name: k1, secret: "+k1+"}]}\n", k2, k3))
		s.Stop()
		s2 := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State), kubetest.EncryptionProviderConfig(rotated))
		if _, err := s2.Kubectl(ctx, "create", "secret", "generic", "api-token", "-n", "shop", "--from-literal=token=s3cr3t"); err != nil {
			t.Fatal(err)
		}
		resp, err := etcd.Client().Get(ctx, "/registry/secrets/shop/api-token")
		if err != nil || len(resp.Kvs) != 1 || !strings.HasPrefix(string(resp.Kvs[0].Value), "k8s:enc:secretbox:v1:k4:") {
			t.Fatalf("the new secret is not stored with secretbox key k4: %v", err)
		}
		rconn := append(etcd.ConnectArgs(), "--encryption-provider-config", rotated)
		for _, name := range []string{"db", "api-token"} {
			out, err := s2.Kubectl(ctx, "get", "secret", name, "-n", "shop", "-o", "json", "--show-managed-fields")
			if err != nil {
				t.Fatal(err)
			}
			r := plugin(t, nil, append(rconn, "get", "secrets", name, "-n", "shop", "-o", "json")...)
			if r.code != 0 {
				t.Fatalf("get secret %s with the rotated config: %s", name, r.stderr)
			}
			if d := objectDiff(decodeDoc(t, "kubectl etcd get", r.stdout), decodeDoc(t, "kubectl get", out)); d != "" {
				t.Errorf("secret %s differs after rotation:\n%s", name, d)
			}
		}
		t.Log("the old config lacks k4: the error names the key")
		r := plugin(t, nil, append(conn, "get", "secrets", "api-token", "-n", "shop", "-o", "json")...)
		if r.code == 0 || !strings.Contains(r.stderr, "k4") {
			t.Errorf("reading a k4 secret with a config without k4: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestStoredObjectsUnderAnotherEtcdPrefix runs kube-apiserver with
// --etcd-prefix and reads its objects with --storage-prefix.
func TestStoredObjectsUnderAnotherEtcdPrefix(t *testing.T) {
	etcd := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithClusterSize(1))
	s := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State), kubetest.EtcdPrefix("/cluster-a"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := s.Kubectl(ctx, "create", "configmap", "app", "-n", "default", "--from-literal=color=green"); err != nil {
		t.Fatal(err)
	}
	out, err := s.Kubectl(ctx, "get", "configmap", "app", "-n", "default", "-o", "json", "--show-managed-fields")
	if err != nil {
		t.Fatal(err)
	}
	conn := etcd.ConnectArgs()
	r := plugin(t, nil, append(conn, "get", "configmaps", "app", "-n", "default", "-o", "json", "--storage-prefix", "/cluster-a")...)
	if r.code != 0 {
		t.Fatalf("get --storage-prefix /cluster-a: exit %d: %s", r.code, r.stderr)
	}
	if d := objectDiff(decodeDoc(t, "kubectl etcd get", r.stdout), decodeDoc(t, "kubectl get", out)); d != "" {
		t.Errorf("differs from what kube-apiserver serves:\n%s", d)
	}
	t.Log("under the default prefix there is nothing: the error says where it looked")
	r = plugin(t, nil, append(conn, "get", "configmaps", "app", "-n", "default")...)
	if r.code == 0 || !strings.Contains(r.stderr, "/registry/") {
		t.Errorf("get without --storage-prefix: exit %d, stderr %q", r.code, r.stderr)
	}
}
