package e2e

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
)

// A real kube-apiserver encrypts secrets with a KMS v2 provider; its plugin
// is kms-test-plugin, a test plugin speaking the real KMS v2 gRPC API,
// because no production KMS can run on the test machines. kubectl etcd
// reads the secret from etcd through the same plugin and must show what
// kubectl gets from the apiserver.
func TestKMSv2SecretOfARealAPIServer(t *testing.T) {
	versions := etcdtest.Versions(t)
	etcd := etcdtest.StartProcesses(t, versions[len(versions)-1], etcdtest.WithClusterSize(1))
	conn := etcd.ConnectArgs()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Log("the test KMS plugin on a unix socket, and an EncryptionConfiguration naming it")
	kms := kmstest.Start(t, filepath.Join(dir, "kms.sock"), kmstest.NewKey(t, "key-1"))
	encConfig := filepath.Join(dir, "encryption.yaml")
	if err := os.WriteFile(encConfig, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms:
      apiVersion: v2
      name: test-kms
      endpoint: `+kms.Endpoint+`
      timeout: 5s
  - identity: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("kube-apiserver with --encryption-provider-config; kubectl creates a secret")
	api := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State), kubetest.EncryptionProviderConfig(encConfig))
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := api.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kubectl("create", "namespace", "prod")
	kubectl("create", "secret", "generic", "db", "-n", "prod", "--from-literal=password=hunter2", "--from-literal=user=admin")
	key := "/registry/secrets/prod/db"
	resp, err := etcd.Client().Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading %s from etcd: %v", key, err)
	}
	if v := resp.Kvs[0].Value; !strings.HasPrefix(string(v), "k8s:enc:kms:v2:test-kms:") || strings.Contains(string(v), "hunter2") {
		t.Fatalf("the apiserver stored %q..., want a KMS v2 value", v[:min(len(v), 40)])
	}

	t.Log("kubectl etcd get decodes it to what kubectl get serves")
	served := kubectl("get", "secret", "db", "-n", "prod", "-o", "yaml", "--show-managed-fields")
	r := plugin(t, nil, append(conn, "get", "secrets", "db", "-n", "prod", "-o", "yaml", "--encryption-provider-config", encConfig)...)
	if r.code != 0 {
		t.Fatalf("kubectl etcd get: exit %d\n%s", r.code, r.stderr)
	}
	sameObject(t, r.stdout, served)

	t.Log("kubectl etcd put writes a KMS v2 value the apiserver reads")
	changed := filepath.Join(dir, "changed.yaml")
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(served), &obj); err != nil {
		t.Fatal(err)
	}
	obj["data"].(map[string]any)["password"] = "czNjcjN0" // s3cr3t
	b, _ := yaml.Marshal(obj)
	if err := os.WriteFile(changed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = plugin(t, nil, append(conn, "put", key, "-f", changed, "--yes", "--encryption-provider-config", encConfig)...)
	if r.code != 0 {
		t.Fatalf("kubectl etcd put: exit %d\n%s", r.code, r.stderr)
	}
	if resp, err := etcd.Client().Get(ctx, key); err != nil || !strings.HasPrefix(string(resp.Kvs[0].Value), "k8s:enc:kms:v2:test-kms:") {
		t.Fatalf("put stored a value that is not KMS v2: %v", err)
	}
	// The apiserver learns of the write through its etcd watch.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := kubectl("get", "secret", "db", "-n", "prod", "-o", "jsonpath={.data.password}")
		if got == "czNjcjN0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the apiserver serves password %q, want the value put wrote; its log:\n%s", got, api.LogTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Log("with the plugin gone, the error names the key, the provider and the socket")
	kms.Kill()
	r = plugin(t, nil, append(conn, "get", "secrets", "db", "-n", "prod", "-o", "yaml", "--encryption-provider-config", encConfig)...)
	oneErrorLine(t, r, key+`: KMS v2 provider "test-kms": no KMS plugin listens at `+kms.Endpoint)
	t.Logf("stderr: %s", r.stderr)
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
