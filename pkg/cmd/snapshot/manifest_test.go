package snapshot_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRestoreManifestCommand runs `snapshot restore --manifest` on a test
// node whose static pod the kubelet stand-in runs with the real etcd.
func TestRestoreManifestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real etcd binary")
	}
	versions := etcdtest.Versions(t)
	root := t.TempDir()
	n := bootstrap.NewNode()
	n.Name, n.AdvertiseAddress = "cp-1", "127.0.0.22"
	n.PKIDir, n.ManifestsDir, n.DataDir = filepath.Join(root, "pki"), filepath.Join(root, "manifests"), filepath.Join(root, "data")
	n.ClientPort, n.PeerPort, n.MetricsPort = freePort(t), freePort(t), freePort(t)
	n.KeyAlgorithm = pki.ECDSAP256
	if err := n.Init(time.Now()); err != nil {
		t.Fatal(err)
	}
	etcdtest.StartKubelet(t, versions[len(versions)-1], n.ManifestPath())
	node := []string{"--etcd-manifest", n.ManifestPath(), "--pki-dir", n.PKIDir}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code, _ := run(t, append(node, "health")...); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("etcd of the test node did not become healthy")
		}
		time.Sleep(300 * time.Millisecond)
	}
	if _, _, code, err := run(t, append(node, "put", "/k", "in-snapshot")...); code != 0 {
		t.Fatalf("put: %v", err)
	}
	file := filepath.Join(root, "etcd.db")
	if _, _, code, err := run(t, append(node, "snapshot", "save", file)...); code != 0 {
		t.Fatalf("save: %v", err)
	}
	if _, _, code, err := run(t, append(node, "put", "/k", "after-snapshot")...); code != 0 {
		t.Fatalf("put: %v", err)
	}

	t.Log("without --yes and without a terminal it refuses, changing nothing")
	before, _ := os.ReadFile(n.ManifestPath())
	if _, _, code, err := run(t, append(node, "snapshot", "restore", file, "--manifest")...); code != 1 || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("restore without --yes: exit %d, %v", code, err)
	}
	t.Log("--name comes from the manifest")
	if _, _, code, err := run(t, append(node, "snapshot", "restore", file, "--manifest", "--name", "x")...); code != 1 || !strings.Contains(err.Error(), "comes from the manifest") {
		t.Errorf("restore --manifest --name: exit %d, %v", code, err)
	}
	t.Log("--dry-run prints the new manifest")
	out, _, code, err := run(t, append(node, "snapshot", "restore", file, "--manifest", "--dry-run")...)
	if code != 0 || !strings.Contains(out, "--data-dir="+n.DataDir+"-restore-") {
		t.Errorf("dry run: exit %d, %v\n%s", code, err, out)
	}
	if after, _ := os.ReadFile(n.ManifestPath()); string(after) != string(before) {
		t.Fatal("a refused or dry run changed the manifest")
	}

	t.Log("--yes restores and prints each step")
	out, errOut, code, err := run(t, append(node, "snapshot", "restore", file, "--manifest="+n.ManifestPath(), "--yes", "--timeout", "2m")...)
	if code != 0 {
		t.Fatalf("restore: exit %d, %v\n%s", code, err, errOut)
	}
	for _, w := range []string{"[stop] Moved", "[stop] etcd stopped", "[restore] Restored revision", "[start] Wrote", "[done]"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("progress lacks %q:\n%s", w, errOut)
		}
	}
	if !strings.Contains(out, "Restored member cp-1") {
		t.Errorf("output:\n%s", out)
	}
	got, _, code, err := run(t, append(node, "get", "/k", "-o", "text")...)
	if code != 0 || !strings.Contains(got, "in-snapshot") {
		t.Errorf("get /k after restore: exit %d, %v: %q", code, err, got)
	}

	t.Log("the doctor finds the restored node healthy, its manifest in line with the member list, and reads its PKI")
	out, _, code, err = run(t, append(node, "doctor", "-o", "json")...)
	var report doctor.Report
	if code != 0 || json.Unmarshal([]byte(out), &report) != nil || report.Errors != 0 {
		t.Fatalf("doctor after restore: exit %d, %v\n%s", code, err, out)
	}
	seen := map[string]bool{}
	for _, f := range report.Findings {
		seen[string(f.Severity)+" "+f.Check] = true
		if f.Check == "certificates" && f.Severity == doctor.OK && !strings.Contains(f.Message, "5 certificates") {
			t.Errorf("certificates: %s; want the 5 PKI certificates, each once (the server and client certificates in use are two of them)", f.Message)
		}
	}
	for _, w := range []string{"ok manifest", "ok certificates", "ok leader"} {
		if !seen[w] {
			t.Errorf("doctor lacks %q: %s", w, out)
		}
	}
}
