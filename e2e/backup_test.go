package e2e

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/s3test"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/backup"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/pki"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

const backupBucket = "etcd-backups"

// s3Env is the environment a user sets for an S3-compatible store: the AWS
// SDK's variables, nothing kubectl-etcd specific; config files that do not
// exist so the developer's own ~/.aws does not leak in.
func s3Env(t *testing.T, srv *s3test.Server) []string {
	none := filepath.Join(t.TempDir(), "none")
	return []string{
		"AWS_ACCESS_KEY_ID=" + srv.Credentials.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.Credentials.SecretKey,
		"AWS_ENDPOINT_URL_S3=" + srv.Endpoint,
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func startStore(t *testing.T) *s3test.Server {
	srv := s3test.Start(t, s3test.WithCredentials(s3test.Credentials{AccessKey: "AKIDETCDBACKUP", SecretKey: "etcd-backup-secret"}))
	srv.CreateBucket(context.Background(), backupBucket)
	return srv
}

// ageKey writes a fresh age identity file and returns its path and public
// key.
func ageKey(t *testing.T) (string, string) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(path, []byte("# created: test\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, id.Recipient().String()
}

func decodeJSON(t *testing.T, r result, v any) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("decoding %q: %v", r.stdout, err)
	}
}

// TestBackupsInObjectStore saves snapshots of real etcd members into a
// real S3 server (SeaweedFS), encrypted and not, and reads them back the
// ways an operator would after losing the control plane: list, status,
// restore (started on a real etcd), verify, prune, delete.
func TestBackupsInObjectStore(t *testing.T) {
	version := etcdtest.NewestVersion(t)
	c := etcdtest.StartProcesses(t, version)
	cli := c.Client()
	for i := range 20 {
		mustPut(t, cli, fmt.Sprintf("/registry/configmaps/default/cm-%02d", i), "v")
	}
	srv := startStore(t)
	env := s3Env(t, srv)
	ctx := context.Background()
	identity, recipient := ageKey(t)
	_, otherRecipient := ageKey(t)
	loc := "s3://" + backupBucket + "/prod/"
	conn := c.ConnectArgs()

	t.Log("Save three snapshots into the bucket: zstd and age-encrypted to two keys, gzip, plain")
	var saved []snapshot.Result
	for _, extra := range [][]string{
		{"--compress", "zstd", "--encrypt-to", recipient, "--encrypt-to", otherRecipient},
		{"--compress", "gzip"},
		{"--verify", "full"},
	} {
		var res snapshot.Result
		decodeJSON(t, plugin(t, env, append(append(conn, "snapshot", "save", loc, "--s3-path-style", "-o", "json"), extra...)...), &res)
		saved = append(saved, res)
		// Names carry the second a snapshot was taken.
		time.Sleep(1100 * time.Millisecond)
	}
	encrypted := saved[0]
	rev := encrypted.Revision
	if !strings.HasPrefix(encrypted.Path, loc) || !strings.HasSuffix(encrypted.Path, ".db.zst.age") || encrypted.Encryption != "age" || len(encrypted.Recipients) != 2 {
		t.Errorf("encrypted save: %+v", encrypted)
	}
	if rev == 0 || encrypted.TotalKeys != 20 {
		t.Errorf("saved revision %d with %d keys, want the cluster's 20 keys", rev, encrypted.TotalKeys)
	}
	keys := srv.Keys(ctx, backupBucket, "prod/")
	if len(keys) != 6 {
		t.Errorf("bucket holds %v, want three snapshots and three metadata objects", keys)
	}
	if ups := srv.Uploads(ctx, backupBucket); len(ups) != 0 {
		t.Errorf("unfinished uploads after three saves: %v", ups)
	}

	t.Log("list: the catalog, newest first, from the metadata objects")
	var entries []backup.Entry
	decodeJSON(t, plugin(t, env, "snapshot", "list", loc, "--s3-path-style", "-o", "json"), &entries)
	if len(entries) != 3 || entries[2].URL != encrypted.Path || entries[2].Metadata == nil || entries[2].Metadata.Revision != rev || entries[2].Metadata.Encryption != "age" {
		t.Fatalf("catalog %+v; want 3 entries, the encrypted one oldest with revision %d", entries, rev)
	}
	table := plugin(t, env, "snapshot", "list", loc, "--s3-path-style")
	if !strings.Contains(table.stdout, "age (2 recipients)") || !strings.Contains(table.stdout, "zstd") {
		t.Errorf("catalog table lacks encryption or compression:\n%s", table.stdout)
	}

	t.Log("status of the encrypted object: without an identity, with another's, then with the right one")
	oneErrorLine(t, plugin(t, env, "snapshot", "status", encrypted.Path, "--s3-path-style"), "encrypted with age: pass --identity")
	strangerKey, _ := ageKey(t)
	oneErrorLine(t, plugin(t, env, "snapshot", "status", encrypted.Path, "--s3-path-style", "--identity", strangerKey), "encrypted to other recipients")
	var st snapshot.FileStatus
	decodeJSON(t, plugin(t, env, "snapshot", "status", encrypted.Path, "--s3-path-style", "--identity", identity, "-o", "json"), &st)
	if st.Revision != rev || st.TotalKeys != 20 || st.HashCheck != snapshot.HashOK || st.Compression != snapshot.Zstd {
		t.Errorf("status of %s: %+v", encrypted.Path, st)
	}

	t.Log("A wrong secret key is one clear line")
	badEnv := append(slices.Clone(env), "AWS_SECRET_ACCESS_KEY=wrong")
	r := plugin(t, badEnv, "snapshot", "list", loc, "--s3-path-style")
	oneErrorLine(t, r, loc)
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("more than one line: %q", r.stderr)
	}

	t.Log("restore the encrypted object and start a real etcd on it: every key is there")
	dataDir := filepath.Join(t.TempDir(), "restored")
	peer, client := freeLoopbackURLs(t)
	r = plugin(t, env, "snapshot", "restore", encrypted.Path, "--s3-path-style", "--identity", identity,
		"--data-dir", dataDir, "--name", "m1", "--initial-advertise-peer-urls", peer)
	if r.code != 0 || !strings.Contains(r.stdout, "Restored "+encrypted.Path) {
		t.Fatalf("restore exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	restored := startEtcdOn(t, version, dataDir, peer, client)
	got, err := restored.Get(ctx, "/registry/configmaps/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 20 {
		t.Errorf("restored etcd: %v, %v keys; want 20", err, got)
	}
	oneErrorLine(t, plugin(t, env, "snapshot", "restore", encrypted.Path, "--s3-path-style",
		"--data-dir", filepath.Join(t.TempDir(), "x"), "--name", "m1", "--initial-advertise-peer-urls", peer), "pass --identity")

	t.Log("verify: the restore drill of the encrypted object passes")
	var rep backup.DrillReport
	decodeJSON(t, plugin(t, env, "snapshot", "verify", encrypted.Path, "--s3-path-style", "--identity", identity, "-o", "json"), &rep)
	if !rep.OK || rep.Keys != 20 || rep.Decoded != 20 || !rep.AgeEncrypted || rep.HashKV == 0 {
		t.Errorf("drill report %+v", rep)
	}

	name := func(u string) string { return strings.TrimPrefix(u, "s3://"+backupBucket+"/") }
	t.Log("prune --retain 2: refused without --yes, a dry run removes nothing, then exactly 2 are kept")
	r = plugin(t, env, "snapshot", "prune", loc, "--s3-path-style", "--retain", "2")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; r.code == 0 || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, "pass --yes") ||
		!strings.Contains(r.stderr, "This removes 1 of the 3 snapshots") || !strings.Contains(r.stderr, name(encrypted.Path)[len("prod/"):]) {
		t.Errorf("prune without --yes: exit %d, stderr %q; want the snapshot it would remove, then an error asking for --yes", r.code, r.stderr)
	}
	if r := plugin(t, env, "snapshot", "prune", loc, "--s3-path-style", "--retain", "2", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "would remove") {
		t.Errorf("dry run exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if keys := srv.Keys(ctx, backupBucket, "prod/"); len(keys) != 6 {
		t.Errorf("after a refused prune and a dry run the bucket holds %v", keys)
	}
	if r := plugin(t, env, "snapshot", "prune", loc, "--s3-path-style", "--retain", "2", "--yes"); r.code != 0 {
		t.Fatalf("prune exit %d: %s", r.code, r.stderr)
	}
	keys = srv.Keys(ctx, backupBucket, "prod/")
	want := []string{name(saved[1].Path), name(saved[1].Path) + ".json", name(saved[2].Path), name(saved[2].Path) + ".json"}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("after prune --retain 2 the bucket holds %v, want %v", keys, want)
	}

	t.Log("delete one by URL; an object that is not a snapshot is refused")
	if r := plugin(t, env, "snapshot", "delete", saved[1].Path, "--s3-path-style", "--yes"); r.code != 0 {
		t.Fatalf("delete exit %d: %s", r.code, r.stderr)
	}
	if keys := srv.Keys(ctx, backupBucket, "prod/"); len(keys) != 2 {
		t.Errorf("after delete the bucket holds %v", keys)
	}
	oneErrorLine(t, plugin(t, env, "snapshot", "delete", loc+"notes.txt", "--s3-path-style", "--yes"), "not named as a snapshot")
}

// TestObjectStoreWithPrivateCA saves into, lists and restores from a store
// served over HTTPS with a certificate of a private CA (SeaweedFS with a
// test CA): each works with --s3-ca-file, and each fails with one line
// naming the flag without it or with the wrong CA, saving nothing.
func TestObjectStoreWithPrivateCA(t *testing.T) {
	version := etcdtest.NewestVersion(t)
	c := etcdtest.StartProcesses(t, version, etcdtest.WithClusterSize(1))
	cli := c.Client()
	for i := range 10 {
		mustPut(t, cli, fmt.Sprintf("/registry/configmaps/default/cm-%02d", i), "v")
	}
	srv := s3test.Start(t, s3test.WithCredentials(s3test.Credentials{AccessKey: "AKIDETCDBACKUP", SecretKey: "etcd-backup-secret"}), s3test.WithTLS())
	ctx := context.Background()
	srv.CreateBucket(ctx, backupBucket)
	env := s3Env(t, srv)
	if !strings.HasPrefix(srv.Endpoint, "https://") {
		t.Fatalf("the store serves %s, want https", srv.Endpoint)
	}
	loc := "s3://" + backupBucket + "/tls/"
	ca := []string{"--s3-path-style", "--s3-ca-file", srv.CAFile}
	otherCA := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(otherCA, []byte(testCAPEM(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	oneLine := func(r result, want string) {
		t.Helper()
		oneErrorLine(t, r, want)
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
			t.Errorf("%d lines on stderr, want one: %q", n+1, r.stderr)
		}
	}

	t.Log("save without --s3-ca-file, then with another CA: one line naming the flag, nothing in the bucket")
	oneLine(plugin(t, env, append(c.ConnectArgs(), "snapshot", "save", loc, "--s3-path-style")...), "signed by an unknown CA (x509: certificate signed by unknown authority): pass that CA's certificate with --s3-ca-file")
	oneLine(plugin(t, env, append(c.ConnectArgs(), "snapshot", "save", loc, "--s3-path-style", "--s3-ca-file", otherCA)...), "not signed by a CA of --s3-ca-file "+otherCA)
	if keys := srv.Keys(ctx, backupBucket, "tls/"); len(keys) != 0 {
		t.Errorf("failed saves left %v", keys)
	}
	if ups := srv.Uploads(ctx, backupBucket); len(ups) != 0 {
		t.Errorf("failed saves left unfinished uploads %v", ups)
	}

	t.Log("save, list and status with --s3-ca-file")
	var res snapshot.Result
	decodeJSON(t, plugin(t, env, append(append(c.ConnectArgs(), "snapshot", "save", loc, "-o", "json"), ca...)...), &res)
	if !strings.HasPrefix(res.Path, loc) || res.TotalKeys != 10 {
		t.Errorf("save: %+v", res)
	}
	var entries []backup.Entry
	decodeJSON(t, plugin(t, env, append([]string{"snapshot", "list", loc, "-o", "json"}, ca...)...), &entries)
	if len(entries) != 1 || entries[0].URL != res.Path || entries[0].Metadata == nil || entries[0].Metadata.Revision != res.Revision {
		t.Errorf("catalog %+v, want the one snapshot %s", entries, res.Path)
	}
	var st snapshot.FileStatus
	decodeJSON(t, plugin(t, env, append([]string{"snapshot", "status", res.Path, "-o", "json"}, ca...)...), &st)
	if st.Revision != res.Revision || st.HashCheck != snapshot.HashOK {
		t.Errorf("status: %+v", st)
	}

	t.Log("list and restore without --s3-ca-file: one line each")
	oneLine(plugin(t, env, "snapshot", "list", loc, "--s3-path-style"), "pass that CA's certificate with --s3-ca-file")
	dataDir := filepath.Join(t.TempDir(), "restored")
	peer, client := freeLoopbackURLs(t)
	restore := []string{"snapshot", "restore", res.Path, "--data-dir", dataDir, "--name", "m1", "--initial-advertise-peer-urls", peer}
	oneLine(plugin(t, env, append(restore, "--s3-path-style")...), "pass that CA's certificate with --s3-ca-file")
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s: %v", dataDir, err)
	}

	t.Log("restore with --s3-ca-file and start a real etcd on it: every key is there")
	if r := plugin(t, env, append(restore, ca...)...); r.code != 0 || !strings.Contains(r.stdout, "Restored "+res.Path) {
		t.Fatalf("restore exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	restored := startEtcdOn(t, version, dataDir, peer, client)
	got, err := restored.Get(ctx, "/registry/configmaps/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 10 {
		t.Errorf("restored etcd: %v, %v keys; want 10", err, got)
	}
}

// testCAPEM is the certificate of a CA made for the test, in PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	ca, err := pki.NewCA("another-ca", pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
}

// TestInterruptedUploadsLeaveNoObject kills the store mid-upload, then the
// plugin itself (SIGKILL), while snapshots stream into the bucket: neither
// leaves an object that looks like a backup.
func TestInterruptedUploadsLeaveNoObject(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	cli := c.Client()
	t.Log("Write about 60 MB, so the upload takes a while")
	putLargeSecrets(t, cli, 600)
	srv := startStore(t)
	env := s3Env(t, srv)
	ctx := context.Background()
	loc := "s3://" + backupBucket + "/prod/"

	start := func(extra ...string) (*exec.Cmd, *strings.Builder) {
		cmd, stderr := startPluginCmd(t, append(os.Environ(), env...), append(append(c.ConnectArgs(), "snapshot", "save", loc, "--s3-path-style"), extra...)...)
		// The upload is created before the first byte streams.
		deadline := time.Now().Add(60 * time.Second)
		for len(srv.Uploads(ctx, backupBucket)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no upload started within 60s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return cmd, stderr
	}
	wait := func(cmd *exec.Cmd) error {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(2 * time.Minute):
			t.Fatal("the plugin did not give up within 2 minutes")
			return nil
		}
	}

	t.Log("The store dies mid-upload: the save fails with one line, and once the store is back the bucket holds no object")
	cmd, stderr := start()
	srv.Kill()
	err := wait(cmd)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("save into a store that died: %v, want a non-zero exit", err)
	}
	t.Logf("the plugin said: %s", strings.TrimSpace(stderr.String()))
	if msg := stderr.String(); !strings.HasPrefix(msg, "error: ") || !strings.Contains(msg, "nothing was saved") {
		t.Errorf("stderr %q, want one error line saying nothing was saved", msg)
	}
	srv.Start()
	if keys := srv.Keys(ctx, backupBucket, "prod/"); len(keys) != 0 {
		t.Errorf("after the store died mid-upload the bucket holds %v", keys)
	}
	// The abort could not reach a dead store; clear what is left so the
	// next step sees only its own upload.
	for _, u := range srv.Uploads(ctx, backupBucket) {
		t.Logf("left unfinished (never an object): %s", u)
	}
	plugin(t, env, "snapshot", "prune", loc, "--s3-path-style", "--retain", "5", "--yes")
	abortAll(t, srv)

	t.Log("The plugin is killed (SIGKILL) mid-upload: no object appears")
	cmd, _ = start()
	_ = cmd.Process.Kill()
	_ = wait(cmd)
	time.Sleep(time.Second)
	if keys := srv.Keys(ctx, backupBucket, "prod/"); len(keys) != 0 {
		t.Errorf("after the plugin was killed mid-upload the bucket holds %v", keys)
	}
	if r := plugin(t, env, "snapshot", "list", loc, "--s3-path-style", "-o", "json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("catalog after a killed save: exit %d %q", r.code, r.stdout)
	}

	t.Log("The member streaming the snapshot is killed mid-stream: the save names it, no object appears")
	abortAll(t, srv)
	cmd, stderr = start("--endpoint", c.State.Members[2].ClientURL)
	c.Pause(2)
	c.Kill(2)
	err = wait(cmd)
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("save from a killed member: %v, want a non-zero exit", err)
	}
	t.Logf("the plugin said: %s", strings.TrimSpace(stderr.String()))
	if msg := stderr.String(); !strings.HasPrefix(msg, "error: ") || !strings.Contains(msg, "member-3") || !strings.Contains(msg, "nothing was saved") {
		t.Errorf("stderr %q, want one error line naming member-3 and saying nothing was saved", msg)
	}
	if keys := srv.Keys(ctx, backupBucket, "prod/"); len(keys) != 0 {
		t.Errorf("after the member was killed mid-stream the bucket holds %v", keys)
	}
	if ups := srv.Uploads(ctx, backupBucket); len(ups) != 0 {
		t.Errorf("the failed save left its upload unaborted: %v", ups)
	}
	c.Start(2)
	c.WaitHealthy(60 * time.Second)

	t.Log("With the store healthy a save completes")
	abortAll(t, srv)
	if r := plugin(t, env, append(c.ConnectArgs(), "snapshot", "save", loc, "--s3-path-style")...); r.code != 0 {
		t.Fatalf("save exit %d: %s", r.code, r.stderr)
	}
	if keys := srv.Keys(ctx, backupBucket, "prod/"); len(keys) != 2 {
		t.Errorf("after a save the bucket holds %v", keys)
	}
}

// abortAll aborts every unfinished upload in the bucket, as a lifecycle
// rule would.
func abortAll(t *testing.T, srv *s3test.Server) {
	t.Helper()
	srv.AbortUploads(context.Background(), backupBucket)
}

// freeLoopbackURLs are two URLs of distinct free loopback ports, for a
// member's peer and client.
func freeLoopbackURLs(t *testing.T) (peer, client string) {
	p := etcdtest.FreePorts(t, 2)
	return "http://127.0.0.1:" + strconv.Itoa(p[0]), "http://127.0.0.1:" + strconv.Itoa(p[1])
}

// startEtcdOn runs the reference etcd binary on a restored data dir and
// returns a client of it.
func startEtcdOn(t *testing.T, version, dataDir, peer, client string) *clientv3.Client {
	t.Helper()
	bin := filepath.Join(etcdtest.EtcdBinaries(t, version), "etcd")
	cmd := exec.Command(bin, "--name", "m1", "--data-dir", dataDir,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--initial-cluster", "m1="+peer)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return cli
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd on the restored data: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestVerifyDrillOnKubeAPIServerSnapshot runs the restore drill on a
// snapshot of a real kube-apiserver's etcd: Secrets written under an aescbc
// key, then more after a rotation to a new key. With the config that
// dropped the old key, the drill names exactly the Secrets that would not
// read after a restore; the same 3.7 snapshot checked for etcd 3.6 says it
// will not start; a truncated copy is corrupt.
func TestVerifyDrillOnKubeAPIServerSnapshot(t *testing.T) {
	etcd := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithClusterSize(1))
	dir := t.TempDir()
	oldKey, newKey := encryptionKey(t), encryptionKey(t)
	config := func(name string, keys ...string) string {
		return writeIn(t, dir, name, `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aescbc: {keys: [`+strings.Join(keys, ", ")+`]}
  - identity: {}
`)
	}
	before := config("before.yaml", "{name: old, secret: "+oldKey+"}")
	rotated := config("rotated.yaml", "{name: new, secret: "+newKey+"}", "{name: old, secret: "+oldKey+"}")
	after := config("after.yaml", "{name: new, secret: "+newKey+"}")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	t.Log("Secrets db and api are written under the old key")
	s := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State), kubetest.EncryptionProviderConfig(before))
	for _, name := range []string{"db", "api"} {
		if _, err := s.Kubectl(ctx, "create", "secret", "generic", name, "-n", "default", "--from-literal=password=p-"+name); err != nil {
			t.Fatal(err)
		}
	}
	s.Stop()
	t.Log("After a rotation (new key first, old kept to read), Secret web is written under the new key")
	s = kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State), kubetest.EncryptionProviderConfig(rotated))
	if _, err := s.Kubectl(ctx, "create", "secret", "generic", "web", "-n", "default", "--from-literal=password=p-web"); err != nil {
		t.Fatal(err)
	}
	s.Stop()

	file := filepath.Join(dir, "etcd.db")
	if r := plugin(t, nil, append(etcd.ConnectArgs(), "snapshot", "save", file)...); r.code != 0 {
		t.Fatalf("save exit %d: %s", r.code, r.stderr)
	}

	t.Log("With the rotated config (both keys) the drill passes")
	var rep backup.DrillReport
	decodeJSON(t, plugin(t, nil, "snapshot", "verify", file, "--encryption-provider-config", rotated, "-o", "json"), &rep)
	if !rep.OK || rep.Encrypted != 3 || rep.Decrypted != 3 || rep.Keys != rep.Decoded {
		t.Errorf("drill with both keys: %+v", rep)
	}

	t.Log("With the old key removed: db and api are named, web is not")
	r := plugin(t, nil, "snapshot", "verify", file, "--encryption-provider-config", after)
	if r.code == 0 || !strings.HasPrefix(r.stderr, "error: restore drill of "+file+" failed") {
		t.Errorf("drill without the old key: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"cannot read /registry/secrets/default/api:", "cannot read /registry/secrets/default/db:", `aescbc key "old"`, "2 of "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("drill report lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "/registry/secrets/default/web") {
		t.Errorf("the drill names web, which the new key reads:\n%s", r.stdout)
	}

	t.Log("The 3.7 snapshot checked for etcd 3.6 will not start")
	r = plugin(t, nil, "snapshot", "verify", file, "--encryption-provider-config", rotated, "--etcd-version", "3.6")
	if r.code == 0 || !strings.Contains(r.stdout, "etcd 3.6 will not start this data: it needs etcd 3.7 or newer") {
		t.Errorf("drill for etcd 3.6: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	t.Log("A truncated copy is corrupt")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	truncated := writeIn(t, dir, "truncated.db", string(data[:len(data)/3]))
	oneErrorLine(t, plugin(t, nil, "snapshot", "verify", truncated), "is truncated or corrupt")
}
