package fileutil_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	path := filepath.Join(dir, "etcd.yaml")
	for _, content := range []string{"first", "second, replacing it"} {
		if err := fileutil.WriteFileAtomic(path, []byte(content), 0o600, 0o700); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode %v, %v; want 0700", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only etcd.yaml (no temporary file left)", entries)
	}
}

func TestSyncDir(t *testing.T) {
	if err := fileutil.SyncDir(t.TempDir()); err != nil {
		t.Errorf("syncing a directory: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	if err := fileutil.SyncDir(missing); err == nil || !strings.Contains(err.Error(), "syncing directory "+missing) {
		t.Errorf("syncing a missing directory: %v, want an error naming it", err)
	}
}

func TestReadDirIfExists(t *testing.T) {
	dir := t.TempDir()
	if entries, err := fileutil.ReadDirIfExists(filepath.Join(dir, "missing")); err != nil || entries != nil {
		t.Errorf("a missing directory: %v, %v; want nothing and no error", entries, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if entries, err := fileutil.ReadDirIfExists(dir); err != nil || len(entries) != 1 || entries[0].Name() != "f" {
		t.Errorf("a directory with one file: %v, %v", entries, err)
	}
	if _, err := fileutil.ReadDirIfExists(filepath.Join(dir, "f")); err == nil {
		t.Error("a file is not a directory: want an error")
	}
}
