// Package lock takes lease-backed etcd locks, the same locks etcdctl lock
// takes, so scripts and commands on several machines take turns: Acquire
// holds one for a caller's own work, Runner holds one while a command runs.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/raft/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// Options say which lock to take and how.
type Options struct {
	// Name is the lock's key prefix, as etcdctl lock takes it.
	Name string
	// TTL is the lease's time to live: a holder that dies frees the lock
	// after at most this long.
	TTL time.Duration
	// Timeout bounds the wait for the lock (0: wait forever).
	Timeout time.Duration
	// GrantTimeout bounds the request for the lease (default 15s), so a
	// cluster without quorum is reported instead of waited on.
	GrantTimeout time.Duration
	// Owner describes the holder to those who wait ("node cp-1, pid 42");
	// it is stored beside the lock under the same lease. Optional.
	Owner string
	// Waiting is called once when the lock is held by someone else, with
	// the holder's key and, when it said, its owner.
	Waiting func(holder string)
}

// ErrTimeout reports that the lock was not acquired in time.
var ErrTimeout = errors.New("timed out waiting for the lock")

// ErrLost reports that the lease expired while the command ran: others may
// hold the lock now, so the command was stopped.
var ErrLost = errors.New("lost the lock: its lease expired while the command ran, the command was stopped")

// Held is a lock this process holds until Release, or until its lease is
// lost (Lost).
type Held struct {
	name    string
	session *concurrency.Session
	mutex   *concurrency.Mutex
}

// Key is the holder's key under the lock's prefix.
func (h *Held) Key() string { return h.mutex.Key() }

// Lost is closed when the lease is no longer kept alive: it expired, or
// the cluster could not be reached for longer than the TTL.
func (h *Held) Lost() <-chan struct{} { return h.session.Done() }

// Release unlocks and revokes the lease (which also deletes the owner
// key), also when ctx is done: a command stopped with Ctrl-C frees the
// lock at once instead of when its lease expires.
func (h *Held) Release(ctx context.Context) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := h.mutex.Unlock(uctx)
	return errors.Join(err, endSession(uctx, h.session))
}

// endSession stops keeping the session's lease alive and revokes it,
// within ctx: Session.Close waits up to the lease's TTL for a cluster
// that does not answer.
func endSession(ctx context.Context, s *concurrency.Session) error {
	s.Orphan()
	_, err := s.Client().Revoke(ctx, s.Lease())
	return err
}

// ownerKey is where the holder with lease id describes itself: beside the
// lock's prefix, not under it, so it takes no part in the lock.
func ownerKey(name string, id clientv3.LeaseID) string {
	return fmt.Sprintf("%s.owner/%x", name, int64(id))
}

// Acquire takes the lock, waiting while someone else holds it.
func Acquire(ctx context.Context, cli *clientv3.Client, opts Options) (*Held, error) {
	ttl := int(opts.TTL / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	grantTimeout := opts.GrantTimeout
	if grantTimeout <= 0 {
		grantTimeout = 15 * time.Second
	}
	gctx, gcancel := context.WithTimeout(ctx, grantTimeout)
	var lease *clientv3.LeaseGrantResponse
	err := retryTransient(gctx, func() (err error) {
		lease, err = cli.Grant(gctx, int64(ttl))
		return err
	})
	gcancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: does the cluster have quorum?", grantTimeout)
		}
		return nil, fmt.Errorf("creating a lease for lock %s: %w", opts.Name, err)
	}
	// The lease is kept alive until Release, not until ctx ends: Lost
	// then means the lease itself was lost, and Release can still unlock
	// and revoke after the command was stopped.
	session, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("keeping the lease of lock %s alive: %w", opts.Name, err)
	}
	abandon := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = endSession(actx, session)
	}
	if opts.Owner != "" {
		octx, ocancel := context.WithTimeout(ctx, grantTimeout)
		err := retryTransient(octx, func() error {
			_, err := cli.Put(octx, ownerKey(opts.Name, lease.ID), opts.Owner, clientv3.WithLease(lease.ID))
			return err
		})
		ocancel()
		if err != nil {
			abandon()
			return nil, fmt.Errorf("recording the owner of lock %s: %w", opts.Name, err)
		}
	}
	m := concurrency.NewMutex(session, opts.Name)

	lctx, cancel := ctx, context.CancelFunc(func() {})
	if opts.Timeout > 0 {
		lctx, cancel = context.WithTimeout(ctx, opts.Timeout)
	}
	defer cancel()
	if err := retryTransient(lctx, func() error { return m.TryLock(lctx) }); err != nil {
		if !errors.Is(err, concurrency.ErrLocked) {
			abandon()
			return nil, fmt.Errorf("taking lock %s: %w", opts.Name, err)
		}
		if opts.Waiting != nil {
			opts.Waiting(Holder(lctx, cli, opts.Name))
		}
		if err := retryTransient(lctx, func() error { return m.Lock(lctx) }); err != nil {
			abandon()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return nil, fmt.Errorf("lock %s: %w after %s (held by %s)", opts.Name, ErrTimeout, opts.Timeout, Holder(ctx, cli, opts.Name))
			}
			return nil, fmt.Errorf("taking lock %s: %w", opts.Name, err)
		}
	}
	return &Held{name: opts.Name, session: session, mutex: m}, nil
}

