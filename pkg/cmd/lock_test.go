package cmd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

func TestLock(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cli := c.Client()
	conn := c.ConnectArgs()
	lock := func(args ...string) (string, string, int, error) {
		t.Helper()
		return cmdtest.RunIn(t, nil, append(append([]string{}, conn...), append([]string{"lock"}, args...)...)...)
	}

	t.Log("the command runs with the lock's key, and its exit code comes back")
	out, _, code, err := lock("jobs", "--", "sh", "-c", "echo $ETCD_LOCK_KEY; exit 3")
	if code != 3 || !strings.HasPrefix(out, "jobs/") {
		t.Fatalf("exit %d (%v), output %q", code, err, out)
	}
	if resp, _ := cli.Get(context.Background(), "jobs/", withPrefix()...); len(resp.Kvs) != 0 {
		t.Error("the lock was not released")
	}

	t.Log("while someone else holds it, a second invocation waits, then times out")
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, "jobs")
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errOut, code, err := lock("jobs", "--timeout", "700ms", "--", "true")
	if code != 1 || !strings.Contains(err.Error(), "timed out waiting for the lock") || !strings.Contains(errOut, "waiting for lock jobs, held by "+m.Key()) {
		t.Errorf("contended lock: exit %d, %v, stderr %q", code, err, errOut)
	}
	if time.Since(start) < 700*time.Millisecond {
		t.Error("did not wait")
	}

	t.Log("once released, the waiter gets it")
	done := make(chan string)
	go func() {
		out, _, _, _ := lock("jobs", "--timeout", "20s", "--", "echo", "mine")
		done <- out
	}()
	// The waiter queues a key of its own under the lock's prefix.
	if err := poll.Until(context.Background(), "the waiter to queue", 20*time.Millisecond, 20*time.Second, func(ctx context.Context) error {
		resp, err := cli.Get(ctx, "jobs/", withPrefix()...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) < 2 {
			return fmt.Errorf("%d keys under jobs/", len(resp.Kvs))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-done:
		if out != "mine\n" {
			t.Errorf("waiter printed %q", out)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("waiter never got the lock")
	}
	if _, _, code, err := lock("jobs"); code != 1 || !strings.Contains(err.Error(), "NAME -- COMMAND") {
		t.Errorf("without a command: %d %v", code, err)
	}
}

func withPrefix() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }
