package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// TestSnapshotSaveRestoreAgainstRealEtcd saves a snapshot of a cluster of
// every etcd release with the plugin, restores it with the plugin, starts
// the restored data with the same release and reads the same keys back.
func TestSnapshotSaveRestoreAgainstRealEtcd(t *testing.T) {
	etcdtest.ForEachVersion(t, func(t *testing.T, version string) {
		c := etcdtest.StartProcesses(t, version)
		conn := c.ConnectArgs()
		cli := c.Client()
		dir := t.TempDir()

		t.Log("Write 100 keys, overwrite one and delete another")
		want := map[string]string{}
		for i := range 100 {
			k, v := fmt.Sprintf("/registry/configmaps/default/cm-%03d", i), fmt.Sprintf("value-%d-%s", i, version)
			mustPut(t, cli, k, v)
			want[k] = v
		}
		mustPut(t, cli, "/registry/configmaps/default/cm-007", "changed")
		want["/registry/configmaps/default/cm-007"] = "changed"
		del, err := cli.Delete(context.Background(), "/registry/configmaps/default/cm-042")
		if err != nil {
			t.Fatal(err)
		}
		delete(want, "/registry/configmaps/default/cm-042")
		rev := del.Header.Revision

		// etcd writes its storage version a few seconds after the
		// cluster version is decided: a snapshot taken before holds
		// none, so wait for it on every member. Until it is written
		// a member's status reports the version it guesses from the
		// data (3.5.0), so wait for this release's minor.
		minor := snapshot.MinorVersion(version) + "."
		if err := poll.Until(context.Background(), "every member to record storage version "+minor+"x", 200*time.Millisecond, time.Minute, func(ctx context.Context) error {
			for _, ep := range cli.Endpoints() {
				st, err := cli.Status(ctx, ep)
				if err != nil {
					return err
				}
				if !strings.HasPrefix(st.StorageVersion, minor) {
					return fmt.Errorf("%s records storage version %q", ep, st.StorageVersion)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		t.Log("snapshot save writes a verified file and says what it holds")
		file := filepath.Join(dir, "etcd.db")
		r := plugin(t, nil, append(conn, "snapshot", "save", file, "-o", "json")...)
		if r.code != 0 {
			t.Fatalf("snapshot save: exit %d\n%s", r.code, r.stderr)
		}
		if r.stderr != "" {
			t.Errorf("snapshot save printed on stderr although it is not a terminal:\n%s", r.stderr)
		}
		var saved snapshot.Result
		if err := json.Unmarshal([]byte(r.stdout), &saved); err != nil {
			t.Fatalf("snapshot save -o json: %v\n%s", err, r.stdout)
		}
		if saved.Revision != rev || saved.TotalKeys != len(want) || saved.EtcdVersion != version || saved.HashCheck != "ok" || saved.Path != file {
			t.Errorf("saved %+v; want revision %d, %d keys, etcd %s", saved, rev, len(want), version)
		}
		if !strings.HasPrefix(saved.StorageVersion, snapshot.MinorVersion(version)+".") {
			t.Errorf("storage version %q, want %s.x", saved.StorageVersion, snapshot.MinorVersion(version))
		}
		assertFiles(t, dir, "etcd.db", "etcd.db.json")

		t.Log("snapshot status reads the same from the file, as a table and as JSON")
		r = plugin(t, nil, "snapshot", "status", file)
		if r.code != 0 || !strings.Contains(r.stdout, "REVISION") || !strings.Contains(r.stdout, fmt.Sprint(rev)) {
			t.Errorf("snapshot status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var st snapshot.FileStatus
		r = plugin(t, nil, "snapshot", "status", file, "-o", "json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Revision != rev || st.TotalKeys != len(want) || st.SHA256 != saved.SHA256 {
			t.Errorf("snapshot status -o json: %v %+v, want revision %d, %d keys, sha256 %s", err, st, rev, len(want), saved.SHA256)
		}
		if len(st.Members) != 3 || st.Members[0].Name == "" || len(st.Members[0].PeerURLs) == 0 {
			t.Errorf("snapshot status names members %+v, want the cluster's three with names and peer URLs", st.Members)
		}

		t.Log("a truncated copy is reported as truncated or corrupt, exit non-zero")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		truncated := filepath.Join(t.TempDir(), "truncated.db")
		writeFile(t, truncated, string(data[:len(data)*2/3]))
		oneErrorLine(t, plugin(t, nil, "snapshot", "status", truncated), "is truncated or corrupt")
		oneErrorLine(t, plugin(t, nil, "snapshot", "restore", truncated, "--data-dir", filepath.Join(t.TempDir(), "d"), "--name", "x", "--initial-advertise-peer-urls", "http://127.0.0.1:2380"), "is truncated or corrupt")

		t.Log("into a directory, zstd-compressed, keeping the newest one")
		backups := filepath.Join(dir, "backups") + "/"
		for range 2 {
			if r := plugin(t, nil, append(conn, "snapshot", "save", backups, "--compress", "zstd", "--retain", "1")...); r.code != 0 {
				t.Fatalf("snapshot save into a directory: exit %d\n%s", r.code, r.stderr)
			}
			// Names have whole seconds: the next save must be in the next one.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		}
		entries, _ := os.ReadDir(backups)
		if len(entries) != 2 {
			t.Fatalf("the backup directory holds %d files, want one snapshot and its metadata", len(entries))
		}
		compressed := filepath.Join(backups, entries[0].Name())
		if !strings.HasPrefix(entries[0].Name(), "etcd-snapshot-") || !strings.HasSuffix(compressed, fmt.Sprintf("-rev%d.db.zst", rev)) {
			t.Errorf("snapshot named %s, want etcd-snapshot-<time>-rev%d.db.zst", entries[0].Name(), rev)
		}
		if r := plugin(t, nil, "snapshot", "status", compressed, "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"compression": "zstd"`) {
			t.Errorf("status of the zstd file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}

		t.Log("restore the compressed snapshot with the plugin into a new data dir")
		port, err := sandbox.FreePortPair([]string{"127.0.0.1"}, 30000+rand.IntN(20000))
		if err != nil {
			t.Fatal(err)
		}
		clientURL, peerURL := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port+1)
		dataDir := filepath.Join(dir, "restored")
		r = plugin(t, nil, "snapshot", "restore", compressed, "--data-dir", dataDir, "--name", "restored", "--initial-advertise-peer-urls", peerURL)
		if r.code != 0 {
			t.Fatalf("snapshot restore: exit %d\n%s", r.code, r.stderr)
		}
		bumped := rev + snapshot.DefaultBumpRevision
		for _, w := range []string{
			fmt.Sprintf("Revision bumped by 1000000000 to %d and marked compacted", bumped),
			fmt.Sprintf("needs etcd %s or newer", snapshot.MinorVersion(version)),
			"Next steps:",
			"etcd --name restored --data-dir " + dataDir,
		} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("restore output lacks %q:\n%s", w, r.stdout)
			}
		}

		t.Log("a second restore into the same, now non-empty, data dir is refused")
		oneErrorLine(t, plugin(t, nil, "snapshot", "restore", file, "--data-dir", dataDir, "--name", "restored", "--initial-advertise-peer-urls", peerURL), "is not empty")

		t.Logf("start the restored data with etcd %s", version)
		etcd := exec.Command(filepath.Join(etcdtest.EtcdBinaries(t, version), "etcd"),
			"--name", "restored", "--data-dir", dataDir,
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "restored="+peerURL)
		logFile, err := os.Create(filepath.Join(dir, "restored.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close()
		etcd.Stdout, etcd.Stderr = logFile, logFile
		if err := etcd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = etcd.Process.Kill()
			_ = etcd.Wait()
		})
		rcli, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer rcli.Close()
		got := readAll(t, rcli, filepath.Join(dir, "restored.log"))

		t.Log("the restored member serves the same keys and values")
		if len(got) != len(want) {
			t.Errorf("restored member has %d keys, want %d", len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("restored %s = %q, want %q", k, got[k], v)
			}
		}

		t.Log("a new write lands above the bump; the old revisions are compacted")
		resp, err := rcli.Put(context.Background(), "/registry/after-restore", "x")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Revision <= bumped {
			t.Errorf("a write after restore got revision %d, want above %d", resp.Header.Revision, bumped)
		}
		if _, err := rcli.Get(context.Background(), "/registry/configmaps/default/cm-001", clientv3.WithRev(rev)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("a read at the snapshot's revision %d = %v, want %v", rev, err, rpctypes.ErrCompacted)
		}
	})
}

func mustPut(t *testing.T, cli *clientv3.Client, k, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, k, v); err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
}

// putLargeSecrets writes n keys /registry/secrets/default/s-000, s-001, ...
// of 100 kB each, so that a snapshot of them takes a while to stream.
func putLargeSecrets(t *testing.T, cli *clientv3.Client, n int) {
	t.Helper()
	value := strings.Repeat("x", 100_000)
	for i := range n {
		mustPut(t, cli, fmt.Sprintf("/registry/secrets/default/s-%03d", i), value)
	}
}

// readAll waits for the member to serve and returns every key under
// /registry/configmaps/.
func readAll(t *testing.T, cli *clientv3.Client, logFile string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := poll.Until(context.Background(), "the restored member to serve", 200*time.Millisecond, 60*time.Second, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "/registry/configmaps/", clientv3.WithPrefix())
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			out[string(kv.Key)] = string(kv.Value)
		}
		return nil
	})
	if err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("%v\n%s", err, log)
	}
	return out
}

func assertFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := etcdtest.DirNames(t, dir)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}

