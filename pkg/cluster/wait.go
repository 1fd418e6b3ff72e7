package cluster

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// WaitServing waits until every endpoint serves a quorum read, checked as
// the health command checks a member, for a member just (re)started. It
// gives up when timeout passes, when ctx ends, or when giveUp (if not nil,
// asked each round) returns an error, such as a member process that
// exited. The timeout error names each endpoint that does not serve and
// why: refused, hung, no leader.
func WaitServing(ctx context.Context, cfg *connect.Config, endpoints []string, timeout time.Duration, giveUp func() error) error {
	return poll.Until(ctx, "every member to serve", 250*time.Millisecond, timeout, func(ctx context.Context) error {
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
				return poll.Stop(err)
			}
		}
		return errors.New(strings.Join(failing, "; "))
	})
}
