package doctor_test

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// stoppedMember is a data directory left by a real etcd (embedded, one
// member) that wrote keys and stopped, with a Secret among them.
type stoppedMember struct {
	dataDir   string
	name      string
	raftIndex uint64
}

const secretPlaintext = "correct-horse-battery-staple"

func makeStoppedMember(t *testing.T) stoppedMember {
	t.Helper()
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	ctx := context.Background()
	for i := range 50 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm-%d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	// A Secret as a client would see it: plaintext in stringData and its
	// base64 in data. The bundle must hold neither.
	secret := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db-creds","namespace":"default"},"data":{"password":%q},"stringData":{"password":%q}}`,
		base64.StdEncoding.EncodeToString([]byte(secretPlaintext)), secretPlaintext)
	if _, err := cli.Put(ctx, "/registry/secrets/default/db-creds", secret); err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx, c.Config().Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	m := stoppedMember{dataDir: c.State.Members[0].DataDir, name: c.State.Members[0].Name, raftIndex: st.RaftIndex}
	c.Stop(0)
	return m
}

// copyOf copies the member's data dir, so each case damages its own.
func copyOf(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "etcd")
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeManifest writes a kubeadm etcd manifest for dataDir with image and
// extra flags, in its own manifests directory.
func writeManifest(t *testing.T, name, dataDir, image string, flags map[string]string) string {
	t.Helper()
	pod := staticpod.NewEtcdPod(staticpod.EtcdPodSpec{Name: name, AdvertiseAddress: "10.0.0.1", Image: image, DataDir: dataDir})
	data, err := staticpod.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "manifests", "etcd.yaml")
	m, err := staticpod.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range flags {
		m.SetFlag(k, v)
	}
	if data, err = m.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := staticpod.WriteFile(path, data); err != nil {
		t.Fatal(err)
	}
	return path
}

var bothGates = map[string]string{"feature-gates": "InitialCorruptCheck=true,CompactHashCheck=true"}

func offlineJSON(t *testing.T, manifest string, args ...string) (*doctor.Report, int) {
	t.Helper()
	out, errOut, code, _ := cmdtest.Run(t, append([]string{"doctor", "--offline", "-o", "json", "--etcd-manifest", manifest}, args...)...)
	r := &doctor.Report{}
	if err := json.Unmarshal([]byte(out), r); err != nil {
		t.Fatalf("doctor --offline -o json: %v\n%s%s", err, out, errOut)
	}
	return r, code
}

// offlineWithGates runs doctor --offline on the data dir dir of member
// name through a manifest of image with both corruption checks on, logs
// the findings and returns the report and the exit code.
func offlineWithGates(t *testing.T, name, dir, image string) (*doctor.Report, int) {
	t.Helper()
	r, code := offlineJSON(t, writeManifest(t, name, dir, image, bothGates))
	t.Logf("findings:\n%s", findingsText(r))
	return r, code
}

func findingsText(r *doctor.Report) string {
	var sb strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&sb, "  %s %s: %s -> %s\n", f.Severity, f.Check, f.Message, f.Fix)
	}
	return sb.String()
}

