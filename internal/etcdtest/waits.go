package etcdtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// PutMany writes n keys under prefix (prefix00000, prefix00001, ...),
// eight at a time: n raft entries, for tests that need etcd to have
// applied many of them (a raft snapshot every --snapshot-count).
func PutMany(t testing.TB, cfg *connect.Config, prefix string, n int) {
	t.Helper()
	PutManyOf(t, cfg, prefix, n, "v")
}

// PutManyOf is PutMany with value as every key's value.
func PutManyOf(t testing.TB, cfg *connect.Config, prefix string, n int, value string) {
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
				_, err := cli.Put(ctx, fmt.Sprintf("%s%05d", prefix, i), value)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("write %d: %w", i, err)
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
			t.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
}

// WaitMembers polls the status of every member of cfg until there are
// members of them, each healthy and satisfying ok; what names the wait.
func WaitMembers(t testing.TB, cfg *connect.Config, members int, what string, ok func(cluster.MemberStatus) bool) {
	t.Helper()
	if err := poll.Until(context.Background(), what+" on every member", 500*time.Millisecond, 3*time.Minute, func(ctx context.Context) error {
		statuses, err := cluster.ConnectAndCollect(ctx, cfg)
		if err != nil {
			return err
		}
		if len(statuses) != members {
			return fmt.Errorf("%d members, want %d", len(statuses), members)
		}
		for _, s := range statuses {
			if !s.Healthy() || !ok(s) {
				return fmt.Errorf("%s: version %q, storage version %q, errors %q", s.Name, s.Version, s.StorageVersion, s.Errors)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s on every member", what)
}

// WaitNoV2Entries waits until the WAL of no member, each named by its
// node's etcd manifest, holds etcd 3.5's v2 requests past its newest raft
// snapshot: until etcd 3.7 can replay every member's WAL.
func WaitNoV2Entries(t testing.TB, manifests ...string) {
	t.Helper()
	if err := poll.Until(context.Background(), "every member's raft snapshot to pass the v2 entries", 500*time.Millisecond, 3*time.Minute, func(context.Context) error {
		for _, path := range manifests {
			m, err := staticpod.Read(path)
			if err != nil {
				return err
			}
			dir, err := m.HostDataDir()
			if err != nil {
				return err
			}
			if w, s := datadir.ReadWAL(dir); w.V2Entries > 0 {
				return fmt.Errorf("%s: %d v2 entries after its raft snapshot at index %d", m.Flags["name"], w.V2Entries, s.Index)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