// TestSnapshotSaveMemberKilledMidStream kills the member a save streams
// from while the file is being written: the plugin says so, exits
// non-zero, leaves no file, and the rest of the cluster keeps every key.
func TestSnapshotSaveMemberKilledMidStream(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	cli := c.Client()

	t.Log("Write about 40 MB, so the stream takes a while")
	putLargeSecrets(t, cli, 400)
	before, err := cli.Get(context.Background(), "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "etcd.db")
	ep := c.State.Members[2].ClientURL
	cmd, stderr := startPluginCmd(t, nil, append(c.ConnectArgs(), "snapshot", "save", file, "--endpoint", ep)...)

	t.Log("Stop member-3 the moment file.part appears, then kill it")
	if err := poll.Until(context.Background(), file+".part to appear", time.Millisecond, 60*time.Second, func(context.Context) error {
		_, err := os.Stat(file + ".part")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.Pause(2)
	c.Kill(2)

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the plugin did not give up within 60s of the member being killed")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("snapshot save from a killed member: %v, want a non-zero exit", err)
	}
	t.Logf("the plugin said: %s", strings.TrimSpace(stderr.String()))
	if msg := stderr.String(); !strings.HasPrefix(msg, "error: ") || !strings.Contains(msg, "member-3") || !strings.Contains(msg, "nothing was saved") {
		t.Errorf("stderr %q, want one error line naming member-3 and saying nothing was saved", msg)
	}
	assertFiles(t, dir)

	t.Log("The surviving members stay healthy and keep every key")
	after, err := cli.Get(context.Background(), "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("reading after the fault: %v", err)
	}
	if after.Count != before.Count {
		t.Errorf("after the fault: %d keys, want %d", after.Count, before.Count)
	}
	c.Start(2)
	c.WaitHealthy(60 * time.Second)
}
