package datadir_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
)

func TestInspectStoppedMember(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	for i := 0; i < 20; i++ {
		if _, err := cli.Put(context.Background(), "k", "v"); err != nil {
			t.Fatal(err)
		}
	}
	dir := c.State.Members[0].DataDir
	held, err := datadir.Held(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A running member holds its backend and the WAL file it appends to.
	if len(held) < 2 || held[len(held)-1] != datadir.DBPath(dir) {
		t.Errorf("Held of a running member = %q, want its WAL files and %s", held, datadir.DBPath(dir))
	}
	if ins := datadir.Inspect(dir); ins.DB == nil || !ins.DB.Locked {
		t.Errorf("Inspect of a running member's backend = %+v, want it locked", ins.DB)
	}
	c.Stop(0)
	if held, err := datadir.Held(dir); err != nil || len(held) != 0 {
		t.Errorf("Held of a stopped member = %q, %v; want nothing", held, err)
	}
	ins := datadir.Inspect(dir)
	b, _ := json.MarshalIndent(ins, "", "  ")
	t.Logf("%s", b)
	if ins.Error != "" || ins.WAL == nil || ins.WAL.Tail != datadir.TailClean || ins.DB == nil || ins.DB.OpenError != "" || ins.DB.Locked {
		t.Errorf("Inspect of a cleanly stopped member: want a clean WAL tail and an open backend")
	}
	if ins.DB != nil && ins.WAL != nil && ins.DB.ConsistentIndex > ins.WAL.Commit {
		t.Errorf("backend consistent index %d past the WAL's commit %d", ins.DB.ConsistentIndex, ins.WAL.Commit)
	}
	if len(ins.WALMembers) != 1 || len(ins.DB.Members) != 1 {
		t.Errorf("members: WAL %v, backend %v; want the one member on both sides", ins.WALMembers, ins.DB.Members)
	}
}

func TestHeldMissingDir(t *testing.T) {
	if held, err := datadir.Held(t.TempDir() + "/nothing"); err != nil || len(held) != 0 {
		t.Errorf("Held of a missing dir = %q, %v", held, err)
	}
}

// TestLeftovers lists what killed recoveries and restores leave beside a
// data directory, with their sizes, and nothing else there.
func TestLeftovers(t *testing.T) {
	parent := t.TempDir()
	dataDir := filepath.Join(parent, "etcd")
	write := func(rel string, size int) {
		t.Helper()
		p := filepath.Join(parent, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("etcd/member/snap/db", 100)
	write("etcd-recover-20261207T010000Z.work/member/snap/db", 4096)
	write("etcd-recover-20261207T010000Z.work/member/wal/0.wal", 1000)
	write("etcd-recover-20261207T010000Z.work.snapshot.db", 2048)
	write("etcd-restore-20261207T020000Z.restoring-123/member/snap/db", 512)
	// A data directory a recovery made (the member runs on it, or a
	// killed run left it) and one a later restore made of that.
	write("etcd-recover-20261207T010000Z/member/snap/db", 10)
	write("etcd-recover-20261207T010000Z-restore-20261207T030000Z/member/wal/0.wal", 20)
	// Not leftovers: another member's scratch and data, a file of the
	// operator's, a directory named like a recovery's that holds no etcd
	// data.
	write("etcd2-recover-20261207T010000Z.work/member/snap/db", 10)
	write("etcd2/member/snap/db", 10)
	write("etcd.work", 10)
	write("etcd-restore-20261207T040000Z/notes.txt", 10)

	copies := []datadir.Leftover{
		{Path: filepath.Join(parent, "etcd-recover-20261207T010000Z.work"), Bytes: 5096, By: "recover quorum (its copy of the data)"},
		{Path: filepath.Join(parent, "etcd-recover-20261207T010000Z.work.snapshot.db"), Bytes: 2048, By: "recover quorum (its snapshot of the copy)"},
		{Path: filepath.Join(parent, "etcd-restore-20261207T020000Z.restoring-123"), Bytes: 512, By: "snapshot restore (its data half restored)"},
	}
	notOn := "a recovery or restore made it, and the member is not on it (that run was interrupted or rolled back, or a later one moved the member on)"
	recovered := datadir.Leftover{Path: filepath.Join(parent, "etcd-recover-20261207T010000Z"), Bytes: 10, By: notOn, Data: true}
	restored := datadir.Leftover{Path: filepath.Join(parent, "etcd-recover-20261207T010000Z-restore-20261207T030000Z"), Bytes: 20, By: notOn, Data: true}
	byPath := func(l []datadir.Leftover) []datadir.Leftover {
		sort.Slice(l, func(i, j int) bool { return l[i].Path < l[j].Path })
		return l
	}
	for _, c := range []struct {
		dataDir string
		want    []datadir.Leftover
	}{
		{dataDir + "/", append([]datadir.Leftover{recovered, restored}, copies...)},
		// Once a recovery moved the member to the data directory it made,
		// the copies left beside the original are still found, and the
		// original is the data it ran on before.
		{recovered.Path, append([]datadir.Leftover{restored, {Path: dataDir, Bytes: 100, By: "the member ran on it before a recovery or restore moved it to " + recovered.Path, Data: true}}, copies...)},
		{restored.Path, append([]datadir.Leftover{
			{Path: dataDir, Bytes: 100, By: "the member ran on it before a recovery or restore moved it to " + restored.Path, Data: true},
			{Path: recovered.Path, Bytes: 10, By: "the member ran on it before a recovery or restore moved it to " + restored.Path, Data: true},
		}, copies...)},
	} {
		if got := datadir.Leftovers(c.dataDir); !reflect.DeepEqual(got, byPath(c.want)) {
			t.Errorf("Leftovers(%s) = %+v\nwant %+v", c.dataDir, got, c.want)
		}
	}
	if got := datadir.Leftovers(filepath.Join(parent, "missing", "etcd")); len(got) != 0 {
		t.Errorf("Leftovers beside a missing parent = %+v", got)
	}
}
