package snapshot_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

func TestBackupUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"prune without a policy", []string{"snapshot", "prune", dir}, "--retain N or --older-than AGE"},
		{"prune --retain 0", []string{"snapshot", "prune", dir, "--retain", "0"}, "would remove every snapshot"},
		{"prune bad age", []string{"snapshot", "prune", dir, "--older-than", "a month"}, "not an age such as 30d"},
		{"list an unknown scheme", []string{"snapshot", "list", "gs://bucket/x/"}, "gs:// is not supported"},
		{"list a bad bucket", []string{"snapshot", "list", "s3://My_Bucket/x/"}, "lowercase letters"},
		{"delete a foreign object", []string{"snapshot", "delete", "s3://backups/prod/notes.txt"}, "not named as a snapshot"},
		{"delete a prefix", []string{"snapshot", "delete", "s3://backups/prod/"}, "names a prefix"},
		{"s3 flags on a local path", []string{"snapshot", "save", dir + "/", "--s3-path-style"}, "are for an s3:// location"},
		{"part size on a local path", []string{"snapshot", "save", dir + "/", "--s3-multipart-chunksize", "8MiB"}, "are for an s3:// location"},
		{"part size below S3's smallest", []string{"snapshot", "save", "s3://backups/prod/", "--s3-multipart-chunksize", "4MiB"}, "S3 takes parts of 5MiB to 5GiB"},
		{"part size not a size", []string{"snapshot", "save", "s3://backups/prod/", "--s3-multipart-chunksize", "big"}, "not a size such as 16MiB"},
		{"no request at a time", []string{"snapshot", "save", "s3://backups/prod/", "--s3-max-concurrent-requests", "0"}, "must be 1 or more"},
		{"verify a bad quota", []string{"snapshot", "verify", "x.db", "--quota-backend-bytes", "0"}, "--quota-backend-bytes must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) { wantUsageError(t, tt.want, tt.args...) })
	}
}

// TestEncryptedBackupsInADirectory runs the backup commands on a local
// directory: encrypted saves with retention, the catalog, status and
// verify with and without the identity, prune and delete.
func TestEncryptedBackupsInADirectory(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	for _, k := range []string{"/registry/configmaps/default/a", "/registry/configmaps/default/b"} {
		if _, err := cli.Put(context.Background(), k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	id, _ := age.GenerateX25519Identity()
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	dir := filepath.Join(t.TempDir(), "backups") + "/"

	t.Log("save an encrypted snapshot into a directory")
	out, _, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "snapshot", "save", dir, "--compress", "zstd", "--encrypt-to", id.Recipient().String(), "-o", "json")...)
	var res snapshot.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("save: exit %d, %v\n%s", code, err, out)
	}
	if !strings.HasSuffix(res.Path, ".db.zst.age") || res.Encryption != "age" || res.TotalKeys != 2 {
		t.Errorf("saved %+v", res)
	}
	data, _ := os.ReadFile(res.Path)
	if !backup.IsEncrypted(data) || strings.Contains(string(data), "/registry/configmaps") {
		t.Error("the saved file is not age-encrypted, or shows its keys")
	}

	t.Log("status needs the identity")
	if _, _, code, err := cmdtest.Run(t, "snapshot", "status", res.Path); code != 1 || !strings.Contains(err.Error(), "pass --identity") {
		t.Errorf("status without --identity: exit %d, %v", code, err)
	}
	out, _, code, _ = cmdtest.Run(t, "snapshot", "status", res.Path, "--identity", keyFile, "-o", "json")
	var st snapshot.FileStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Revision != res.Revision || st.Path != res.Path {
		t.Errorf("status with --identity: exit %d\n%s", code, out)
	}

	t.Log("verify runs the drill on it")
	out, _, code, err = cmdtest.Run(t, "snapshot", "verify", res.Path, "--identity", keyFile)
	if code != 0 || !strings.Contains(out, "ok: it restores") || !strings.Contains(out, "2 under /registry, 2 decoded") {
		t.Errorf("verify: exit %d, %v\n%s", code, err, out)
	}

	t.Log("two more saves with --retain 2 keep two, and the catalog lists them newest first")
	sleepSecond()
	for range 2 {
		if _, _, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "snapshot", "save", dir, "--retain", "2", "--encrypt-to", id.Recipient().String())...); code != 0 {
			t.Fatalf("save --retain: exit %d, %v", code, err)
		}
		// A name holds the second it was taken.
		sleepSecond()
	}
	out, _, code, _ = cmdtest.Run(t, "snapshot", "list", dir, "-o", "json")
	var entries []backup.Entry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 2 || !entries[0].Taken.After(entries[1].Taken) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	for _, e := range entries {
		if e.URL == res.Path {
			t.Errorf("--retain 2 kept the oldest snapshot %s", res.Path)
		}
	}

	t.Log("delete asks, then removes the snapshot and its metadata")
	if _, _, code, err := cmdtest.Run(t, "snapshot", "delete", entries[1].URL); code != 1 || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("delete without --yes: exit %d, %v", code, err)
	}
	if _, _, code, err := cmdtest.Run(t, "snapshot", "delete", entries[1].URL, "--yes"); code != 0 {
		t.Errorf("delete --yes: exit %d, %v", code, err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 2 {
		t.Errorf("after delete the directory holds %d files, want one snapshot and its metadata", len(files))
	}
}

func sleepSecond() { time.Sleep(1100 * time.Millisecond) }
