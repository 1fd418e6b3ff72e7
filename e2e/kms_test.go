package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest/kmsplugin"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
)

// The KMS plugin of these tests is kms-test-plugin, a test plugin speaking
// the real KMS v2 and v1beta1 gRPC APIs, because no production KMS can run
// on the test machines. Everything else is real: etcd, kube-apiserver 1.37
// with an EncryptionConfiguration naming the plugin, kubectl.

// kmsCluster is a real kube-apiserver that encrypts secrets with a KMS
// provider named test-kms, on a one-member etcd.
type kmsCluster struct {
	t         *testing.T
	ctx       context.Context
	etcd      *etcdtest.Process
	conn      []string
	dir       string
	kms       *kmstest.Plugin
	encConfig string
	api       *kubetest.APIServer
}

// startKMSCluster starts etcd, the test KMS plugin with keys (the first
// current) and kube-apiserver with a KMS provider of apiVersion ("v1" or
// "v2") for secrets. KMS v1 is deprecated: kube-apiserver 1.37 refuses a
// v1 provider unless the KMSv1 feature gate is on.
func startKMSCluster(t *testing.T, apiVersion string, keys ...kmsplugin.Key) *kmsCluster {
	t.Helper()
	etcd := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithClusterSize(1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c := &kmsCluster{t: t, ctx: ctx, etcd: etcd, conn: etcd.ConnectArgs(), dir: t.TempDir()}

	t.Logf("the test KMS plugin on a unix socket, and an EncryptionConfiguration naming it as a KMS %s provider", apiVersion)
	c.kms = kmstest.Start(t, filepath.Join(c.dir, "kms.sock"), keys...)
	c.encConfig = filepath.Join(c.dir, "encryption.yaml")
	if err := os.WriteFile(c.encConfig, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms:
      apiVersion: `+apiVersion+`
      name: test-kms
      endpoint: `+c.kms.Endpoint+`
      timeout: 5s
  - identity: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("kube-apiserver with --encryption-provider-config")
	opts := []kubetest.Option{kubetest.EtcdTLSOf(etcd.State), kubetest.EncryptionProviderConfig(c.encConfig)}
	if apiVersion == "v1" {
		opts = append(opts, kubetest.Flags("--feature-gates=KMSv1=true"))
	}
	c.api = kubetest.StartAPIServer(t, etcd.State.Endpoints(), opts...)
	return c
}

// kubectl runs the real kubectl as the admin.
func (c *kmsCluster) kubectl(args ...string) string {
	c.t.Helper()
	out, err := c.api.Kubectl(c.ctx, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// stored reads the value at key straight from etcd.
func (c *kmsCluster) stored(key string) []byte {
	c.t.Helper()
	resp, err := c.etcd.Client().Get(c.ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		c.t.Fatalf("reading %s from etcd: %v (%d keys)", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

// storedKeyID checks that the value at key is a KMS v2 value of test-kms
// and returns the key id it was encrypted with.
func (c *kmsCluster) storedKeyID(key string) string {
	c.t.Helper()
	v := c.stored(key)
	prefix := "k8s:enc:kms:v2:test-kms:"
	if !strings.HasPrefix(string(v), prefix) {
		c.t.Fatalf("%s: stored %q..., want a KMS v2 value of test-kms", key, v[:min(len(v), 40)])
	}
	var o kmstypes.EncryptedObject
	if err := proto.Unmarshal(v[len(prefix):], &o); err != nil {
		c.t.Fatalf("%s: not a KMS v2 EncryptedObject: %v", key, err)
	}
	return o.KeyID
}

// sameSecret checks that kubectl etcd get shows the secret as kubectl get
// serves it.
func (c *kmsCluster) sameSecret(ns, name string) {
	c.t.Helper()
	served := c.kubectl("get", "secret", name, "-n", ns, "-o", "yaml", "--show-managed-fields")
	r := plugin(c.t, nil, append(c.conn, "get", "secrets", name, "-n", ns, "-o", "yaml", "--encryption-provider-config", c.encConfig)...)
	if r.code != 0 {
		c.t.Fatalf("kubectl etcd get secrets %s -n %s: exit %d\n%s", name, ns, r.code, r.stderr)
	}
	sameObject(c.t, r.stdout, served)
}

// A real kube-apiserver encrypts secrets with a KMS v2 provider. kubectl
// etcd reads the secret from etcd through the same plugin and must show
// what kubectl gets from the apiserver; what it puts the apiserver reads.
func TestKMSv2SecretOfARealAPIServer(t *testing.T) {
	kmsSecretRoundTrip(t, "v2")
}

// The same with the deprecated KMS v1 API, which kube-apiserver 1.37 still
// serves behind --feature-gates=KMSv1=true; clusters that encrypted with it
// before 1.29 still hold such values.
func TestKMSv1SecretOfARealAPIServer(t *testing.T) {
	kmsSecretRoundTrip(t, "v1")
}

func kmsSecretRoundTrip(t *testing.T, apiVersion string) {
	c := startKMSCluster(t, apiVersion, kmstest.NewKey(t, "key-1"))
	t.Log("kubectl creates a secret; etcd holds a KMS " + apiVersion + " value of test-kms")
	c.kubectl("create", "namespace", "prod")
	c.kubectl("create", "secret", "generic", "db", "-n", "prod", "--from-literal=password=hunter2", "--from-literal=user=admin")
	key := "/registry/secrets/prod/db"
	prefix := "k8s:enc:kms:" + apiVersion + ":test-kms:"
	if v := c.stored(key); !strings.HasPrefix(string(v), prefix) || strings.Contains(string(v), "hunter2") {
		t.Fatalf("the apiserver stored %q..., want a %s value", v[:min(len(v), 40)], prefix)
	}

	t.Log("kubectl etcd get decodes it to what kubectl get serves")
	c.sameSecret("prod", "db")

	t.Log("kubectl etcd put writes a KMS " + apiVersion + " value the apiserver reads")
	served := c.kubectl("get", "secret", "db", "-n", "prod", "-o", "yaml", "--show-managed-fields")
	changed := filepath.Join(c.dir, "changed.yaml")
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(served), &obj); err != nil {
		t.Fatal(err)
	}
	obj["data"].(map[string]any)["password"] = "czNjcjN0" // s3cr3t
	b, _ := yaml.Marshal(obj)
	if err := os.WriteFile(changed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := plugin(t, nil, append(c.conn, "put", key, "-f", changed, "--yes", "--encryption-provider-config", c.encConfig)...)
	if r.code != 0 {
		t.Fatalf("kubectl etcd put: exit %d\n%s", r.code, r.stderr)
	}
	if v := c.stored(key); !strings.HasPrefix(string(v), prefix) || strings.Contains(string(v), "s3cr3t") {
		t.Fatalf("put stored %q..., want a %s value", v[:min(len(v), 40)], prefix)
	}
	// The apiserver learns of the write through its etcd watch.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := c.kubectl("get", "secret", "db", "-n", "prod", "-o", "jsonpath={.data.password}")
		if got == "czNjcjN0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the apiserver serves password %q, want the value put wrote; its log:\n%s", got, c.api.LogTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Log("with the plugin gone, the error names the key, the provider and the socket")
	c.kms.Kill()
	r = plugin(t, nil, append(c.conn, "get", "secrets", "db", "-n", "prod", "-o", "yaml", "--encryption-provider-config", c.encConfig)...)
	oneErrorLine(t, r, key+`: KMS `+apiVersion+` provider "test-kms": no KMS plugin listens at `+c.kms.Endpoint)
	t.Logf("stderr: %s", r.stderr)
}

// A KMS key rotation as an operator does it with KMS v2: the KMS makes a
// new key current (key-b) and still decrypts with the old one (key-a);
// kube-apiserver notices the new key id through its plugin health probe
// and writes new values under it; old secrets are rewritten with kubectl
// replace (the documented way) or change; the rest stay under key-a. Then
// the old key is retired. kubectl etcd must read every secret as the
// apiserver serves it, and name provider and key id for the one it cannot.
func TestKMSv2KeyRotationOfARealAPIServer(t *testing.T) {
	keyA, keyB := kmstest.NewKey(t, "key-a"), kmstest.NewKey(t, "key-b")
	c := startKMSCluster(t, "v2", keyA)
	ns := "rotation"
	secretKey := func(name string) string { return "/registry/secrets/" + ns + "/" + name }

	t.Log("secrets written under key-a")
	c.kubectl("create", "namespace", ns)
	old := []string{"old-kept", "old-replaced", "old-annotated"}
	for _, name := range old {
		c.kubectl("create", "secret", "generic", name, "-n", ns, "--from-literal=password=old-"+name)
		if id := c.storedKeyID(secretKey(name)); id != "key-a" {
			t.Fatalf("%s written under key id %q, want key-a", name, id)
		}
	}

	t.Log("the KMS rotates: key-b is current, key-a still decrypts")
	c.kms.Restart(keyB, keyA)

	t.Log("kube-apiserver's KMS health probe sees key id key-b and writes new values under it")
	// The probe asks the plugin's Status when /readyz/kms-providers is read
	// and its last answer is over 20 seconds old (the first was at start),
	// and every minute on its own: reading /readyz shortens the wait to
	// what is left of the 20 seconds, no restart needed.
	c.kubectl("create", "secret", "generic", "new-probe", "-n", ns, "--from-literal=password=probe")
	start := time.Now()
	for i := 0; c.storedKeyID(secretKey("new-probe")) != "key-b"; i++ {
		if time.Since(start) > 90*time.Second {
			t.Fatalf("after %s the apiserver still writes under key id %q, want key-b; its log:\n%s", time.Since(start).Round(time.Second), c.storedKeyID(secretKey("new-probe")), c.api.LogTail(20))
		}
		time.Sleep(time.Second)
		if _, err := c.api.Kubectl(c.ctx, "get", "--raw", "/readyz/kms-providers"); err != nil {
			t.Logf("/readyz/kms-providers: %v", err)
		}
		c.kubectl("annotate", "secret", "new-probe", "-n", ns, "--overwrite", fmt.Sprintf("probe=%d", i))
	}
	t.Logf("the apiserver writes under key-b %s after the rotation", time.Since(start).Round(100*time.Millisecond))
	c.kubectl("create", "secret", "generic", "new-created", "-n", ns, "--from-literal=password=new")

	t.Log("old secrets rewritten: kubectl replace of the unchanged object, and kubectl annotate")
	unchanged := filepath.Join(c.dir, "old-replaced.yaml")
	if err := os.WriteFile(unchanged, []byte(c.kubectl("get", "secret", "old-replaced", "-n", ns, "-o", "yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	c.kubectl("replace", "-f", unchanged)
	c.kubectl("annotate", "secret", "old-annotated", "-n", ns, "rotated=yes")

	wantKeyID := map[string]string{"old-kept": "key-a", "old-replaced": "key-b", "old-annotated": "key-b", "new-probe": "key-b", "new-created": "key-b"}
	for name, want := range wantKeyID {
		if got := c.storedKeyID(secretKey(name)); got != want {
			t.Errorf("%s is stored under key id %q, want %q", name, got, want)
		}
	}

	t.Log("kubectl etcd get reads every secret, under key-a and key-b, as kubectl get serves it")
	for name := range wantKeyID {
		c.sameSecret(ns, name)
	}

	t.Log("key-a retired: its secret's error names the key, provider and key id; key-b secrets still read")
	c.kms.Restart(keyB)
	r := plugin(t, nil, append(c.conn, "get", "secrets", "old-kept", "-n", ns, "-o", "yaml", "--encryption-provider-config", c.encConfig)...)
	oneErrorLine(t, r, "decrypting "+secretKey("old-kept")+`: KMS v2 provider "test-kms": the KMS plugin at `+c.kms.Endpoint+
		` could not decrypt the data key of key id "key-a": unknown key id "key-a" (its current key id is "key-b")`)
	t.Logf("stderr: %s", r.stderr)
	c.sameSecret(ns, "old-replaced")

	t.Log("a listing shows the key-b secrets, warns of the key-a one and fails: what is left to rewrite")
	r = plugin(t, nil, append(c.conn, "get", "secrets", "-n", ns, "-o", "yaml", "--encryption-provider-config", c.encConfig)...)
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
		}
	}
	if err := yaml.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("listing: %v\n%s", err, r.stdout)
	}
	var listed []string
	for _, item := range list.Items {
		listed = append(listed, item.Metadata.Name)
	}
	if want := []string{"new-created", "new-probe", "old-annotated", "old-replaced"}; !reflect.DeepEqual(listed, want) {
		t.Errorf("listing shows %q, want %q", listed, want)
	}
	warning := "warning: decrypting " + secretKey("old-kept") + `: KMS v2 provider "test-kms": the KMS plugin at ` + c.kms.Endpoint +
		` could not decrypt the data key of key id "key-a"`
	if r.code != 1 || !strings.Contains(r.stderr, warning) ||
		!strings.Contains(r.stderr, "error: 1 of 5 values could not be decoded (first: "+secretKey("old-kept")+")") {
		t.Errorf("listing: exit %d, stderr:\n%s\nwant exit 1, the warning %q and the count", r.code, r.stderr, warning)
	}
}

// sameObject compares two YAML documents of one object.
func sameObject(t *testing.T, got, want string) {
	t.Helper()
	var g, w map[string]any
	if err := yaml.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if err := yaml.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%v\n%s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("kubectl etcd get:\n%s\nkubectl get:\n%s", got, want)
	}
}
