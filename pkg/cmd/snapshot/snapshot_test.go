package snapshot_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/version"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	cmdsnapshot "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.db")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	restore := []string{"snapshot", "restore", file, "--data-dir", filepath.Join(dir, "d"), "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"save without a file", []string{"snapshot", "save"}, "accepts 1 arg(s)"},
		{"unknown compression", []string{"snapshot", "save", "x.db", "--compress", "lz4"}, `unknown --compress "lz4": use gzip or zstd`},
		{"retain needs a directory", []string{"snapshot", "save", file, "--retain", "3"}, "--retain needs a directory"},
		{"overwrite is for files", []string{"snapshot", "save", dir, "--overwrite"}, "--overwrite is for a file"},
		{"bad output", []string{"snapshot", "status", file, "-o", "wide"}, `unknown output format "wide"`},
		{"restore without a name", []string{"snapshot", "restore", file, "--data-dir", "d", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"}, "--name is required"},
		{"restore without peer URLs", []string{"snapshot", "restore", file, "--data-dir", "d", "--name", "m1"}, "--initial-advertise-peer-urls is required"},
		{"restore without a data dir", []string{"snapshot", "restore", file, "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"}, "--data-dir is required"},
		{"no bump contradicts a bump", append(restore, "--no-bump-revision", "--bump-revision", "5"), "--no-bump-revision contradicts"},
		{"bump without compaction", append(restore, "--bump-revision", "5", "--mark-compacted=false"), "--bump-revision needs --mark-compacted"},
		{"--yes needs --manifest", append(restore, "--yes"), "add --manifest"},
		{"--kubelet-root-dir needs --manifest", append(restore, "--kubelet-root-dir", "/srv/kubelet"), "--kubelet-root-dir is for a restore through the static pod manifest"},
		{"--name with --manifest", []string{"snapshot", "restore", file, "--manifest", "--name", "x"}, "comes from the manifest"},
		{"initial cluster without this member", append(restore, "--initial-cluster", "m2=https://10.0.0.2:2380"), "does not list this member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantUsageError(t, tt.want, tt.args...) })
	}
}

// wantUsageError runs `kubectl etcd args...` and wants a usage error: exit
// 1, an error containing want and the pointer to the command's help.
func wantUsageError(t *testing.T, want string, args ...string) {
	t.Helper()
	_, _, code, err := cmdtest.Run(t, args...)
	if code != 1 || err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "-h' for help") {
		t.Errorf("exit %d, %v; want a usage error containing %q", code, err, want)
	}
}

