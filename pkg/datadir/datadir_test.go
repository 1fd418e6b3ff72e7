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
	c.Stop(0)
	ins := datadir.Inspect(c.State.Members[0].DataDir)
	b, _ := json.MarshalIndent(ins, "", "  ")
	t.Logf("%s", b)
}
