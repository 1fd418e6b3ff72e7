package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// WaitServing waits until every endpoint serves a quorum read, checked as
// the health command checks a member, for a member just (re)started. It
// gives up when timeout passes, when ctx ends, or when giveUp (if not nil,
// asked each round) returns an error, such as a member process that
// exited. The timeout error names each endpoint that does not serve and
// why: refused, hung, no leader.
func WaitServing(ctx context.Context, cfg *connect.Config, endpoints []string, timeout time.Duration, giveUp func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		var failing []string
		for _, ep := range endpoints {
			if h := memberHealth(ctx, cfg, Member{Endpoint: ep, Started: true}); !h.Healthy {
				failing = append(failing, ep+": "+h.Error)
			}
		}
		if len(failing) == 0 {
			return nil
		}
		if giveUp != nil {
			if err := giveUp(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving within %s: %s", timeout, strings.Join(failing, "; "))
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), errors.New(strings.Join(failing, "; ")))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
