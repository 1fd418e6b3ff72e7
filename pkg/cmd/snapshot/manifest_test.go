package snapshot_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/bootstrap"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
)

// restoreNode is a test control-plane node: its etcd static pod runs under
// the kubelet stand-in with the real etcd, /k is "in-snapshot" in the
// snapshot file and "after-snapshot" in the running member.
type restoreNode struct {
	*bootstrap.Node
	kubelet *etcdtest.Kubelet
	// args reach the node's member through its manifest.
	args []string
	file string
}

func startRestoreNode(t *testing.T, ip string) *restoreNode {
	t.Helper()
	root := t.TempDir()
	n := bootstrap.NewNode()
	n.Name, n.AdvertiseAddress = "cp-1", ip
	n.PKIDir, n.ManifestsDir, n.DataDir = filepath.Join(root, "pki"), filepath.Join(root, "manifests"), filepath.Join(root, "data")
	p := etcdtest.FreePorts(t, 3)
	n.ClientPort, n.PeerPort, n.MetricsPort = p[0], p[1], p[2]
	n.KeyAlgorithm = pki.ECDSAP256
	if err := n.Init(time.Now()); err != nil {
		t.Fatal(err)
	}
	rn := &restoreNode{Node: n, kubelet: etcdtest.StartKubelet(t, etcdtest.NewestVersion(t), n.ManifestPath()),
		args: []string{"--etcd-manifest", n.ManifestPath(), "--pki-dir", n.PKIDir}, file: filepath.Join(root, "etcd.db")}
	rn.waitHealthy(t)
	if _, _, code, err := cmdtest.Run(t, append(rn.args, "put", "/k", "in-snapshot")...); code != 0 {
		t.Fatalf("put: %v", err)
	}
	if _, _, code, err := cmdtest.Run(t, append(rn.args, "snapshot", "save", rn.file)...); code != 0 {
		t.Fatalf("save: %v", err)
	}
	if _, _, code, err := cmdtest.Run(t, append(rn.args, "put", "/k", "after-snapshot")...); code != 0 {
		t.Fatalf("put: %v", err)
	}
	return rn
}

func (rn *restoreNode) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code, _ := cmdtest.Run(t, append(rn.args, "health")...); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("etcd of the test node did not become healthy")
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// value is what the node's member serves for /k.
func (rn *restoreNode) value(t *testing.T) string {
	t.Helper()
	got, _, code, err := cmdtest.Run(t, append(rn.args, "get", "/k", "-o", "text")...)
	if code != 0 {
		t.Fatalf("get /k: exit %d, %v", code, err)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	return lines[len(lines)-1]
}

// wantServing waits until the node's member serves again and checks that
// /k holds want (the snapshot's or the old data's value).
func (rn *restoreNode) wantServing(t *testing.T, want, when string) {
	t.Helper()
	rn.waitHealthy(t)
	if got := rn.value(t); got != want {
		t.Errorf("/k = %q %s, want %q", got, when, want)
	}
}

// TestRestoreManifestCommand runs `snapshot restore --manifest` on a test
// node whose static pod the kubelet stand-in runs with the real etcd.
func TestRestoreManifestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real etcd binary")
	}
	rn := startRestoreNode(t, "127.0.0.22")
	n, node, file := rn.Node, rn.args, rn.file

	t.Log("without --yes and without a terminal it refuses, changing nothing")
	before, _ := os.ReadFile(n.ManifestPath())
	if _, _, code, err := cmdtest.Run(t, append(node, "snapshot", "restore", file, "--manifest")...); code != 1 || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("restore without --yes: exit %d, %v", code, err)
	}
	t.Log("--name comes from the manifest")
	if _, _, code, err := cmdtest.Run(t, append(node, "snapshot", "restore", file, "--manifest", "--name", "x")...); code != 1 || !strings.Contains(err.Error(), "comes from the manifest") {
		t.Errorf("restore --manifest --name: exit %d, %v", code, err)
	}
	t.Log("--dry-run prints the new manifest")
	out, _, code, err := cmdtest.Run(t, append(node, "snapshot", "restore", file, "--manifest", "--dry-run")...)
	if code != 0 || !strings.Contains(out, "--data-dir="+n.DataDir+"-restore-") {
		t.Errorf("dry run: exit %d, %v\n%s", code, err, out)
	}
	if after, _ := os.ReadFile(n.ManifestPath()); string(after) != string(before) {
		t.Fatal("a refused or dry run changed the manifest")
	}

	t.Log("--yes restores and prints each step")
	out, errOut, code, err := cmdtest.Run(t, append(node, "snapshot", "restore", file, "--manifest="+n.ManifestPath(), "--yes", "--timeout", "2m")...)
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
	if got := rn.value(t); got != "in-snapshot" {
		t.Errorf("get /k after restore: %q", got)
	}

	t.Log("the doctor finds the restored node healthy, its manifest in line with the member list, and reads its PKI")
	out, _, code, err = cmdtest.Run(t, append(node, "doctor", "-o", "json")...)
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

