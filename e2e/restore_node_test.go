package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// resetNode takes the node back to no etcd: kubectl etcd reset, which
// clears the data directory the manifest runs etcd on (after a restore,
// the restored one), then the member's other data directories, as an
// operator would once done with them.
func resetNode(t *testing.T, n *bootNode) {
	t.Helper()
	dataDir, manifestErr := n.manifestDataDir()
	n.mustKubectl(t, append([]string{"reset", "--yes"}, n.manifestFlags()...)...)
	n.node.WaitEtcd(false, 30*time.Second)
	if manifestErr == nil {
		if entries, err := os.ReadDir(dataDir); err != nil || len(entries) > 0 {
			t.Errorf("reset left %d entries in %s, the data directory of the manifest (%v)", len(entries), dataDir, err)
		}
	}
	dirs, _ := filepath.Glob(n.node.DataDir() + "-restore-*")
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	entries, _ := os.ReadDir(n.node.DataDir())
	for _, e := range entries {
		os.RemoveAll(filepath.Join(n.node.DataDir(), e.Name()))
	}
}

// lastErrorLine is oneErrorLine for commands that report progress on
// stderr before they fail: one "error: " line, the last, naming the cause.
func lastErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	// Count lines that are errors, not the words: a wait's message quotes
	// its "last error: ..." inside the one error line.
	errorLines := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "error: ") {
			errorLines++
		}
	}
	if r.code == 0 || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, want) || errorLines != 1 {
		t.Errorf("exit %d, stderr:\n%s\nwant one error line, the last, containing %q", r.code, r.stderr, want)
	}
}

