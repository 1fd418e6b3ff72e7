package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// TestRollingUpgradeFrom35WithRealEtcd upgrades a cluster born on etcd 3.5
// one minor at a time to 3.7, the three nodes at once at each step, with a
// writer running. Between 3.6 and 3.7 sits a trap: the WAL still holds the
// v2 requests 3.5 wrote until each member takes a raft snapshot past them,
// and etcd 3.7 panics replaying them. The upgrade refuses until then.
func TestRollingUpgradeFrom35WithRealEtcd(t *testing.T) {
	v35, v36, v37 := etcdtest.UpgradeVersions(t)[0], etcdtest.Versions(t)[0], etcdtest.Versions(t)[1]
	if !strings.HasPrefix(v35, "3.5.") || !strings.HasPrefix(v36, "3.6.") || !strings.HasPrefix(v37, "3.7.") {
		t.Fatalf("the reference releases are %s, %s, %s; this test wants one 3.5, one 3.6 and one 3.7", v35, v36, v37)
	}
	nodes := upgradeCluster(t, v35)
	cfg := allConfig(t, nodes)
	ctx := context.Background()
	stop := writer(t, cfg)

	start := time.Now()
	upgradeAll(t, nodes, v36)
	t.Logf("3 nodes %s -> %s, all started at once, in %s", v35, v36, time.Since(start).Round(time.Second))

	t.Logf("%s -> %s is refused while the WAL holds the v2 requests of %s", v36, v37, v35)
	_, err := nodes[0].UpgradeEtcd(ctx, UpgradeOptions{Version: v37})
	if err == nil || !strings.Contains(err.Error(), "v2 requests") || !strings.Contains(err.Error(), "panics") {
		t.Fatalf("upgrade to %s with v2 entries in the WAL = %v, want a refusal naming them\n%s", v37, err, nodes[0].log)
	}
	if got := manifestImage(t, nodes[0]); got != etcdtest.Image(v36) {
		t.Fatalf("the refused upgrade changed the image to %s", got)
	}

	t.Log("10,000 writes later every member has taken a raft snapshot past them (--snapshot-count=10000)")
	putMany(t, cfg, 10_000)
	if err := poll.Until(ctx, "every member's raft snapshot to pass the v2 entries", 500*time.Millisecond, 2*time.Minute, func(context.Context) error {
		for _, n := range nodes {
			if w, s := datadir.ReadWAL(hostDataDir(t, n)); w.V2Entries > 0 {
				return fmt.Errorf("%s: %d v2 entries after its raft snapshot at index %d", n.Name, w.V2Entries, s.Index)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	upgradeAll(t, nodes, v37)
	t.Logf("3 nodes %s -> %s, all started at once, in %s", v36, v37, time.Since(start).Round(time.Second))
	ok, failed := stop()
	t.Logf("writer: %d writes, %d failed", ok, failed)
	if ok == 0 || failed != 0 {
		t.Errorf("writer during the upgrades: %d writes ok, %d failed; want none failed", ok, failed)
	}

	t.Log("the storage version follows to 3.7 on every member")
	if err := poll.Until(ctx, "storage version 3.7 on every member", 500*time.Millisecond, time.Minute, func(ctx context.Context) error {
		cli, err := cfg.Client()
		if err != nil {
			return err
		}
		defer cli.Close()
		statuses, err := cluster.Collect(ctx, cfg, cli)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			if !strings.HasPrefix(s.StorageVersion, "3.7.") {
				return fmt.Errorf("%s reports storage version %q", s.Name, s.StorageVersion)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// putMany writes n keys, eight at a time: n raft entries.
func putMany(t *testing.T, cfg *connect.Config, n int) {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	next := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("/registry/many/%05d", i), "v")
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			t.Fatalf("write %d: %v", i, err)
		}
	}
	close(next)
	wg.Wait()
}

// hostDataDir is the data directory the node's manifest gives etcd.
func hostDataDir(t *testing.T, n *e2eNode) string {
	t.Helper()
	m, err := staticpod.Read(n.ManifestPath())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := m.HostDataDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
