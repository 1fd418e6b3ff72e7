package cmd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kmstest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/cas"
)

// The KMS plugin here is kms-test-plugin, a test plugin speaking the real
// KMS v2 gRPC API: no production KMS can run on the test machines.
func TestKMSv2SecretsThroughThePlugin(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	dir := t.TempDir()
	plugin := kmstest.Start(t, filepath.Join(dir, "kms.sock"), kmstest.NewKey(t, "key-1"))
	encConfig := writeEncryptionConfig(t, dir, `  - kms: {apiVersion: v2, name: vault, endpoint: `+plugin.Endpoint+`, timeout: 2s}`)
	secretFile := filepath.Join(dir, "secret.yaml")
	if err := os.WriteFile(secretFile, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ndata: {password: aHVudGVyMg==}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "/registry/secrets/prod/db"

	t.Log("encode asks the plugin and writes a KMS v2 value")
	enc, _ := cmdtest.MustRun(t, "encode", "-f", secretFile, "--encryption-provider-config", encConfig)
	if !strings.HasPrefix(enc, "k8s:enc:kms:v2:vault:") || strings.Contains(enc, "aHVudGVyMg") {
		t.Fatalf("encode: %q", enc[:min(len(enc), 40)])
	}
	put(t, cli, key, []byte(enc))

	t.Log("get and decode read it back through the plugin")
	out, _ := cmdtest.MustRun(t, append(conn, "get", "secrets", "db", "-n", "prod", "-o", "json", "--encryption-provider-config", encConfig)...)
	if !strings.Contains(out, `"password": "aHVudGVyMg=="`) {
		t.Errorf("get:\n%s", out)
	}
	out, _, _, err := cmdtest.RunIn(t, []byte(enc), "decode", "--encryption-provider-config", encConfig, "--storage-key", key)
	if err != nil || !strings.Contains(out, "password: aHVudGVyMg==") {
		t.Errorf("decode: %v\n%s", err, out)
	}

	t.Log("put writes a KMS value too")
	changed := filepath.Join(dir, "changed.yaml")
	if err := os.WriteFile(changed, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ndata: {password: czNjcjN0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmdtest.MustRun(t, append(conn, "put", key, "-f", changed, "--yes", "--encryption-provider-config", encConfig)...)
	kv, err := cas.ReadKey(context.Background(), cli, key)
	if err != nil || !strings.HasPrefix(string(kv.Value), "k8s:enc:kms:v2:vault:") {
		t.Fatalf("stored after put: %v %q", err, kv.Value[:min(len(kv.Value), 40)])
	}

	t.Log("without its plugin the error names the key, the provider and the socket")
	plugin.Kill()
	_, errOut, code, err := cmdtest.RunIn(t, nil, append(conn, "get", "secrets", "-A", "-o", "yaml", "--encryption-provider-config", encConfig)...)
	if code != 1 || !strings.Contains(errOut, key+`: KMS v2 provider "vault": no KMS plugin listens at `+plugin.Endpoint) {
		t.Errorf("without the plugin: exit %d, %v, stderr %q", code, err, errOut)
	}
}
