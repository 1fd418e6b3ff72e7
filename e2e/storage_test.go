package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/stats"
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
	etcdtest.ForEachVersion(t, func(t *testing.T, version string) {
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

		t.Log("a listing longer than a page reads every key once, in order: one RangeStream from etcd 3.7, pages of Get before")
		cli := c.Client()
		const bulk = 1200
		for i := 0; i < bulk; i += 100 {
			var ops []clientv3.Op
			for j := i; j < i+100; j++ {
				v, _, err := storage.Encode([]byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%04d, namespace: stream}\ndata: {n: \"%d\"}\n", j, j)))
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("/registry/configmaps/stream/cm-%04d", j), string(v)))
			}
			if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
		}
		r = plugin(t, nil, append(conn, "get", "configmaps", "-n", "stream", "-o", "name", "--chunk-size", "100")...)
		names := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(names) != bulk || names[0] != "configmap/cm-0000" || names[bulk-1] != fmt.Sprintf("configmap/cm-%04d", bulk-1) {
			t.Fatalf("get -n stream -o name: exit %d, %d names\n%s", r.code, len(names), r.stderr)
		}
		for i, n := range names {
			if want := fmt.Sprintf("configmap/cm-%04d", i); n != want {
				t.Fatalf("name %d is %s, want %s", i, n, want)
			}
		}
		r = plugin(t, nil, append(conn, "stats", "/registry/configmaps/stream/", "-o", "json")...)
		var st stats.Stats
		if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil || st.Keys != bulk {
			t.Errorf("stats: exit %d, %v, %d keys\n%s%s", r.code, err, st.Keys, r.stdout, r.stderr)
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
