package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

// etcdctl runs the release's etcdctl with stdin.
func etcdctl(t *testing.T, bin string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "etcdctl"), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func TestStoredObjectsWithRealEtcdctl(t *testing.T) {
	for _, version := range etcdtest.Versions(t) {
		t.Run("etcd-"+version, func(t *testing.T) {
			c := etcdtest.StartProcesses(t, version, etcdtest.WithClusterSize(1))
			bin := etcdtest.EtcdBinaries(t, version)
			conn := c.ConnectArgs()
			dir := t.TempDir()
			obj := filepath.Join(dir, "cm.yaml")
			if err := os.WriteFile(obj, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: prod}\ndata: {color: blue}\n"), 0o600); err != nil {
				t.Fatal(err)
			}

			t.Log("encode's bytes, written by etcdctl, read back by get")
			r := plugin(t, nil, "encode", "-f", obj)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "k8s\x00") {
				t.Fatalf("encode: exit %d %s", r.code, r.stderr)
			}
			etcdctl(t, bin, []byte(r.stdout), append(conn, "put", "/registry/configmaps/prod/app")...)
			r = plugin(t, nil, append(conn, "get", "configmaps", "app", "-n", "prod", "-o", "yaml")...)
			if r.code != 0 || !strings.Contains(r.stdout, "color: blue") || !strings.Contains(r.stdout, "resourceVersion: \"2\"") {
				t.Errorf("get: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}

			t.Log("etcdctl get --print-value-only piped into decode")
			value := etcdctl(t, bin, nil, append(conn, "get", "/registry/configmaps/prod/app", "--print-value-only")...)
			cmd := exec.Command(pluginBin, "decode")
			cmd.Stdin = strings.NewReader(value)
			out, err := cmd.Output()
			if err != nil || !strings.Contains(string(out), "color: blue") {
				t.Errorf("decode: %v\n%s", err, out)
			}

			t.Log("a snapshot saved by etcdctl reads like the cluster")
			snap := filepath.Join(dir, "snap.db")
			etcdctl(t, bin, nil, append(conn, "snapshot", "save", snap)...)
			r = plugin(t, nil, "get", "configmaps", "-A", "--snapshot", snap, "--no-headers")
			if f := strings.Fields(r.stdout); r.code != 0 || len(f) < 3 || strings.Join(f[:3], " ") != "configmaps prod app" {
				t.Errorf("get --snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}

			t.Log("a file that is not a database gives one clear line")
			oneErrorLine(t, plugin(t, nil, "get", "pods", "-A", "--snapshot", obj), "not an etcd database file")
		})
	}
}
