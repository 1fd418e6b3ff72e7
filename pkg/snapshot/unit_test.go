package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// withTrailer returns a page-sized database stand-in followed by its sha256,
// as etcd streams it.
func withTrailer(pages int) []byte {
	data := make([]byte, pages*4096)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	sum := sha256.Sum256(data)
	return append(data, sum[:]...)
}

func TestTrailerHashAcceptsAnyChunkingAndCatchesDamage(t *testing.T) {
	stream := withTrailer(3)
	for _, chunk := range []int{1, 7, 31, 32, 33, 4096, len(stream)} {
		th := newTrailerHash()
		for off := 0; off < len(stream); off += chunk {
			th.Write(stream[off:min(off+chunk, len(stream))])
		}
		if err := th.check(); err != nil {
			t.Errorf("chunks of %d: check() = %v, want nil", chunk, err)
		}
	}

	flipped := bytes.Clone(stream)
	flipped[100] ^= 0x01
	th := newTrailerHash()
	th.Write(flipped)
	if err := th.check(); err == nil || errors.Is(err, errNoTrailer) || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a flipped byte: check() = %v, want a mismatch", err)
	}

	for _, cut := range []int{1, 32, 4096} {
		th := newTrailerHash()
		th.Write(stream[:len(stream)-cut])
		if err := th.check(); err == nil {
			t.Errorf("stream cut by %d bytes: check() = nil, want an error", cut)
		}
	}

	th = newTrailerHash()
	th.Write(stream[:4096])
	if err := th.check(); !errors.Is(err, errNoTrailer) {
		t.Errorf("a bare database: check() = %v, want errNoTrailer", err)
	}
}

func TestHasTrailer(t *testing.T) {
	tests := []struct {
		n    int64
		want bool
	}{{0, false}, {32, true}, {4096, false}, {4096 + 32, true}, {4096 + 31, false}, {8192 + 32, true}}
	for _, tt := range tests {
		if got := hasTrailer(tt.n); got != tt.want {
			t.Errorf("hasTrailer(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		head []byte
		want string
	}{
		{[]byte{0x1f, 0x8b, 8, 0}, Gzip},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, Zstd},
		{[]byte{0, 0, 0, 0}, None},
		{nil, None},
	}
	for _, tt := range tests {
		if got := sniff(tt.head); got != tt.want {
			t.Errorf("sniff(%x) = %q, want %q", tt.head, got, tt.want)
		}
	}
}

func TestFileNameRoundTrip(t *testing.T) {
	taken := time.Date(2026, 11, 25, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		compression, want string
	}{
		{None, "etcd-snapshot-20261125T110000Z-rev1234.db"},
		{Gzip, "etcd-snapshot-20261125T110000Z-rev1234.db.gz"},
		{Zstd, "etcd-snapshot-20261125T110000Z-rev1234.db.zst"},
	}
	for _, tt := range tests {
		name := FileName(taken, 1234, tt.compression)
		if name != tt.want {
			t.Errorf("FileName(%q) = %q, want %q (UTC)", tt.compression, name, tt.want)
		}
		s, ok := ParseFileName(name)
		if !ok || !s.Taken.Equal(taken) || s.Revision != 1234 {
			t.Errorf("ParseFileName(%q) = %+v, %v", name, s, ok)
		}
	}
	for _, foreign := range []string{"etcd.db", "etcd-snapshot-20261125T110000Z-rev1234.db.part", "etcd-snapshot-20261125T110000Z.part", "etcd-snapshot-20261125T110000Z-rev1234.db.json", "etcd-snapshot-2026-rev1.db"} {
		if _, ok := ParseFileName(foreign); ok {
			t.Errorf("ParseFileName(%q) accepted a name it did not make", foreign)
		}
	}
}

func TestPruneKeepsTheNewestAndLeavesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var names []string
	for i := range 5 {
		n := FileName(base.Add(time.Duration(i)*time.Hour), int64(100+i), []string{None, Gzip, Zstd}[i%3])
		names = append(names, n)
		touch(t, filepath.Join(dir, n))
		touch(t, filepath.Join(dir, n+".json"))
	}
	others := []string{"etcd.db", "notes.txt", "etcd-snapshot-20261125T180000Z.part"}
	for _, o := range others {
		touch(t, filepath.Join(dir, o))
	}

	removed, err := Prune(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, names[0]), filepath.Join(dir, names[1]), filepath.Join(dir, names[2])}
	if strings.Join(removed, ",") != strings.Join(want, ",") {
		t.Errorf("Prune removed %v, want the three oldest %v", removed, want)
	}
	left, _ := os.ReadDir(dir)
	var got []string
	for _, e := range left {
		got = append(got, e.Name())
	}
	wantLeft := append([]string{names[3], names[3] + ".json", names[4], names[4] + ".json"}, others...)
	for _, w := range wantLeft {
		if !contains(got, w) {
			t.Errorf("%s was removed; left: %v", w, got)
		}
	}
	if len(got) != len(wantLeft) {
		t.Errorf("left %v, want %v", got, wantLeft)
	}

	if removed, _ := Prune(dir, 0); len(removed) != 0 {
		t.Errorf("Prune(0) removed %v; 0 keeps all", removed)
	}
}

