// Package poll waits for a condition by asking again at an interval, and
// stops at once when the caller's context ends (Ctrl-C). It is a thin layer
// over apimachinery's wait.PollUntilContextTimeout that keeps why the
// condition did not hold, so that a wait that gives up says what it was
// waiting for and what stood in the way last, instead of a bare "context
// deadline exceeded".
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Check reports whether the awaited condition holds: nil when it does, an
// error saying why not when it does not yet. The last such error is kept
// for the one that Until returns. An error wrapped with Stop ends the wait
// at once.
type Check func(ctx context.Context) error

// Stop marks err as final: Until returns it as is instead of asking again.
// Stop(nil) is nil.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return &stopError{err}
}

type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

// TimeoutError is what Until returns when its own timeout passes before
// the condition holds. It matches context.DeadlineExceeded and the last
// error with errors.Is and errors.As.
type TimeoutError struct {
	// What was awaited, as a phrase: "member-2 to serve".
	What string
	// After is the timeout that passed.
	After time.Duration
	// Last is the last reason the condition did not hold; nil when the
	// check never gave one.
	Last error
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("timed out after %s waiting for %s", e.After, e.What)
	if e.Last != nil {
		msg += ": last error: " + e.Last.Error()
	}
	return msg
}

// Unwrap gives context.DeadlineExceeded and the last error.
func (e *TimeoutError) Unwrap() []error {
	if e.Last == nil {
		return []error{context.DeadlineExceeded}
	}
	return []error{context.DeadlineExceeded, e.Last}
}

// InterruptedError is what Until returns when the caller's context ends
// first. It matches the context's error (context.Canceled on Ctrl-C) and
// the last error with errors.Is and errors.As.
type InterruptedError struct {
	// What was awaited.
	What string
	// Cause is the caller's context error.
	Cause error
	// Last is the last reason the condition did not hold, or nil.
	Last error
}

func (e *InterruptedError) Error() string {
	msg := fmt.Sprintf("waiting for %s: %v", e.What, e.Cause)
	if e.Last != nil {
		msg += " (last error: " + e.Last.Error() + ")"
	}
	return msg
}

// Unwrap gives the context's error and the last error.
func (e *InterruptedError) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Cause}
	}
	return []error{e.Cause, e.Last}
}

// Until runs check at once and then every interval until it returns nil,
// timeout passes, or ctx ends. check gets a context that ends with the
// wait, so a slow check is cut short too. It returns nil when the
// condition held, the error inside Stop when check gave up, a
// *TimeoutError when timeout passed and an *InterruptedError when ctx
// ended. what names the condition in those errors ("member-2 to serve").
// A timeout of zero or less means no timeout of its own: only ctx ends the
// wait.
func Until(ctx context.Context, what string, interval, timeout time.Duration, check Check) error {
	var last error
	condition := func(pctx context.Context) (bool, error) {
		err := check(pctx)
		if err == nil {
			return true, nil
		}
		// A check cut short by the end of the wait says only that, even
		// when it would give up on such an error: the wait ends as a
		// timeout or an interruption, with the reason from before.
		cut := pctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
		var stop *stopError
		if errors.As(err, &stop) {
			if !cut {
				return false, err
			}
			err = stop.err
		}
		if !cut || last == nil {
			last = err
		}
		return false, nil
	}
	var err error
	if timeout > 0 {
		err = wait.PollUntilContextTimeout(ctx, interval, timeout, true, condition)
	} else {
		err = wait.PollUntilContextCancel(ctx, interval, true, condition)
	}
	if err == nil {
		return nil
	}
	var stop *stopError
	if errors.As(err, &stop) {
		return stop.err
	}
	if ctx.Err() != nil {
		return &InterruptedError{What: what, Cause: ctx.Err(), Last: last}
	}
	if wait.Interrupted(err) {
		return &TimeoutError{What: what, After: timeout, Last: last}
	}
	return err
}

// Last gives the last reason the condition did not hold when err is a
// wait's timeout, and err itself otherwise (an interruption stays one).
// A caller with its own words for running out of time, such as a change
// etcd kept refusing, puts them around that reason.
func Last(err error) error {
	var te *TimeoutError
	if errors.As(err, &te) && te.Last != nil {
		return te.Last
	}
	return err
}
