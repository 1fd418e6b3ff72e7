package lock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
)

func TestAcquireNamesTheOwnerToWaiters(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	ctx := context.Background()

	first, err := Acquire(ctx, cli, Options{Name: "/locks/restart", TTL: 10 * time.Second, Owner: "member cp-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Key(), "/locks/restart/") {
		t.Errorf("key %q is not under the lock's prefix", first.Key())
	}

	t.Log("a second taker waits, is told who holds the lock, and times out")
	var told string
	start := time.Now()
	_, err = Acquire(ctx, cli, Options{Name: "/locks/restart", TTL: 10 * time.Second, Timeout: 500 * time.Millisecond, Owner: "member cp-2",
		Waiting: func(h string) { told = h }})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "(member cp-1)") {
		t.Errorf("contended Acquire = %v, want a timeout naming member cp-1", err)
	}
	if want := first.Key() + " (member cp-1)"; told != want {
		t.Errorf("Waiting got %q, want %q", told, want)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Error("did not wait")
	}

	t.Log("the waiter that gave up left nothing behind; release frees the lock and the owner key")
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/locks/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("keys left after release: %v", resp.Kvs)
	}
	if h := Holder(ctx, cli, "/locks/restart"); h != NoHolder {
		t.Errorf("Holder of a free lock = %q", h)
	}

	second, err := Acquire(ctx, cli, Options{Name: "/locks/restart", TTL: 10 * time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatalf("free lock: %v", err)
	}
	if h := Holder(ctx, cli, "/locks/restart"); h != second.Key() {
		t.Errorf("Holder without an owner = %q, want the key %q", h, second.Key())
	}
	if err := second.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTransientErrorsAreThoseOfALeaderChange(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unknown, "raft proposal dropped"), true},
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrPermissionDenied, false},
		{context.DeadlineExceeded, false},
		{errors.New("raft proposal"), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
