package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/encryption"
)

// storedValue reads a captured .bin value without its trailing newline,
// which the capture added.
func storedValue(t *testing.T, name string) []byte {
	b := etcdtest.ReadFile(t, testdataPath("stored-values", name))
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("%s does not end with the newline the README describes", name)
	}
	return b[:len(b)-1]
}

func yamlMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func objectMap(t *testing.T, obj runtime.Object) map[string]any {
	t.Helper()
	m, err := ToMap(obj)
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through YAML so numbers compare as the expected file's.
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return yamlMap(t, b)
}

func TestDecodeCapturedValues(t *testing.T) {
	for _, tt := range []struct{ bin, yaml, json string }{
		{"pod.bin", "pod.yaml", "pod.json"},
		{"job.bin", "job.yaml", "job.json"},
	} {
		t.Run(tt.bin, func(t *testing.T) {
			var d Decoder
			o, err := d.Decode("/registry/x", storedValue(t, tt.bin), 0)
			if err != nil {
				t.Fatal(err)
			}
			if o.Format != FormatProtobuf || o.Partial != nil {
				t.Fatalf("format %s, partial %v; want protobuf, whole", o.Format, o.Partial)
			}
			got := objectMap(t, o.Object)
			for _, want := range []string{tt.yaml, tt.json} {
				exp := yamlMap(t, etcdtest.ReadFile(t, testdataPath("stored-values", want)))
				if !reflect.DeepEqual(got, exp) {
					gb, _ := yaml.Marshal(got)
					t.Errorf("decoded %s differs from %s:\n%s", tt.bin, want, gb)
				}
			}
			o, err = d.Decode("/registry/x", storedValue(t, tt.bin), 4242)
			if err != nil {
				t.Fatal(err)
			}
			if rv := objectMap(t, o.Object)["metadata"].(map[string]any)["resourceVersion"]; rv != "4242" {
				t.Errorf("resourceVersion %v, want the mod revision 4242", rv)
			}
		})
	}
}