// TestRestoreManifestFaults kills or pauses (SIGSTOP) the member around a
// restore through the manifest. Each time the node ends with a member that
// serves, either the snapshot's data or, when the restore rolled back, the
// old data, and the output says which.
//
// These cases keep the stand-in kubelet of internal/etcdtest, and say why:
// each injects its fault at the moment the kubelet starts etcd on the
// restored data, which the stand-in counts, and needs a killed member to
// stay down for the restore's timeout. A real kubelet restarts a killed
// etcd container on its own back-off, so the same test would measure that
// timing, not the restore. The restore on real kubelets (a corrupt
// snapshot, a dry run, the rollback of data the image cannot start) is
// e2e/restore_node_test.go.
func TestRestoreManifestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real etcd binary")
	}
	// restoreWhile runs the restore and calls fault once the kubelet has
	// started etcd on the restored data.
	restoreWhile := func(t *testing.T, rn *restoreNode, timeout string, fault func()) (string, string, int, error) {
		starts := rn.kubelet.Starts()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for deadline := time.Now().Add(time.Minute); rn.kubelet.Starts() == starts; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					return
				}
			}
			fault()
		}()
		out, errOut, code, err := cmdtest.Run(t, append(rn.args, "snapshot", "restore", rn.file, "--manifest", "--yes", "--timeout", timeout, "--dial-timeout", "2s")...)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the fault was not injected: etcd was never started on the restored data")
		}
		t.Logf("restore: exit %d, %v\n%s%s", code, err, out, errOut)
		return out, errOut, code, err
	}

	t.Run("old member hung when the restore starts", func(t *testing.T) {
		rn := startRestoreNode(t, "127.0.0.25")
		rn.kubelet.Pause()
		out, errOut, code, err := cmdtest.Run(t, append(rn.args, "snapshot", "restore", rn.file, "--manifest", "--yes", "--timeout", "1m", "--dial-timeout", "2s")...)
		if code != 0 {
			t.Fatalf("restore with the member hung: exit %d, %v\n%s", code, err, errOut)
		}
		if !strings.Contains(errOut, "did not answer") || !strings.Contains(errOut, "hung") {
			t.Errorf("the preflight does not say the member is hung:\n%s", errOut)
		}
		if !strings.Contains(out, "Restored member cp-1") || rn.value(t) != "in-snapshot" {
			t.Errorf("not restored:\n%s", out)
		}
	})

	t.Run("restored member killed as it starts", func(t *testing.T) {
		rn := startRestoreNode(t, "127.0.0.26")
		before := rn.kubelet.Starts()
		out, _, code, err := restoreWhile(t, rn, "1m", rn.kubelet.Kill)
		if code != 0 || !strings.Contains(out, "Restored member cp-1") {
			t.Fatalf("restore with etcd killed once on the new data: exit %d, %v", code, err)
		}
		if rn.kubelet.Starts() < before+2 {
			t.Errorf("etcd started %d times since the restore began; the kill should have made the kubelet start it again", rn.kubelet.Starts()-before)
		}
		rn.wantServing(t, "in-snapshot", "after the restore")
	})

	t.Run("restored member hangs", func(t *testing.T) {
		rn := startRestoreNode(t, "127.0.0.27")
		original, err := os.ReadFile(rn.ManifestPath())
		if err != nil {
			t.Fatal(err)
		}
		// Paused once it listens: it accepts connections and answers none.
		pauseListening := func() {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rn.ClientPort))
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if conn, err := net.Dial("tcp", addr); err == nil {
					conn.Close()
					break
				}
			}
			rn.kubelet.Pause()
		}
		_, _, code, err := restoreWhile(t, rn, "10s", pauseListening)
		if code == 0 || err == nil {
			t.Fatal("restore onto a hung member succeeded")
		}
		for _, want := range []string{"hung", "the original manifest is back in place", "serves the old data again", "restored data is kept in"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
		if now, _ := os.ReadFile(rn.ManifestPath()); string(now) != string(original) {
			t.Error("the original manifest was not put back")
		}
		rn.wantServing(t, "after-snapshot", "after the rollback")
	})

	t.Run("interrupted (Ctrl-C) while etcd stops", func(t *testing.T) {
		rn := startRestoreNode(t, "127.0.0.28")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if _, err := os.Stat(rn.ManifestPath()); err != nil {
					break
				}
			}
			cancel()
		}()
		_, errOut, code, err := cmdtest.RunContext(t, ctx, append(rn.args, "snapshot", "restore", rn.file, "--manifest", "--yes", "--timeout", "1m")...)
		t.Logf("restore: exit %d, %v\n%s", code, err, errOut)
		if code == 0 || err == nil || !strings.Contains(err.Error(), "the original manifest is back in place") {
			t.Fatalf("interrupted restore: exit %d, %v; want a rollback", code, err)
		}
		rn.wantServing(t, "after-snapshot", "after the interrupted restore")
	})

	t.Run("killed after moving the manifest away", func(t *testing.T) {
		rn := startRestoreNode(t, "127.0.0.29")
		t.Log("what a restore killed (SIGKILL, power cut) after its first step leaves: the manifest in the backup directory, etcd stopped")
		backup := filepath.Join(filepath.Dir(rn.ManifestsDir), "etcd-restore-20260101T000000Z", "etcd.yaml")
		if err := os.MkdirAll(filepath.Dir(backup), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(rn.ManifestPath(), backup); err != nil {
			t.Fatal(err)
		}
		_, _, code, err := cmdtest.Run(t, append(rn.args, "snapshot", "restore", rn.file, "--manifest", "--yes")...)
		if code == 0 || err == nil || !strings.Contains(err.Error(), "an earlier restore kept a manifest in "+backup) || !strings.Contains(err.Error(), "copy it back to "+rn.ManifestPath()) {
			t.Fatalf("restore without a manifest: exit %d, %v; want the way back named", code, err)
		}
		t.Log("doing as told brings the member back on its old data")
		if err := os.Rename(backup, rn.ManifestPath()); err != nil {
			t.Fatal(err)
		}
		rn.wantServing(t, "after-snapshot", "with the manifest put back")
	})
}