// retryTransient runs op until it succeeds, fails for good, or ctx ends.
// While leadership moves, the cluster drops or times out proposals for a
// moment (a rolling restart moves it on purpose); that is no reason to give
// up a lock the caller is willing to wait for. Every step of taking the
// lock can be repeated: the waiter's key is named by the session's lease.
func retryTransient(ctx context.Context, op func() error) error {
	return poll.Until(ctx, "the cluster to elect a leader", 200*time.Millisecond, 0, func(context.Context) error {
		err := op()
		if err != nil && !transient(err) {
			return poll.Stop(err)
		}
		return err
	})
}

// transient reports the errors of a cluster between two leaders.
func transient(err error) bool {
	for _, e := range []error{rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail} {
		if errors.Is(err, e) {
			return true
		}
	}
	// etcd's client has no typed error for this one: the server passes
	// raft's own along.
	return rpctypes.ErrorDesc(err) == raft.ErrProposalDropped.Error()
}

// NoHolder is what Holder says when it finds no holder (or cannot ask).
const NoHolder = "another holder"

// Holder describes the current holder of lock name: the key with the
// lowest create revision under the lock's prefix, followed by its owner in
// parentheses when the holder recorded one.
func Holder(ctx context.Context, cli *clientv3.Client, name string) string {
	resp, err := cli.Get(ctx, name+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return NoHolder
	}
	kv := resp.Kvs[0]
	key := string(kv.Key)
	if kv.Lease == 0 {
		return key
	}
	owner, err := cli.Get(ctx, ownerKey(name, clientv3.LeaseID(kv.Lease)))
	if err != nil || len(owner.Kvs) == 0 {
		return key
	}
	return fmt.Sprintf("%s (%s)", key, owner.Kvs[0].Value)
}

// Runner holds a lock while a command runs.
type Runner struct {
	Client *clientv3.Client
	Options

	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run takes the lock, runs argv with ETCD_LOCK_KEY set to the lock's key,
// and releases the lock when the command exits. The command's own exit
// status comes back as an *exec.ExitError.
func (r *Runner) Run(ctx context.Context, argv []string) error {
	held, err := Acquire(ctx, r.Client, r.Options)
	if err != nil {
		return err
	}
	defer func() { _ = held.Release(ctx) }()

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	lost := make(chan struct{})
	go func() {
		select {
		case <-held.Lost():
			close(lost)
			stop()
		case <-cctx.Done():
		}
	}()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.Stdin, r.Stdout, r.Stderr
	cmd.Env = append(cmd.Environ(), "ETCD_LOCK_KEY="+held.Key())
	err = cmd.Run()
	select {
	case <-lost:
		return ErrLost
	default:
	}
	return err
}