func TestDoctorOffline(t *testing.T) {
	m := makeStoppedMember(t)

	t.Run("healthy stopped member", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", bothGates)
		r, code := offlineJSON(t, manifest)
		t.Logf("findings:\n%s", findingsText(r))
		if code != 0 || r.Errors != 0 || r.Warnings != 0 {
			t.Fatalf("healthy stopped member: exit %d, %d errors, %d warnings", code, r.Errors, r.Warnings)
		}
		for _, check := range []string{"wal", "raft", "snapshot", "db", "membership", "quota", "storage-version", "corruption-checks", "files"} {
			if r.Find(doctor.OK, check) == nil {
				t.Errorf("no OK finding for %s", check)
			}
		}
		raft := r.Find(doctor.OK, "raft")
		if raft == nil || !strings.Contains(raft.Message, fmt.Sprintf("committed index %d", m.raftIndex)) {
			t.Errorf("raft finding does not give the committed index %d etcd reported before it stopped: %+v", m.raftIndex, raft)
		}
		if f := r.Find(doctor.OK, "membership"); f == nil || !strings.Contains(f.Message, m.name) {
			t.Errorf("membership finding does not name %s: %+v", m.name, f)
		}
		if f := r.Find(doctor.OK, "storage-version"); f == nil || !strings.Contains(f.Message, "storage version 3.7") {
			t.Errorf("storage-version: %+v", f)
		}
		if r.Findings[0].Member != m.name {
			t.Errorf("findings name member %q, want %s", r.Findings[0].Member, m.name)
		}

		t.Log("the data dir is read, never written: byte for byte the same after the doctor")
		if diff := compareDirs(t, m.dataDir, dir); diff != "" {
			t.Errorf("the doctor changed the data: %s", diff)
		}

		t.Log("the data dir is taken from the manifest by default; a table by default")
		out, _, code, _ := cmdtest.Run(t, "doctor", "--offline", "--etcd-manifest", manifest)
		if code != 0 || !strings.Contains(out, "NEXT STEP") || !strings.Contains(out, dir) {
			t.Errorf("table: exit %d\n%s", code, out)
		}
	})

	t.Run("manifest parked by an interrupted upgrade", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", bothGates)
		// What a restart, upgrade or config set killed while etcd was
		// down for it leaves: the manifest moved aside, none in place.
		parked := staticpod.ParkedPath(manifest)
		if err := os.Rename(manifest, parked); err != nil {
			t.Fatal(err)
		}
		r, code := offlineJSON(t, manifest)
		t.Logf("findings:\n%s", findingsText(r))
		f := r.Find(doctor.Error, "manifest")
		if code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, manifest+" is missing, and "+parked+" holds it") || f.Fix != "mv "+parked+" "+manifest+" (the kubelet starts etcd from it), or run that command again: it puts the manifest back first" {
			t.Fatalf("parked manifest: exit %d, want an error naming it and how to put it back", code)
		}
		if r.Find(doctor.OK, "quota") == nil || r.Find(doctor.OK, "storage-version") == nil {
			t.Errorf("the parked manifest is not read for the checks against the data")
		}
	})

	t.Run("corruption checks off", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", nil)
		r, code := offlineJSON(t, manifest)
		f := r.Find(doctor.Warning, "corruption-checks")
		if code != 0 || f == nil || !strings.Contains(f.Message, "CompactHashCheck") || strings.Contains(f.Message, "InitialCorruptCheck and") || !strings.Contains(f.Fix, "--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true") {
			t.Errorf("kubeadm's manifest has CompactHashCheck off: exit %d\n%s", code, findingsText(r))
		}
	})

	t.Run("torn WAL tail", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		file, offset := tearWAL(t, dir)
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", bothGates)
		r, code := offlineJSON(t, manifest)
		t.Logf("findings:\n%s", findingsText(r))
		f := r.Find(doctor.Warning, "wal")
		if code != 0 || f == nil || !strings.Contains(f.Message, filepath.Base(file)) || !strings.Contains(f.Message, fmt.Sprintf("offset %d", offset)) || !strings.Contains(f.Message, "etcd repairs it at start") {
			t.Fatalf("torn tail: exit %d, want a warning naming %s at offset %d", code, filepath.Base(file), offset)
		}
		if raft := r.Find(doctor.OK, "raft"); raft == nil || !strings.Contains(raft.Message, fmt.Sprintf("committed index %d", m.raftIndex)) {
			t.Errorf("the entries before the torn record are all read: %+v", raft)
		}

		t.Log("what the doctor said etcd does: a real etcd starts on it, repairs it and keeps a .broken copy")
		e := startOn(t, dir, m.name)
		e.Close()
		if _, err := os.Stat(file + ".broken"); err != nil {
			t.Errorf("etcd kept no .broken copy: %v", err)
		}
		r, code = offlineJSON(t, manifest)
		if code != 0 || r.Find(doctor.OK, "wal") == nil {
			t.Errorf("after etcd's repair the WAL ends cleanly: exit %d\n%s", code, findingsText(r))
		}
	})

	t.Run("corrupt WAL record", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		file := corruptWAL(t, dir)
		r, code := offlineWithGates(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0")
		f := r.Find(doctor.Error, "wal")
		if code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, filepath.Base(file)) || !strings.Contains(f.Message, "cannot be repaired") || !strings.Contains(f.Fix, "kubectl etcd join") {
			t.Errorf("corrupt record: exit %d, want an error naming %s", code, filepath.Base(file))
		}
	})

	t.Run("truncated db", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		if err := os.Truncate(datadir.DBPath(dir), 16<<10); err != nil {
			t.Fatal(err)
		}
		r, code := offlineWithGates(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0")
		f := r.Find(doctor.Error, "db")
		if code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, datadir.DBPath(dir)) || f.Fix == "" {
			t.Errorf("truncated db: exit %d, want a db error", code)
		}
		if r.Find(doctor.OK, "wal") == nil {
			t.Errorf("the WAL is still fine and says so")
		}
		if r.Find(doctor.Error, "membership") != nil || r.Find(doctor.OK, "storage-version") != nil {
			t.Errorf("nothing is concluded from a damaged database's buckets")
		}
	})

	t.Run("data from a newer etcd than the image", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		r, code := offlineWithGates(t, m.name, dir, "registry.k8s.io/etcd:3.6.16-0")
		f := r.Find(doctor.Error, "storage-version")
		if code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, "etcd 3.6") || !strings.Contains(f.Message, "3.7.0") ||
			!strings.Contains(f.Message, `version "3.7.0" is not supported`) || !strings.Contains(f.Fix, "--target-version 3.6") {
			t.Errorf("3.7 data, 3.6 image: exit %d, want a storage-version error", code)
		}
	})

	t.Run("zombie member", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		zombie := addZombie(t, dir)
		r, code := offlineWithGates(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0")
		f := r.Find(doctor.Error, "membership")
		if code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, "zombie member "+zombie.ID.String()+" (ghost)") || !strings.Contains(f.Message, m.name) {
			t.Errorf("zombie: exit %d, want a membership error naming %s", code, zombie.ID)
		}
	})

	t.Run("quota", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		size := fileSize(t, datadir.DBPath(dir))
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", map[string]string{
			"feature-gates": bothGates["feature-gates"], "quota-backend-bytes": fmt.Sprint(size - 1)})
		r, code := offlineJSON(t, manifest)
		if f := r.Find(doctor.Error, "quota"); code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, "NOSPACE") || !strings.Contains(f.Fix, "etcdutl defrag --data-dir "+dir) {
			t.Errorf("db over the manifest's quota: exit %d\n%s", code, findingsText(r))
		}
	})

	t.Run("modes", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", bothGates)
		r, _ := offlineJSON(t, manifest)
		if f := r.Find(doctor.Warning, "files"); f == nil || !strings.Contains(f.Message, "mode 0755") || !strings.Contains(f.Fix, "chmod 0700 "+dir) {
			t.Errorf("a 0755 data dir:\n%s", findingsText(r))
		}
	})

	t.Run("not a data dir", func(t *testing.T) {
		manifest := writeManifest(t, m.name, t.TempDir(), "registry.k8s.io/etcd:3.7.0-0", bothGates)
		r, code := offlineJSON(t, manifest)
		if f := r.Find(doctor.Error, "data-dir"); code != cmdutil.ExitUnhealthy || f == nil || !strings.Contains(f.Message, "holds no WAL") {
			t.Errorf("an empty dir: exit %d\n%s", code, findingsText(r))
		}
		_, errOut, code, _ := cmdtest.Run(t, "doctor", "--data-dir", "/tmp")
		if code != 1 || !strings.Contains(errOut, "") {
			t.Errorf("--data-dir without --offline: exit %d", code)
		}
	})

	t.Run("bundle", func(t *testing.T) {
		dir := copyOf(t, m.dataDir)
		manifest := writeManifest(t, m.name, dir, "registry.k8s.io/etcd:3.7.0-0", bothGates)
		path := filepath.Join(t.TempDir(), "support.tar.gz")
		// No cluster answers: the online report says why, the rest is there.
		_, errOut, code, _ := cmdtest.Run(t, "doctor", "--offline", "--bundle", path, "--etcd-manifest", manifest, "--endpoints", "https://127.0.0.1:1", "--dial-timeout", "1s", "--command-timeout", "2s")
		if code != 0 || !strings.Contains(errOut, "support bundle written to "+path) {
			t.Fatalf("bundle: exit %d\n%s", code, errOut)
		}
		files := readBundle(t, path)
		var names []string
		for n := range files {
			names = append(names, n)
		}
		t.Logf("bundle files: %v", names)
		for _, want := range []string{"offline/report.json", "offline/report.txt", "offline/datadir.json", "offline/members.json", "online/report.json", "manifests/etcd.yaml", "keys/keys.json", "keys/keys.txt"} {
			if _, ok := files["support/"+want]; !ok {
				t.Errorf("bundle has no %s", want)
			}
		}
		keys := files["support/keys/keys.txt"]
		if !strings.Contains(keys, "/registry/secrets/default/db-creds") || !strings.Contains(keys, "/registry/configmaps/default/cm-49") {
			t.Errorf("the key listing misses keys:\n%s", keys)
		}
		var rs []struct {
			Resource string `json:"resource"`
			Count    int    `json:"count"`
		}
		if err := json.Unmarshal([]byte(files["support/keys/keys.json"]), &rs); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, r := range rs {
			counts[r.Resource] = r.Count
		}
		if counts["secrets"] != 1 || counts["configmaps"] != 50 {
			t.Errorf("keys per resource: %v", counts)
		}
		t.Log("no value of any key: neither the Secret's plaintext nor its base64, nor a configmap's value")
		b64 := base64.StdEncoding.EncodeToString([]byte(secretPlaintext))
		for name, content := range files {
			for _, secret := range []string{secretPlaintext, b64, strings.Repeat("v", 100)} {
				if strings.Contains(content, secret) {
					t.Errorf("%s contains %q", name, secret)
				}
			}
		}
	})
}

