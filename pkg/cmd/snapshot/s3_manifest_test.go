package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// TestRestoreManifestFromObjectStore runs the disaster recovery of
// `snapshot restore s3://... --manifest` on a test node (the kubelet
// stand-in runs its etcd static pod with the real etcd): the snapshot is
// an age-encrypted object in a real S3 store (SeaweedFS), as the CronJob
// of manifests/backup-cronjob-s3.yaml saves it. The dry run, the question
// and the result name the object, not the temporary copy; a missing
// identity and an object cut short since it was saved are refused before
// anything changes; the restore brings back the object's data and leaves
// no copy behind.
func TestRestoreManifestFromObjectStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real etcd binary and a real S3 store")
	}
	rn := startRestoreNode(t, "127.0.0.23")
	n, node := rn.Node, rn.args
	ctx := context.Background()
	creds := s3test.Credentials{AccessKey: "AKIDETCDRESTORE", SecretKey: "etcd-restore-secret"}
	srv := s3test.Start(t, s3test.WithCredentials(creds))
	srv.CreateBucket(ctx, "etcd-backups")
	// The store as a user reaches it: the AWS SDK's variables only.
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": creds.AccessKey, "AWS_SECRET_ACCESS_KEY": creds.SecretKey,
		"AWS_ENDPOINT_URL_S3": srv.Endpoint, "AWS_REGION": "us-east-1",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("an encrypted snapshot into the bucket while /k is in-object, then /k changes")
	cmdtest.MustRun(t, append(node, "put", "/k", "in-object")...)
	out, _ := cmdtest.MustRun(t, append(node, "snapshot", "save", "s3://etcd-backups/cp-1/", "--s3-path-style", "--compress", "zstd", "--encrypt-to", id.Recipient().String(), "-o", "json")...)
	var saved snapshot.Result
	if err := json.Unmarshal([]byte(out), &saved); err != nil || !strings.HasPrefix(saved.Path, "s3://etcd-backups/cp-1/") {
		t.Fatalf("save: %v\n%s", err, out)
	}
	url := saved.Path
	cmdtest.MustRun(t, append(node, "put", "/k", "after-object")...)
	original, _ := os.ReadFile(n.ManifestPath())
	// A fetched copy goes beside the data directory, not into /tmp.
	copies := fetchCopies(t, os.TempDir(), filepath.Dir(n.DataDir))
	restore := append(append([]string{}, node...), "snapshot", "restore", url, "--manifest", "--s3-path-style")

	t.Log("without --identity: one clear line, nothing changes")
	if _, _, code, err := cmdtest.Run(t, append(restore, "--yes")...); code != 1 || !strings.Contains(err.Error(), "pass --identity") || strings.Contains(err.Error(), "\n") {
		t.Errorf("restore without --identity: exit %d, %v", code, err)
	}

	t.Log("--dry-run prints the plan and the new manifest, naming the object")
	out, errOut, code, err := cmdtest.Run(t, append(restore, "--identity", keyFile, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "--data-dir="+n.DataDir+"-restore-") || !strings.Contains(errOut, "[preflight] snapshot "+url+": revision ") {
		t.Errorf("dry run: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if strings.Contains(out+errOut, "kubectl-etcd-fetch-") {
		t.Errorf("the dry run names the temporary copy rather than %s:\n%s%s", url, out, errOut)
	}

	t.Log("an object cut short since it was saved is refused as corrupt before anything changes")
	key := strings.TrimPrefix(url, "s3://etcd-backups/")
	obj, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("etcd-backups"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	putObject := func(b []byte) {
		t.Helper()
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("etcd-backups"), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	putObject(data[:len(data)-100])
	if _, _, code, err := cmdtest.Run(t, append(restore, "--identity", keyFile, "--yes")...); code != 1 || !strings.Contains(err.Error(), "snapshot "+url+" is truncated or corrupt") {
		t.Errorf("restore of a changed object: exit %d, %v", code, err)
	}
	putObject(data)
	if after, _ := os.ReadFile(n.ManifestPath()); !bytes.Equal(after, original) {
		t.Fatal("a refused or dry run changed the manifest")
	}
	if got := rn.value(t); got != "after-object" {
		t.Fatalf("/k = %q before the restore, want after-object", got)
	}

	t.Log("--yes restores the object's data and names the object")
	out, errOut, code, err = cmdtest.Run(t, append(restore, "--identity", keyFile, "--yes", "--timeout", "2m")...)
	if code != 0 {
		t.Fatalf("restore: exit %d, %v\n%s", code, err, errOut)
	}
	if !strings.Contains(out, "Restored member cp-1 from "+url+": it serves revision") {
		t.Errorf("output does not name %s:\n%s", url, out)
	}
	if !strings.Contains(errOut, "[restore] Restoring "+url+" into "+n.DataDir+"-restore-") {
		t.Errorf("progress does not name %s:\n%s", url, errOut)
	}
	rn.wantServing(t, "in-object", "after the restore from the store")
	if now := fetchCopies(t, os.TempDir(), filepath.Dir(n.DataDir)); len(now) != len(copies) {
		t.Errorf("temporary copies before the restores %v, after %v: the fetched copy was left behind", copies, now)
	}
}

// fetchCopies lists the temporary copies of fetched snapshots in dirs.
func fetchCopies(t *testing.T, dirs ...string) []string {
	t.Helper()
	var all []string
	for _, d := range dirs {
		m, err := filepath.Glob(filepath.Join(d, "kubectl-etcd-fetch-*"))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	return all
}
