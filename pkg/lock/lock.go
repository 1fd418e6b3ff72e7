// Package lock runs a command while holding a lease-backed etcd lock, the
// same lock etcdctl lock takes, so scripts on several machines take turns.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Runner holds a lock while a command runs.
type Runner struct {
	Client *clientv3.Client
	// Name is the lock's key prefix, as etcdctl lock takes it.
	Name string
	// TTL is the lease's time to live: a holder that dies frees the lock
	// after at most this long.
	TTL time.Duration
	// Timeout bounds the wait for the lock (0: wait forever).
	Timeout time.Duration

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Waiting is called when the lock is held by someone else.
	Waiting func(holderKey string)
}

// ErrTimeout reports that the lock was not acquired in time.
var ErrTimeout = errors.New("timed out waiting for the lock")

// ErrLost reports that the lease expired while the command ran: others may
// hold the lock now, so the command was stopped.
var ErrLost = errors.New("lost the lock: its lease expired while the command ran, the command was stopped")

// Run takes the lock, runs argv with ETCD_LOCK_KEY set to the lock's key,
// and releases the lock when the command exits. The command's own exit
// status comes back as an *exec.ExitError.
func (r *Runner) Run(ctx context.Context, argv []string) error {
	ttl := int(r.TTL / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	session, err := concurrency.NewSession(r.Client, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("creating a lease for lock %s: %w", r.Name, err)
	}
	defer session.Close()
	m := concurrency.NewMutex(session, r.Name)

	lctx, cancel := ctx, context.CancelFunc(func() {})
	if r.Timeout > 0 {
		lctx, cancel = context.WithTimeout(ctx, r.Timeout)
	}
	defer cancel()
	if err := m.TryLock(lctx); err != nil {
		if !errors.Is(err, concurrency.ErrLocked) {
			return fmt.Errorf("taking lock %s: %w", r.Name, err)
		}
		if r.Waiting != nil {
			r.Waiting(holder(lctx, r.Client, r.Name))
		}
		if err := m.Lock(lctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("lock %s: %w after %s (held by %s)", r.Name, ErrTimeout, r.Timeout, holder(ctx, r.Client, r.Name))
			}
			return fmt.Errorf("taking lock %s: %w", r.Name, err)
		}
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = m.Unlock(uctx)
	}()

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	lost := make(chan struct{})
	go func() {
		select {
		case <-session.Done():
			close(lost)
			stop()
		case <-cctx.Done():
		}
	}()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.Stdin, r.Stdout, r.Stderr
	cmd.Env = append(cmd.Environ(), "ETCD_LOCK_KEY="+m.Key())
	err = cmd.Run()
	select {
	case <-lost:
		return ErrLost
	default:
	}
	return err
}

// holder is the key of the current holder, the lowest create revision
// under the lock's prefix.
func holder(ctx context.Context, cli *clientv3.Client, name string) string {
	resp, err := cli.Get(ctx, name+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return "another holder"
	}
	return string(resp.Kvs[0].Key)
}