// tearWAL writes a torn record after the last whole one of the last WAL
// file: a length field and the first bytes of its data, the rest of the
// sector never written (zeros), as a crash mid-write leaves it.
func tearWAL(t *testing.T, dir string) (string, int64) {
	t.Helper()
	ins := datadir.Inspect(dir)
	w := ins.WAL
	if w.Tail != datadir.TailClean {
		t.Fatalf("WAL not clean before tearing: %+v", w)
	}
	file := filepath.Join(w.Dir, w.Files[len(w.Files)-1])
	end := lastValidOffset(t, file)
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frame [8]byte
	binary.LittleEndian.PutUint64(frame[:], 1000)
	if _, err := f.WriteAt(frame[:], end); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("\x08\x02\x10\xff\xff\xff\x0f\x1a\x20partial"), end+8); err != nil {
		t.Fatal(err)
	}
	return file, end
}

// records decodes a WAL file with etcd's decoder and returns where each
// record starts, and where the last one ends.
func records(t *testing.T, file string) (starts []int64, end int64) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := wal.NewDecoder(fileutil.NewFileReader(f))
	rec := &walpb.Record{}
	for {
		off := dec.LastOffset()
		if err := dec.Decode(rec); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("decoding %s: %v", file, err)
			}
			return starts, off
		}
		if rec.GetType() == wal.CrcType {
			dec.UpdateCRC(rec.GetCrc())
		}
		starts = append(starts, off)
	}
}

