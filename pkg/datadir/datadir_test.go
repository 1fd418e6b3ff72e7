package datadir_test

import (
	"context"
	"encoding/json"
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