func TestDecodeAESCBCSecret(t *testing.T) {
	cfg, err := encryption.Load(testdataPath("encrypted", "encryption-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	value := etcdtest.ReadFile(t, testdataPath("encrypted", "aescbc-secret.bin"))
	key := "/kubernetes.io/secrets/simon-project/my-secret"

	_, err = (&Decoder{}).Decode(key, value, 7)
	if err == nil || !strings.Contains(err.Error(), `aescbc key "simon"`) || !strings.Contains(err.Error(), "--encryption-provider-config") {
		t.Errorf("without a config: %v; want an error naming the key and the flag", err)
	}

	d := Decoder{Encryption: cfg}
	o, err := d.Decode(key, value, 7)
	if err != nil {
		t.Fatal(err)
	}
	if o.Encryption != "aescbc:simon" {
		t.Errorf("encryption %q", o.Encryption)
	}
	m := objectMap(t, o.Object)
	if m["kind"] != "Secret" || m["data"].(map[string]any)["mykey"] != "bXlzdXBlcnNlY3JldA==" {
		t.Errorf("decrypted secret: %v", m)
	}
	if k, ok := ParseKey("/kubernetes.io", key); !ok || k.Resource() != "secrets" || k.Namespace != "simon-project" || k.Name != "my-secret" {
		t.Errorf("ParseKey: %+v %v", k, ok)
	}

	// A config without that key names the missing key.
	other := strings.Replace(string(etcdtest.ReadFile(t, testdataPath("encrypted", "encryption-config.yaml"))), "name: simon", "name: other", 1)
	cfg2, err := encryption.Parse([]byte(other))
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Decoder{Encryption: cfg2}).Decode(key, value, 7)
	if err == nil || !strings.Contains(err.Error(), `aescbc key "simon", which the encryption config does not have`) {
		t.Errorf("missing key: %v", err)
	}
}

func randomKey(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestEncryptionRoundTrips(t *testing.T) {
	secret := []byte(`apiVersion: v1
kind: Secret
metadata:
  name: s1
  namespace: ns1
data:
  password: aHVudGVyMg==
`)
	value, _, err := Encode(secret)
	if err != nil {
		t.Fatal(err)
	}
	key := "/registry/secrets/ns1/s1"
	for _, provider := range []string{"aescbc", "aesgcm", "secretbox"} {
		t.Run(provider, func(t *testing.T) {
			cfg, err := encryption.Parse([]byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets, configmaps]
  providers:
  - ` + provider + `:
      keys:
      - name: new
        secret: ` + randomKey(t, 32) + `
      - name: old
        secret: ` + randomKey(t, 32) + `
  - identity: {}
`))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := cfg.Encrypt("secrets", key, value)
			if err != nil {
				t.Fatal(err)
			}
			if want := "k8s:enc:" + provider + ":v1:new:"; !bytes.HasPrefix(enc, []byte(want)) || bytes.Contains(enc, []byte("aHVudGVyMg")) {
				t.Fatalf("encrypted value %q, want prefix %q and no plaintext", enc[:min(40, len(enc))], want)
			}
			o, err := (&Decoder{Encryption: cfg}).Decode(key, enc, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(o.Value, value) || o.Encryption != provider+":new" {
				t.Errorf("round trip lost the value (encryption %q)", o.Encryption)
			}
			if provider == "aesgcm" {
				// The key is the additional data: moving the value breaks it.
				if _, err := (&Decoder{Encryption: cfg}).Decode("/registry/secrets/ns1/other", enc, 3); err == nil {
					t.Error("aesgcm value decrypted under another key")
				}
			}
			// Tampering is detected (or, for aescbc, caught by the decoder).
			bad := append([]byte{}, enc...)
			bad[len(bad)-1] ^= 1
			if _, err := (&Decoder{Encryption: cfg}).Decode(key, bad, 3); err == nil {
				t.Error("tampered value decoded")
			}
			// Resources the config does not cover stay in the clear.
			if plain, _ := cfg.Encrypt("pods", "/registry/pods/a/b", value); !bytes.Equal(plain, value) {
				t.Error("pods were encrypted")
			}
		})
	}
}

func TestKMSValuesNameProviderAndKeyID(t *testing.T) {
	// EncryptedObject: encryptedData (1), keyID (2), encryptedDEKSource (3).
	body := []byte{0x0a, 3, 'a', 'b', 'c', 0x12, 6, 'k', 'e', 'y', '-', 'v', '7', 0x1a, 1, 'x'}
	_, err := (&Decoder{}).Decode("/registry/secrets/a/b", append([]byte("k8s:enc:kms:v2:vault:"), body...), 1)
	if err == nil || !strings.Contains(err.Error(), `KMS v2 provider "vault" with key id "key-v7"`) {
		t.Errorf("kms v2: %v", err)
	}
	_, err = (&Decoder{}).Decode("/registry/secrets/a/b", []byte("k8s:enc:kms:v1:legacy:\x00\x01x"), 1)
	if err == nil || !strings.Contains(err.Error(), `KMS v1 provider "legacy"`) {
		t.Errorf("kms v1: %v", err)
	}
}

func TestEncodeDecodeRoundTrips(t *testing.T) {
	docs := map[string]string{
		"core/v1 ConfigMap": `apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: default, resourceVersion: "99", labels: {a: b}}
data: {k: v}
`,
		"apps/v1 Deployment": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.27", resources: {limits: {cpu: 500m, memory: 1Gi}}}]
`,
		"batch/v1 CronJob": `apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
`,
		"rbac ClusterRole": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
`,
		"coordination Lease": `apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: l, namespace: kube-system}
spec: {holderIdentity: me, leaseDurationSeconds: 15}
`,
		"apiextensions CRD": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`,
		"apiregistration APIService": `apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec: {group: metrics.k8s.io, version: v1beta1, groupPriorityMinimum: 100, versionPriority: 100, service: {name: metrics-server, namespace: kube-system}}
`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			value, gvk, err := Encode([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(value, ProtobufPrefix) {
				t.Fatalf("%s encoded without the protobuf prefix: %q", gvk, value[:min(20, len(value))])
			}
			o, err := (&Decoder{}).Decode("/registry/x/y", value, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := yamlMap(t, []byte(doc))
			delete(want["metadata"].(map[string]any), "resourceVersion")
			got := objectMap(t, o.Object)
			// Typed objects add empty fields (creationTimestamp: null, status: {}).
			if !subset(want, got) {
				gb, _ := yaml.Marshal(got)
				t.Errorf("round trip of %s lost fields:\n%s", name, gb)
			}
		})
	}
}

// subset reports whether every field of want is in got with the same value.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

func TestCustomResourcesAreJSON(t *testing.T) {
	doc := []byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default, resourceVersion: \"5\"}\nspec: {size: 3}\n")
	value, gvk, err := Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if gvk != (schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}) || value[0] != '{' || !bytes.HasSuffix(value, []byte("}\n")) {
		t.Fatalf("custom resource encoded as %q (%s)", value, gvk)
	}
	if bytes.Contains(value, []byte("resourceVersion")) {
		t.Error("resourceVersion was stored")
	}
	o, err := (&Decoder{}).Decode("/registry/example.com/widgets/default/w1", value, 12)
	if err != nil {
		t.Fatal(err)
	}
	u := o.Object.(*unstructured.Unstructured)
	if o.Format != FormatJSON || u.GetName() != "w1" || u.GetResourceVersion() != "12" {
		t.Errorf("decoded %s %+v", o.Format, u.Object)
	}
}

func TestUnknownKindsKeepTypeAndMetadata(t *testing.T) {
	value, _, err := Encode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1, uid: u-1}\ndata: {a: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the envelope's kind to one no build knows.
	var unk runtime.Unknown
	if err := unk.Unmarshal(value[4:]); err != nil {
		t.Fatal(err)
	}
	unk.APIVersion, unk.Kind = "future.k8s.io/v9", "Gizmo"
	b, err := unk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	o, err := (&Decoder{}).Decode("/registry/gizmos/ns1/c", append(append([]byte{}, ProtobufPrefix...), b...), 8)
	if err != nil {
		t.Fatal(err)
	}
	u := o.Object.(*unstructured.Unstructured)
	if o.Partial == nil || !strings.Contains(o.Partial.Error(), "Gizmo.future.k8s.io/v9") {
		t.Errorf("partial %v", o.Partial)
	}
	if u.GetKind() != "Gizmo" || u.GetName() != "c" || u.GetNamespace() != "ns1" || string(u.GetUID()) != "u-1" || u.GetResourceVersion() != "8" {
		t.Errorf("unknown kind decoded as %v", u.Object)
	}
}

func TestCorruptValuesAreErrorsNamingTheKey(t *testing.T) {
	good, _, err := Encode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{
		"truncated":   good[:len(good)-5],
		"bad proto":   append(append([]byte{}, ProtobufPrefix...), 0xff, 0xff, 0xff),
		"bad enc":     []byte("k8s:enc:aescbc"),
		"no envelope": ProtobufPrefix,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&Decoder{}).Decode("/registry/configmaps/x/c", v, 1)
			if err == nil || !strings.Contains(err.Error(), "/registry/configmaps/x/c") {
				t.Errorf("error %v, want one naming the key", err)
			}
		})
	}
	o, err := (&Decoder{}).Decode("/config/db_url", []byte("postgres://db"), 1)
	if err != nil || o.Format != FormatPlain || o.Object != nil {
		t.Errorf("plain value: %v %+v", err, o)
	}
}

func FuzzDecode(f *testing.F) {
	good, _, _ := Encode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"))
	f.Add(good)
	f.Add([]byte(`{"apiVersion":"x/v1","kind":"Y","metadata":{"name":"n"}}`))
	f.Add([]byte("k8s:enc:aescbc:v1:k:0123456789abcdef0123456789abcdef"))
	f.Add([]byte("k8s:enc:kms:v2:p:\x12\x02id"))
	// The kms provider's socket does not exist: KMS values go as far as
	// parsing the EncryptedObject and dialling.
	cfg, _ := encryption.Parse([]byte("kind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc: {keys: [{name: k, secret: " + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "}]}\n  - kms: {apiVersion: v2, name: p, endpoint: unix:///nonexistent/kms.sock}\n"))
	f.Fuzz(func(t *testing.T, value []byte) {
		_, _ = (&Decoder{Encryption: cfg}).Decode("/registry/secrets/a/b", value, 1)
	})
}

// testdataPath names a file under the repository's testdata/, the values
// real clusters stored (testdata/README.md says where each came from).
func testdataPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata"}, parts...)...)
}
