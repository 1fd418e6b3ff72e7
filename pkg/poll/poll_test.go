package poll_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

func TestUntilHolds(t *testing.T) {
	calls := 0
	err := poll.Until(context.Background(), "the third call", time.Millisecond, 10*time.Second, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Until = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilTimesOutWithTheLastError(t *testing.T) {
	calls := 0
	err := poll.Until(context.Background(), "member-2 to serve", 5*time.Millisecond, 50*time.Millisecond, func(context.Context) error {
		calls++
		if calls == 1 {
			return errors.New("no leader")
		}
		return syscall.ECONNREFUSED
	})
	var te *poll.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Until = %v (%T), want a *poll.TimeoutError", err, err)
	}
	if want := "timed out after 50ms waiting for member-2 to serve: last error: connection refused"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v should match context.DeadlineExceeded and the last error", err)
	}
	if calls < 2 {
		t.Errorf("%d calls in 50ms at a 5ms interval, want several", calls)
	}
}

func TestUntilStopsAtOnceOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	go func() {
		<-started
		cancel()
	}()
	begin := time.Now()
	err := poll.Until(ctx, "a condition that never holds", 10*time.Second, 30*time.Second, func(context.Context) error {
		select {
		case started <- struct{}{}:
		default:
		}
		return errors.New("never")
	})
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Until returned %s after the cancel, want at once", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Until = %v, want context.Canceled", err)
	}
	if want := "waiting for a condition that never holds: context canceled (last error: never)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestUntilCutsASlowCheckShortAndKeepsTheReasonFromBefore(t *testing.T) {
	calls := 0
	begin := time.Now()
	err := poll.Until(context.Background(), "a slow member", time.Millisecond, 100*time.Millisecond, func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return errors.New("hung: no answer")
		}
		<-ctx.Done() // a request that would take longer than the wait
		return ctx.Err()
	})
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Until took %s with a 100ms timeout", took)
	}
	if got := poll.Last(err); got == nil || got.Error() != "hung: no answer" {
		t.Errorf("last error %v, want the reason from before the cut (%v)", got, err)
	}
}

func TestUntilTimesOutWhenAGivingUpCheckIsCutShort(t *testing.T) {
	calls := 0
	err := poll.Until(context.Background(), "the learner to catch up", time.Millisecond, 100*time.Millisecond, func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return errors.New("not in sync with the leader")
		}
		<-ctx.Done()
		// A check that gives up on errors it does not know, as a request
		// cut short by the wait's own deadline returns.
		return poll.Stop(fmt.Errorf("promoting: %w", ctx.Err()))
	})
	var te *poll.TimeoutError
	if !errors.As(err, &te) || te.Last == nil || te.Last.Error() != "not in sync with the leader" {
		t.Errorf("Until = %v, want a timeout with the reason from before the cut", err)
	}
}

func TestUntilStop(t *testing.T) {
	gone := errors.New("learner 1234 disappeared from the member list")
	calls := 0
	err := poll.Until(context.Background(), "the learner", time.Millisecond, 10*time.Second, func(context.Context) error {
		calls++
		return poll.Stop(gone)
	})
	if err != gone || calls != 1 {
		t.Errorf("Until = %v after %d calls, want the stopping error itself after 1", err, calls)
	}
	if poll.Stop(nil) != nil {
		t.Error("Stop(nil) should be nil")
	}
}

func TestUntilWithoutTimeoutEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := poll.Until(ctx, "ever", time.Millisecond, 0, func(context.Context) error { return errors.New("no") })
	var ie *poll.InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Until = %v, want an *InterruptedError matching the caller's deadline", err)
	}
}