// TestSnapshotRestoreManifestOnRealKubelets runs the disaster recovery of
// `snapshot restore --manifest` on a node whose real kubelet runs etcd:
// the kubelet must notice the manifest leave and come back, and the
// member must serve the snapshot's data. A corrupt snapshot is refused
// before anything changes, a dry run changes nothing, and a restore whose
// etcd cannot start the data (a 3.7 snapshot on etcd 3.6) puts the
// original manifest back and serves the old data again.
func TestSnapshotRestoreManifestOnRealKubelets(t *testing.T) {
	versions := etcdtest.Versions(t)
	older, newer := versions[0], versions[len(versions)-1]
	c, nodes := startBootCluster(t, newer, 2)
	dir := t.TempDir()
	for _, version := range versions {
		t.Run("etcd-"+version, func(t *testing.T) {
			n := nodes[0]
			n.version = version
			t.Cleanup(func() { resetNode(t, n) })
			t.Logf("init %s with etcd %s; a snapshot, then more writes", n.name, version)
			n.mustKubectl(t, append([]string{"init"}, n.identity()...)...)
			n.node.WaitEtcd(true, 60*time.Second)
			cfg := n.config(t, n)
			waitVoters(t, cfg, 1)
			etcdtest.PutKey(t, cfg, "/registry/a", "in-snapshot")
			etcdtest.PutKey(t, cfg, "/registry/b", "in-snapshot")
			file := filepath.Join(dir, "etcd-"+version+".db")
			n.mustKubectl(t, "snapshot", "save", file)
			etcdtest.PutKey(t, cfg, "/registry/a", "after-snapshot")
			etcdtest.PutKey(t, cfg, "/registry/c", "after-snapshot")
			original, err := os.ReadFile(n.node.EtcdManifest())
			if err != nil {
				t.Fatal(err)
			}
			starts := n.node.EtcdStarts()

			t.Log("a corrupt snapshot is refused in the preflight: nothing changes")
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(dir, "bad.db")
			if err := os.WriteFile(bad, data[:len(data)-100], 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := n.kubectl(t, "snapshot", "restore", bad, "--manifest", "--yes")
			if err != nil {
				t.Fatal(err)
			}
			lastErrorLine(t, r, "truncated or corrupt")

			t.Log("a dry run prints the plan and the new manifest and changes nothing")
			r = n.mustKubectl(t, "snapshot", "restore", file, "--manifest", "--dry-run")
			if !strings.Contains(r.stdout+r.stderr, "--data-dir="+n.node.DataDir()+"-restore-") {
				t.Errorf("dry run does not show the new data dir:\n%s%s", r.stdout, r.stderr)
			}
			if now, _ := os.ReadFile(n.node.EtcdManifest()); !bytes.Equal(now, original) || n.node.EtcdStarts() != starts {
				t.Fatal("the dry run changed the manifest or restarted etcd")
			}
			if running, err := n.node.EtcdRunning(); !running || err != nil {
				t.Fatalf("etcd not running after the dry run: %v", err)
			}

			t.Log("restore: the kubelet stops etcd, then runs it on the restored data")
			r = n.mustKubectl(t, "snapshot", "restore", file, "--manifest", "--yes", "--timeout", "2m")
			t.Logf("restore:\n%s%s", r.stdout, r.stderr)
			if got := etcdtest.GetKey(t, cfg, "/registry/a"); got != "in-snapshot" {
				t.Errorf("/registry/a = %q, want the value of the snapshot", got)
			}
			if got := etcdtest.GetKey(t, cfg, "/registry/b"); got != "in-snapshot" {
				t.Errorf("/registry/b = %q, want the value of the snapshot", got)
			}
			if got := etcdtest.GetKey(t, cfg, "/registry/c"); got != "" {
				t.Errorf("/registry/c = %q, written after the snapshot, want none", got)
			}
			if n.node.EtcdStarts() <= starts {
				t.Error("the kubelet did not start a new etcd container")
			}
			m, err := staticpod.Read(n.node.EtcdManifest())
			if err != nil {
				t.Fatal(err)
			}
			if hostDir, _ := m.HostDataDir(); !strings.HasPrefix(hostDir, n.node.DataDir()+"-restore-") || m.Flags["data-dir"] != hostDir {
				t.Errorf("manifest data dir %s (--data-dir %s), want one beside %s", hostDir, m.Flags["data-dir"], n.node.DataDir())
			}
			if _, err := os.Stat(filepath.Join(n.node.DataDir(), "member", "wal")); err != nil {
				t.Errorf("old data dir not kept: %v", err)
			}
			etcdtest.PutKey(t, cfg, "/registry/d", "after-restore")
		})
	}

	t.Run("from an object store", func(t *testing.T) {
		n := nodes[0]
		n.version = newer
		t.Cleanup(func() { resetNode(t, n) })
		srv := startStore(t)
		// The node reaches the store on the host through the bridge, as
		// a node reaches its object store over the network.
		env := append(s3Env(t, srv), "AWS_ENDPOINT_URL_S3=http://"+c.Expose(t, strings.TrimPrefix(srv.Endpoint, "http://")))
		identity, recipient := ageKey(t)
		withStore := func(args ...string) result {
			t.Helper()
			cmd := n.node.Kubectl(args...)
			cmd.Env = append(cmd.Env, env...)
			r, err := execute(cmd)
			if err != nil || r.code != 0 {
				t.Fatalf("%s: kubectl etcd %s: %v, exit %d\n%s", n.name, strings.Join(args, " "), err, r.code, r.stderr)
			}
			return r
		}

		t.Logf("init %s with etcd %s; an encrypted snapshot saved into the store from the node, then more writes", n.name, newer)
		n.mustKubectl(t, append([]string{"init"}, n.identity()...)...)
		cfg := n.config(t, n)
		waitVoters(t, cfg, 1)
		etcdtest.PutKey(t, cfg, "/registry/a", "in-snapshot")
		var saved snapshot.Result
		decodeJSON(t, withStore("snapshot", "save", "s3://"+backupBucket+"/"+n.name+"/", "--s3-path-style", "--encrypt-to", recipient, "-o", "json"), &saved)
		etcdtest.PutKey(t, cfg, "/registry/a", "after-snapshot")
		starts := n.node.EtcdStarts()

		t.Logf("restore --manifest %s: the kubelet runs etcd on the data streamed from the store", saved.Path)
		r := withStore("snapshot", "restore", saved.Path, "--identity", identity, "--s3-path-style", "--manifest", "--yes", "--timeout", "2m")
		t.Logf("restore:\n%s%s", r.stdout, r.stderr)
		if got := etcdtest.GetKey(t, cfg, "/registry/a"); got != "in-snapshot" {
			t.Errorf("/registry/a = %q, want the value of the snapshot in the store", got)
		}
		if n.node.EtcdStarts() <= starts {
			t.Error("the kubelet did not start a new etcd container")
		}
	})

	t.Run("rollback", func(t *testing.T) {
		n := nodes[1]
		t.Logf("a snapshot of etcd %s on %s", newer, n.name)
		n.version = newer
		n.mustKubectl(t, append([]string{"init"}, n.identity()...)...)
		waitVoters(t, n.config(t, n), 1)
		file := filepath.Join(dir, "etcd-"+newer+"-rollback.db")
		n.mustKubectl(t, "snapshot", "save", file)
		resetNode(t, n)

		n.version = older
		t.Logf("init %s with etcd %s and restore the snapshot of etcd %s there: it cannot start, the restore rolls back", n.name, older, newer)
		n.mustKubectl(t, append([]string{"init"}, n.identity()...)...)
		n.node.WaitEtcd(true, 60*time.Second)
		cfg := n.config(t, n)
		waitVoters(t, cfg, 1)
		etcdtest.PutKey(t, cfg, "/registry/a", "old")
		original, err := os.ReadFile(n.node.EtcdManifest())
		if err != nil {
			t.Fatal(err)
		}
		// The kubelet restarts the failing etcd with its back-off: the
		// restore names the crash loop at the 4th start, long before
		// --timeout.
		began := time.Now()
		r, err := n.kubectl(t, "snapshot", "restore", file, "--manifest", "--yes", "--timeout", "4m", "--kubelet-root-dir", n.node.KubeletRootDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("restore (%s):\n%s", time.Since(began).Round(time.Second), r.stderr)
		if !strings.Contains(r.stderr, "it is crash-looping") || time.Since(began) > 3*time.Minute {
			t.Errorf("the restore did not name the crash loop within 3 minutes (took %s):\n%s", time.Since(began).Round(time.Second), r.stderr)
		}
		if !strings.Contains(r.stderr, "its last words ("+n.node.Dir) || !strings.Contains(r.stderr, "not supported") {
			t.Errorf("the crash-loop error does not quote etcd's refusal from the kubelet's podLogsDir:\n%s", r.stderr)
		}
		lastErrorLine(t, r, "the original manifest is back in place")
		if !strings.Contains(r.stderr, "restored data is kept in") {
			t.Errorf("the error does not say where the restored data is:\n%s", r.stderr)
		}
		if now, _ := os.ReadFile(n.node.EtcdManifest()); !bytes.Equal(now, original) {
			t.Error("the original manifest was not put back")
		}
		n.node.WaitEtcd(true, 60*time.Second)
		waitVoters(t, cfg, 1)
		if got := etcdtest.GetKey(t, cfg, "/registry/a"); got != "old" {
			t.Errorf("after the rollback /registry/a = %q, want the old data", got)
		}
	})
}
