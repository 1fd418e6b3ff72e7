package etcdtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// Writer puts a new key every interval through a client balanced over
// every member, and counts what succeeds and fails as it goes: the client
// a rolling change must not fail. Tests give it a health-checked client
// (connect.Config.HealthCheckedClient), or a plain one as kube-apiserver
// has.
type Writer struct {
	Started  time.Time
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	ok       int
	failures []string
}

// StartWriter starts a Writer of keys prefix0000000, prefix0000001, ...
// through cli, which it closes when it stops; the test's cleanup stops it
// if Finish was not called.
func StartWriter(t testing.TB, cli *clientv3.Client, prefix string, interval time.Duration) *Writer {
	return startWriter(t, interval, writeTimeout, func(ctx context.Context, i int) error {
		_, err := cli.Put(ctx, fmt.Sprintf("%s%07d", prefix, i), "v")
		return err
	}, func() { cli.Close() })
}

// writeTimeout bounds each write of a Writer: longer than etcd's own 7 s
// proposal timeout, so a write etcd drops says so ("request timed out")
// instead of the client's deadline.
const writeTimeout = 10 * time.Second

// StartWriterFunc starts a Writer that makes write i (0, 1, ...) every
// interval by calling write, each within writeTimeout. The test's cleanup
// stops it if Finish was not called.
func StartWriterFunc(t testing.TB, interval time.Duration, write func(ctx context.Context, i int) error) *Writer {
	return startWriter(t, interval, writeTimeout, write, func() {})
}

// startWriter is StartWriterFunc with each write within timeout, calling
// closer once the writer stopped.
func startWriter(t testing.TB, interval, timeout time.Duration, write func(ctx context.Context, i int) error, closer func()) *Writer {
	w := &Writer{Started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer closer()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			start := time.Now()
			err := write(ctx, i)
			cancel()
			w.mu.Lock()
			if err != nil {
				w.failures = append(w.failures, fmt.Sprintf("%s write %d after %s: %v", start.Format("15:04:05.000"), i, time.Since(start).Round(time.Millisecond), err))
			} else {
				w.ok++
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Finish() })
	return w
}

// StartHealthCheckedWriter starts a Writer through a health-checked client
// of cfg, which turns away from a member that reports NOT_SERVING.
func StartHealthCheckedWriter(t testing.TB, cfg *connect.Config, prefix string, interval time.Duration) *Writer {
	t.Helper()
	cli, err := cfg.HealthCheckedClient()
	if err != nil {
		t.Fatal(err)
	}
	return StartWriter(t, cli, prefix, interval)
}

// Counts are the writes so far that succeeded and that failed.
func (w *Writer) Counts() (ok, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok, len(w.failures)
}

// Finish stops the writer and returns the writes that succeeded and how
// each failed one failed.
func (w *Writer) Finish() (int, []string) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok, append([]string(nil), w.failures...)
}

// CheckWrites fails the test for every failed write but those etcd loses
// while leadership moves, at most one per move. A member that stops
// gracefully finishes what it serves and the client fails over to the
// others, so no write may fail for that; what etcd does lose is a
// proposal a follower forwards while leadership moves (raft drops
// proposals during a transfer and the follower's request times out,
// etcd-io/etcd#5214; "raft proposal dropped" is the same loss reported by
// the leader, when the write reached it mid-transfer, seen with etcd 3.7.3
// on real kubelets). progress is the commands' output: each "Moving
// leadership from" line in it is one move. It returns the writes lost to
// moves.
func CheckWrites(t testing.TB, failures []string, progress string) int {
	t.Helper()
	moves := strings.Count(progress, "Moving leadership from")
	lost := 0
	for _, f := range failures {
		if strings.Contains(f, "etcdserver: request timed out") || strings.Contains(f, "etcdserver: leader changed") || strings.Contains(f, "raft proposal dropped") {
			lost++
			t.Logf("write lost to a leadership move: %s", f)
			continue
		}
		t.Errorf("write failed: %s", f)
	}
	if lost > moves {
		t.Errorf("%d writes lost to leadership moves, but leadership moved only %d times", lost, moves)
	}
	return lost
}