func TestChooseMember(t *testing.T) {
	m := func(name string, applied uint64, leader, learner bool, errs ...string) cluster.MemberStatus {
		return cluster.MemberStatus{Member: cluster.Member{Name: name, Endpoint: "https://" + name, Learner: learner}, RaftAppliedIndex: applied, Leader: leader, Errors: errs}
	}
	tests := []struct {
		name    string
		members []cluster.MemberStatus
		want    string
		wantErr string
	}{
		{"a follower before the leader", []cluster.MemberStatus{m("a", 10, true, false), m("b", 10, false, false), m("c", 10, false, false)}, "b", ""},
		{"the freshest data first", []cluster.MemberStatus{m("a", 10, true, false), m("b", 9, false, false), m("c", 10, false, false)}, "c", ""},
		{"a voter before a learner", []cluster.MemberStatus{m("l", 20, false, true), m("a", 10, true, false)}, "a", ""},
		{"never a member with errors", []cluster.MemberStatus{m("a", 30, false, false, "connection refused"), m("b", 10, true, false)}, "b", ""},
		{"none healthy", []cluster.MemberStatus{m("a", 0, false, false, "connection refused"), m("b", 0, false, false, "no leader")}, "", "no healthy member to take a snapshot from: a: connection refused, b: no leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseMember(tt.members)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Name != tt.want {
				t.Errorf("ChooseMember = %s, %v; want %s", got.Name, err, tt.want)
			}
		})
	}
}

func TestRestorerValidate(t *testing.T) {
	ok := Restorer{SnapshotPath: "s.db", DataDir: "d", Name: "m1", PeerURLs: []string{"https://10.0.0.1:2380"}, BumpRevision: DefaultBumpRevision, MarkCompacted: true}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	tests := []struct {
		change func(*Restorer)
		want   string
	}{
		{func(r *Restorer) { r.DataDir = "" }, "--data-dir is required"},
		{func(r *Restorer) { r.Name = "" }, "--name is required"},
		{func(r *Restorer) { r.PeerURLs = nil }, "--initial-advertise-peer-urls is required"},
		{func(r *Restorer) { r.MarkCompacted = false }, "--bump-revision needs --mark-compacted"},
		{func(r *Restorer) { r.BumpRevision = 0 }, "--mark-compacted needs --bump-revision"},
		{func(r *Restorer) { r.InitialCluster = "m2=https://10.0.0.2:2380" }, "does not list this member"},
	}
	for _, tt := range tests {
		r := ok
		tt.change(&r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
}

func TestMinorVersion(t *testing.T) {
	for in, want := range map[string]string{"3.6.0": "3.6", "3.7.0": "3.7", "": "", "3": ""} {
		if got := MinorVersion(in); got != want {
			t.Errorf("MinorVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRemoveStalePartsOnlyRemovesOldPartialFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	stale := []string{"etcd-snapshot-20261124T110000Z-123.part", "etcd-snapshot-20261120T000000Z-9.download.part"}
	keep := []string{
		"etcd-snapshot-20261125T113000Z-456.part", // a save in progress
		"etcd-snapshot-20261120T000000Z-rev5.db",  // a finished snapshot
		"etcd.db.part",                            // not a name a save into a directory makes
		"etcd-snapshot-20261120T000000Z-rev5.db.json",
	}
	for _, n := range append(append([]string{}, stale...), keep...) {
		touch(t, filepath.Join(dir, n))
	}
	removed, err := RemoveStaleParts(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(stale) {
		t.Errorf("removed %v, want %v", removed, stale)
	}
	for _, n := range keep {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed", n)
		}
	}
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("stale %s was kept", n)
		}
	}
}

func TestBackgroundWriterDeliversEveryByteInOrder(t *testing.T) {
	data := make([]byte, 3*backgroundBlockSize*backgroundBlocks+12345)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for _, chunk := range []int{1, 4096, 32 << 10, backgroundBlockSize, backgroundBlockSize + 1, len(data)} {
		var got bytes.Buffer
		b := newBackgroundWriter(&got)
		for off := 0; off < len(data); off += chunk {
			if n, err := b.Write(data[off:min(off+chunk, len(data))]); err != nil || n != min(chunk, len(data)-off) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		b.Close()
		b.Close()
		if !bytes.Equal(got.Bytes(), data) {
			t.Errorf("chunks of %d: %d bytes arrived, want the %d written, in order", chunk, got.Len(), len(data))
		}
	}
}
