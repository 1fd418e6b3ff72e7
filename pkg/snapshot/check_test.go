package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

// A quick check asks the member for the number of live keys at the
// snapshot's revision. When a compaction has passed that revision by the
// time it asks, the keys are counted from the file instead.
func TestQuickCheckCountsFromTheFileAfterACompaction(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cli := c.Client()
	ctx := context.Background()
	for i := range 20 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/registry/k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "etcd.db")
	s := &Saver{Config: c.Config(), Client: cli, Path: path, NoMetadata: true}
	res, err := s.Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalKeys != 20 || res.Verified != VerifyQuick {
		t.Fatalf("saved %d keys, verified %q; want 20, quick", res.TotalKeys, res.Verified)
	}

	t.Log("more writes, then a compaction past the snapshot's revision")
	var last int64
	for i := range 5 {
		resp, err := cli.Put(ctx, fmt.Sprintf("/registry/later%d", i), "v")
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "/registry/k00", clientv3.WithRev(res.Revision)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("reading at the snapshot's revision after the compaction: %v, want %v", err, rpctypes.ErrCompacted)
	}
	st := &FileStatus{HashCheck: HashOK}
	mcli, err := c.Config().ClientFor(res.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer mcli.Close()
	if err := s.check(ctx, mcli, path, st); err != nil {
		t.Fatalf("check after the compaction: %v", err)
	}
	if st.TotalKeys != 20 || st.Revision != res.Revision {
		t.Errorf("check after the compaction counted %d keys at revision %d; want 20 at %d, as the file holds", st.TotalKeys, st.Revision, res.Revision)
	}
}
