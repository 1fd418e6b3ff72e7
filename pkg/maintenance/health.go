package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// UnhealthyError says the cluster was not healthy enough to go on; commands
// map it to exit code 5.
type UnhealthyError struct {
	Problems []string
	// Doing names what was refused or interrupted.
	Doing string
}

func (e *UnhealthyError) Error() string {
	return fmt.Sprintf("%s: the cluster is not healthy: %s", e.Doing, strings.Join(e.Problems, "; "))
}

// Problems lists what is wrong with the cluster, nothing when it is
// healthy: every member answers Status and knows a leader, no alarm is
// active except those in allowAlarms, and a quorum read succeeds. Learners
// count too (they answer Status), though they serve no quorum read.
func Problems(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, allowAlarms ...string) ([]cluster.MemberStatus, []string, error) {
	statuses, err := cluster.Collect(ctx, cfg, cli)
	if err != nil {
		return nil, nil, err
	}
	var problems []string
	for _, s := range statuses {
		var errs []string
		for _, e := range s.Errors {
			if allowed(e, allowAlarms) {
				continue
			}
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("%s: %s", memberName(s.Member), strings.Join(errs, ", ")))
		}
	}
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	if _, err := cli.Get(rctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		problems = append(problems, fmt.Sprintf("quorum read failed: %v", err))
	}
	return statuses, problems, nil
}

func allowed(memberErr string, alarms []string) bool {
	// Collect reports an alarm twice: from the alarm list ("alarm: NOSPACE")
	// and from the member's Status errors ("memberID:... alarm:NOSPACE").
	for _, a := range alarms {
		if memberErr == "alarm: "+a || strings.HasSuffix(strings.TrimSpace(memberErr), "alarm:"+a) {
			return true
		}
	}
	return false
}

func memberName(m cluster.Member) string {
	if m.Name == "" {
		return m.ID
	}
	return m.Name
}
