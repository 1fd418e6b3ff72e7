package etcdtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// Writer puts a new key every interval through a health-checked client
// balanced over every member (connect.Config.HealthCheckedClient), and
// counts what succeeds and fails as it goes: the client a rolling change
// must not fail.
type Writer struct {
	Started  time.Time
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	ok       int
	failures []string
}

// StartWriter starts a Writer of keys prefix0000000, prefix0000001, ...;
// the test's cleanup stops it if Finish was not called.
func StartWriter(t testing.TB, cfg *connect.Config, prefix string, interval time.Duration) *Writer {
	t.Helper()
	cli, err := cfg.HealthCheckedClient()
	if err != nil {
		t.Fatal(err)
	}
	w := &Writer{Started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cli.Close()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			// Longer than etcd's own 7 s proposal timeout, so a write etcd
			// drops says so ("request timed out") instead of the client's
			// deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			_, err := cli.Put(ctx, fmt.Sprintf("%s%07d", prefix, i), "v")
			cancel()
			w.mu.Lock()
			if err != nil {
				w.failures = append(w.failures, fmt.Sprintf("%s put %d after %s: %v", start.Format("15:04:05.000"), i, time.Since(start).Round(time.Millisecond), err))
			} else {
				w.ok++
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Finish() })
	return w
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
// gracefully finishes what it serves and a health-checked client fails
// over, so no write may fail for that; what etcd does lose is a proposal
// a follower forwards while leadership moves (raft drops proposals during
// a transfer, etcd-io/etcd#5214; "raft proposal dropped" is the same loss
// seen from the leader). progress is the commands' output: each
// "Moving leadership from" line in it is one move. It returns the writes
// lost to moves.
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