func TestSaveStatusRestoreCommands(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	for _, k := range []string{"/registry/pods/default/a", "/registry/pods/default/b", "/registry/pods/default/c"} {
		if _, err := cli.Put(context.Background(), k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.db.gz")

	t.Log("save prints what it saved and nothing on stderr when not on a terminal")
	out, errOut, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "snapshot", "save", file, "--compress", "gzip")...)
	if code != 0 {
		t.Fatalf("save: exit %d, %v", code, err)
	}
	for _, w := range []string{"revision       4", "total keys     3", "gzip", "etcd version   " + version.Version + " (storage version " + snapshot.MinorVersion(version.Version) + ".0)", "metadata       " + file + ".json"} {
		if !strings.Contains(out, w) {
			t.Errorf("save output lacks %q:\n%s", w, out)
		}
	}
	if errOut != "" {
		t.Errorf("save wrote to stderr without a terminal:\n%s", errOut)
	}

	t.Log("saving over the file again is refused, --overwrite replaces it")
	if _, _, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "snapshot", "save", file)...); code != 1 || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("save over an existing file: exit %d, %v", code, err)
	}
	if _, _, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "snapshot", "save", file, "--overwrite", "--compress", "gzip")...); code != 0 {
		t.Errorf("save --overwrite: exit %d, %v", code, err)
	}

	t.Log("status reads it back")
	out, _, code, err = cmdtest.Run(t, "snapshot", "status", file, "-o", "json")
	var st snapshot.FileStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Revision != 4 || st.TotalKeys != 3 || st.Compression != snapshot.Gzip {
		t.Errorf("status -o json: exit %d, %v\n%s", code, err, out)
	}

	t.Log("restore writes the data dir and the next steps; a restore that fails leaves no data dir")
	dataDir := filepath.Join(dir, "restored")
	out, _, code, err = cmdtest.Run(t, "snapshot", "restore", file, "--data-dir", dataDir, "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380")
	if code != 0 {
		t.Fatalf("restore: exit %d, %v", code, err)
	}
	if !strings.Contains(out, "Revision bumped by 1000000000 to 1000000004") || !strings.Contains(out, "needs etcd "+snapshot.MinorVersion(version.Version)+" or newer") || !strings.Contains(out, "--data-dir "+dataDir) {
		t.Errorf("restore output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "member", "snap", "db")); err != nil {
		t.Errorf("restored data dir lacks member/snap/db: %v", err)
	}
	if _, _, code, err := cmdtest.Run(t, "snapshot", "restore", file, "--data-dir", dataDir, "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"); code != 1 || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("restore into a non-empty dir: exit %d, %v", code, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.db.gz")
	if err := os.WriteFile(bad, data[:len(data)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code, err := cmdtest.Run(t, "snapshot", "status", bad); code != 1 || !strings.Contains(err.Error(), "is truncated or corrupt") {
		t.Errorf("status of a truncated gzip file: exit %d, %v", code, err)
	}
	t.Log("a plain database without the trailer (copied out of a data dir) needs --skip-hash-check")
	plain := filepath.Join(dir, "plain.db")
	if _, _, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "snapshot", "save", plain)...); code != 0 {
		t.Fatalf("save: exit %d, %v", code, err)
	}
	plainData, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	noTrailer := filepath.Join(dir, "db")
	if err := os.WriteFile(noTrailer, plainData[:len(plainData)-32], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code, err := cmdtest.Run(t, "snapshot", "status", noTrailer); code != 1 || !strings.Contains(err.Error(), "--skip-hash-check") {
		t.Errorf("status of a database without trailer: exit %d, %v; want a pointer to --skip-hash-check", code, err)
	}
	if out, _, code, err := cmdtest.Run(t, "snapshot", "status", noTrailer, "--skip-hash-check"); code != 0 || !strings.Contains(out, "no trailer") {
		t.Errorf("status --skip-hash-check: exit %d, %v\n%s", code, err, out)
	}
	if _, _, code, err := cmdtest.Run(t, "snapshot", "restore", noTrailer, "--data-dir", filepath.Join(dir, "no-trailer-1"), "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"); code != 1 || !strings.Contains(err.Error(), "--skip-hash-check") {
		t.Errorf("restore of a database without trailer: exit %d, %v", code, err)
	}
	if _, _, code, err := cmdtest.Run(t, "snapshot", "restore", noTrailer, "--skip-hash-check", "--data-dir", filepath.Join(dir, "no-trailer-2"), "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"); code != 0 {
		t.Errorf("restore --skip-hash-check: exit %d, %v", code, err)
	}

	badDir := filepath.Join(dir, "from-bad")
	if _, _, code, err := cmdtest.Run(t, "snapshot", "restore", bad, "--data-dir", badDir, "--name", "m1", "--initial-advertise-peer-urls", "https://10.0.0.1:2380"); code != 1 || !strings.Contains(err.Error(), "is truncated or corrupt") {
		t.Errorf("restore of a truncated file: exit %d, %v", code, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "from-bad") || e.Name() == "no-trailer-1" || strings.Contains(e.Name(), ".restoring-") || strings.HasPrefix(e.Name(), "kubectl-etcd-snapshot-") {
			t.Errorf("a failed restore left %s behind", e.Name())
		}
	}
}

func TestRestoreSummary(t *testing.T) {
	got := cmdsnapshot.RestoreSummary(cmdsnapshot.BumpedRestore(), 1000000000, true)
	for _, w := range []string{
		`Restored etcd.db (revision 1234, sha256 trailer ok) into /var/lib/etcd-restored as member "node-1".`,
		"Revision bumped by 1000000000 to 1000001234 and marked compacted",
		"The restored data needs etcd 3.6 or newer (storage version 3.6.0).",
		"on every other member listed in --initial-cluster (node-2)",
		"etcd --name node-1 --data-dir /var/lib/etcd-restored --initial-advertise-peer-urls https://10.0.0.1:2380 --initial-cluster node-1=https://10.0.0.1:2380,node-2=https://10.0.0.2:2380 --initial-cluster-token etcd-cluster --initial-cluster-state new",
		"  4. Check the cluster: kubectl etcd health && kubectl etcd status",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("summary lacks %q:\n%s", w, got)
		}
	}
}
