package snapshot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// putKeys writes n keys of size bytes each and returns the last revision.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, n, size int) int64 {
	t.Helper()
	var rev int64
	value := strings.Repeat("v", size)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cli.Put(ctx, fmt.Sprintf("%s%04d", prefix, i), value)
		cancel()
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		rev = resp.Header.Revision
	}
	return rev
}

func TestSaveStatusAndCorruption(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cli := c.Client()
	rev := putKeys(t, cli, "/registry/test/", 50, 100)
	// A deleted key is not counted.
	if _, err := cli.Delete(context.Background(), "/registry/test/0049"); err != nil {
		t.Fatal(err)
	}
	rev++
	dir := t.TempDir()

	for _, tc := range []struct{ compression, verify string }{
		{snapshot.None, snapshot.VerifyFull},
		{snapshot.None, snapshot.VerifyQuick},
		{snapshot.Gzip, snapshot.VerifyQuick},
		{snapshot.Zstd, snapshot.VerifyFull},
	} {
		compression := tc.compression
		t.Run("compression="+compression+",verify="+tc.verify, func(t *testing.T) {
			path := filepath.Join(dir, "etcd.db"+snapshot.Extension(compression))
			os.Remove(path)
			os.Remove(path + ".json")
			t.Log("Save picks a healthy follower and reports what it saved")
			s := &snapshot.Saver{Config: c.Config(), Client: cli, Path: path, Compression: compression, Verify: tc.verify}
			res, err := s.Save(context.Background())
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			if res.Revision != rev || res.TotalKeys != 49 || res.HashCheck != snapshot.HashOK || res.Compression != compression || res.Verified != tc.verify {
				t.Errorf("saved revision %d, %d keys, hash check %q, compression %q, verified %q; want %d, 49, ok, %q, %q", res.Revision, res.TotalKeys, res.HashCheck, res.Compression, res.Verified, rev, compression, tc.verify)
			}
			if quick := tc.verify == snapshot.VerifyQuick; quick != (res.Hash == 0) {
				t.Errorf("verify %s reported etcdutl's hash %x: the quick check does not compute it, the full one must", tc.verify, res.Hash)
			}
			if res.EtcdVersion == "" || res.StorageVersion == "" || res.Member == "" {
				t.Errorf("result lacks the etcd version, storage version or member: %+v", res)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != res.FileSize {
				t.Errorf("file %s: %v, size %v; result says %d", path, err, fi, res.FileSize)
			}
			if _, err := os.Stat(res.MetadataFile); err != nil || res.MetadataFile != path+".json" {
				t.Errorf("metadata file %q: %v", res.MetadataFile, err)
			}
			assertOnly(t, dir, path, path+".json")

			t.Log("Status of the file agrees with the save")
			st, err := snapshot.Status(path, "")
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if st.Revision != rev || st.TotalKeys != 49 || st.SHA256 != res.SHA256 || (res.Hash != 0 && st.Hash != res.Hash) || st.Compression != compression || st.HashCheck != snapshot.HashOK {
				t.Errorf("Status = %+v, want what Save reported %+v", st, res.FileStatus)
			}

			if compression == snapshot.None && tc.verify == snapshot.VerifyFull {
				t.Log("the status is etcdutl's, number for number")
				ds, err := etcdutl.NewV3(zap.NewNop()).Status(path)
				if err != nil {
					t.Fatal(err)
				}
				if ds.Hash != res.Hash || ds.Revision != res.Revision || ds.TotalKey != res.TotalKeys || ds.TotalSize != res.TotalSize || ds.Version != res.StorageVersion {
					t.Errorf("etcdutl snapshot status says %+v, Save reported %+v", ds, res.FileStatus)
				}
				if sum := sha256.Sum256(etcdtest.ReadFile(t, path)); hex.EncodeToString(sum[:]) != res.SHA256 {
					t.Errorf("sha256 of the file %x, Save reported %s", sum, res.SHA256)
				}
			}

			t.Log("A truncated copy is reported as truncated or corrupt")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, cut := range []int{len(data) / 2, len(data) - 1, len(data) - 33} {
				bad := filepath.Join(t.TempDir(), "truncated")
				if err := os.WriteFile(bad, data[:cut], 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := snapshot.Status(bad, "")
				var ce *snapshot.CorruptError
				if !errors.As(err, &ce) {
					t.Errorf("Status of a copy cut to %d of %d bytes = %v, want a CorruptError", cut, len(data), err)
				}
			}

			t.Log("Cut by exactly the trailer, it is a database that cannot be verified")
			noTrailer := filepath.Join(t.TempDir(), "no-trailer")
			if err := os.WriteFile(noTrailer, data[:len(data)-32], 0o600); err != nil {
				t.Fatal(err)
			}
			if st, err := snapshot.Status(noTrailer, ""); compression == snapshot.None && (err != nil || st.HashCheck != snapshot.HashNoTrailer) {
				t.Errorf("Status of a file without its trailer = %+v, %v; want hash check %q", st, err, snapshot.HashNoTrailer)
			} else if compression != snapshot.None && err == nil {
				t.Errorf("Status of a compressed file cut by 32 bytes = %+v, want an error", st)
			}

			t.Log("A flipped byte is caught")
			flipped := append([]byte{}, data...)
			flipped[len(flipped)/3] ^= 0xff
			bad := filepath.Join(t.TempDir(), "flipped")
			if err := os.WriteFile(bad, flipped, 0o600); err != nil {
				t.Fatal(err)
			}
			var ce *snapshot.CorruptError
			if _, err := snapshot.Status(bad, ""); !errors.As(err, &ce) {
				t.Errorf("Status of a file with a flipped byte = %v, want a CorruptError", err)
			}
			os.Remove(path)
			os.Remove(path + ".json")
		})
	}

	t.Log("An existing file is not replaced without Overwrite")
	path := filepath.Join(dir, "exists.db")
	if err := os.WriteFile(path, []byte("old backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := (&snapshot.Saver{Config: c.Config(), Client: cli, Path: path}).Save(context.Background())
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Save over an existing file = %v, want a refusal", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "old backup" {
		t.Errorf("the existing file changed")
	}
}

func TestSaveIntoDirectoryWithRetention(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	dir := filepath.Join(t.TempDir(), "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "keep-me.db")
	if err := os.WriteFile(foreign, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var saved []string
	for i := range 4 {
		rev := putKeys(t, cli, fmt.Sprintf("/k%d/", i), 3, 10)
		taken := start.Add(time.Duration(i) * time.Minute)
		s := &snapshot.Saver{Config: c.Config(), Client: cli, Path: dir, Dir: true, Retain: 2, Compression: snapshot.Gzip, Now: func() time.Time { return taken }}
		res, err := s.Save(context.Background())
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
		want := filepath.Join(dir, fmt.Sprintf("etcd-snapshot-%s-rev%d.db.gz", taken.Format("20060102T150405Z"), rev))
		if res.Path != want {
			t.Errorf("saved as %s, want %s", res.Path, want)
		}
		saved = append(saved, res.Path)
		if i >= 2 && (len(res.Pruned) != 1 || res.Pruned[0] != saved[i-2]) {
			t.Errorf("save %d pruned %v, want [%s]", i, res.Pruned, saved[i-2])
		}
	}
	assertOnly(t, dir, saved[2], saved[2]+".json", saved[3], saved[3]+".json", foreign)
}

func TestInterruptedSaveLeavesNoFile(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cli := c.Client()
	// About 8 MB, so the stream takes many messages.
	putKeys(t, cli, "/big/", 400, 20000)

	t.Run("context cancelled", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &snapshot.Saver{Config: c.Config(), Client: cli, Path: filepath.Join(dir, "etcd.db"),
			Progress: func(string, int64) snapshot.Meter { return &afterBytes{limit: 1 << 20, then: cancel} }}
		_, err := s.Save(ctx)
		if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "nothing was saved") {
			t.Errorf("Save with a cancelled context = %v, want an interruption that says nothing was saved", err)
		}
		assertOnly(t, dir)
	})

}

// TestMemberKilledOrHungMidSave streams from a real etcd process and kills
// it, or pauses it (SIGSTOP), while the snapshot is on its way.
func TestMemberKilledOrHungMidSave(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	cli := c.Client()
	putKeys(t, cli, "/big/", 400, 20000)
	ep := c.State.Members[2].ClientURL

	for _, fault := range []string{"killed", "paused"} {
		t.Run(fault, func(t *testing.T) {
			dir := t.TempDir()
			m := &afterBytes{limit: 1 << 20, then: func() {
				if fault == "killed" {
					c.Kill(2)
				} else {
					c.Pause(2)
				}
			}}
			s := &snapshot.Saver{Config: c.Config(), Client: cli, Endpoint: ep, Path: filepath.Join(dir, "etcd.db"),
				Progress: func(string, int64) snapshot.Meter { return m }}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			_, err := s.Save(ctx)
			t.Logf("Save with member-3 %s mid-stream: %v (after %s)", fault, err, time.Since(start).Round(time.Millisecond))
			if err == nil || !strings.Contains(err.Error(), "member-3") || !strings.Contains(err.Error(), "nothing was saved") {
				t.Errorf("Save from a member %s mid-stream = %v, want an error naming member-3 that says nothing was saved", fault, err)
			}
			if took := time.Since(start); took > time.Minute {
				t.Errorf("Save took %s to notice", took)
			}
			if m.done == nil || *m.done {
				t.Errorf("the progress meter was not told the stream failed")
			}
			assertOnly(t, dir)
			c.Kill(2)
			c.Start(2)
			c.WaitHealthy(60 * time.Second)
		})
	}
}

// afterBytes is a Meter that calls then once limit bytes have passed, and
// can slow the stream down.
type afterBytes struct {
	limit, n int
	slow     time.Duration
	then     func()
	fired    bool
	done     *bool
}

func (a *afterBytes) Write(p []byte) (int, error) {
	a.n += len(p)
	if a.n >= a.limit && !a.fired {
		a.fired = true
		a.then()
	}
	if a.fired && a.slow > 0 {
		time.Sleep(a.slow)
	}
	return len(p), nil
}

func (a *afterBytes) Done(complete bool) { a.done = &complete }

// assertOnly checks that dir holds exactly the given files.
func assertOnly(t *testing.T, dir string, want ...string) {
	t.Helper()
	var got []string
	for _, name := range etcdtest.DirNames(t, dir) {
		got = append(got, filepath.Join(dir, name))
	}
	if len(got) != len(want) {
		t.Errorf("%s holds %v, want %v", dir, got, want)
		return
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("%s holds %v, want %v", dir, got, want)
		}
	}
}

// TestStatusNamesTheMembers: the status of a snapshot of a three-member
// cluster names its members, by name, with their peer URLs, from the
// members bucket: `snapshot restore --manifest` turns them into the steps
// that bring the other nodes back. The full status (Status, the restore
// preflight's) and the quick one (save's check) read them alike.
func TestStatusNamesTheMembers(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	path := filepath.Join(t.TempDir(), "etcd.db")
	saved, err := (&snapshot.Saver{Config: c.Config(), Client: c.Client(), Path: path}).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.Status(path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]snapshot.Member{"status": st.Members, "save": saved.Members} {
		var names []string
		for i, m := range got {
			names = append(names, m.Name)
			if want := c.State.Members[i].PeerURL; len(m.PeerURLs) != 1 || m.PeerURLs[0] != want || m.ID == "" {
				t.Errorf("%s: member %s: ID %q, peer URLs %v, want %s", name, m.Name, m.ID, m.PeerURLs, want)
			}
		}
		if strings.Join(names, ",") != "member-1,member-2,member-3" {
			t.Errorf("%s: members %v, want member-1,member-2,member-3 by name", name, names)
		}
	}
}