func lastValidOffset(t *testing.T, file string) int64 {
	_, end := records(t, file)
	return end
}

// corruptWAL flips a byte in the middle of an early record of the first
// WAL file, so its checksum no longer matches.
func corruptWAL(t *testing.T, dir string) string {
	t.Helper()
	ins := datadir.Inspect(dir)
	file := filepath.Join(ins.WAL.Dir, ins.WAL.Files[0])
	starts, _ := records(t, file)
	if len(starts) < 12 {
		t.Fatalf("%s has %d records", file, len(starts))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, e := starts[10], starts[11]
	data[s+8+(e-s-8)/2] ^= 0xff
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// addZombie saves a member that raft never had into the members bucket,
// with etcd's own schema code, as the upgrade bugs that made zombies did.
func addZombie(t *testing.T, dir string) *membership.Member {
	t.Helper()
	lg := zap.NewNop()
	be := backend.NewDefaultBackend(lg, datadir.DBPath(dir))
	z := &membership.Member{ID: types.ID(0xdead0001), RaftAttributes: membership.RaftAttributes{PeerURLs: []string{"https://10.0.0.9:2380"}}, Attributes: membership.Attributes{Name: "ghost"}}
	schema.NewMembershipBackend(lg, be).MustSaveMemberToBackend(z)
	be.ForceCommit()
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	return z
}

// startOn starts a real (embedded) etcd on a data dir, on fresh loopback
// ports, and waits until it serves.
func startOn(t *testing.T, dir, name string) *embed.Etcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir, cfg.Name = dir, name
	cfg.LogLevel = "error"
	cu, _ := url.Parse("http://127.0.0.1:0")
	pu, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = name + "=" + pu.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("etcd on %s: %v", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		t.Fatal("etcd did not become ready")
	}
	return e
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// compareDirs says how two directory trees differ ("" when byte for byte
// the same).
func compareDirs(t *testing.T, a, b string) string {
	t.Helper()
	read := func(root string) map[string]string {
		files := map[string]string{}
		_ = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[rel] = string(data)
			return nil
		})
		return files
	}
	fa, fb := read(a), read(b)
	for k, v := range fa {
		if w, ok := fb[k]; !ok {
			return k + " missing"
		} else if v != w {
			return k + " differs"
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			return k + " added"
		}
	}
	return ""
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for name, data := range etcdtest.TarFiles(t, gz) {
		files[name] = string(data)
	}
	return files
}
