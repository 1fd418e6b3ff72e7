package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// Downgrade actions of etcd's downgrade API (etcd 3.6 and later).
const (
	Validate = "validate"
	Enable   = "enable"
	Cancel   = "cancel"
)

// DowngradeActions lists the actions in the order they are used.
var DowngradeActions = []string{Validate, Enable, Cancel}

// DowngradeTarget turns VERSION (3.6 or 3.6.16) into the MAJOR.MINOR
// etcd's downgrade API takes; it refuses anything else.
func DowngradeTarget(v string) (string, error) {
	parsed, err := version.ParseGeneric(strings.TrimPrefix(v, "v"))
	if err != nil || len(v) == 0 {
		return "", fmt.Errorf("%q is not a version: want MAJOR.MINOR such as 3.6", v)
	}
	return fmt.Sprintf("%d.%d", parsed.Major(), parsed.Minor()), nil
}

// Downgrader drives etcd's downgrade API and reports what it waits for.
type Downgrader struct {
	Config *connect.Config
	Client *clientv3.Client
	Log    io.Writer
}

func (d *Downgrader) logf(format string, args ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, format+"\n", args...)
	}
}

// Do runs one action for target (MAJOR.MINOR) and returns the cluster
// version etcd answered with.
func (d *Downgrader) Do(ctx context.Context, action, target string) (string, error) {
	var a clientv3.DowngradeAction
	switch action {
	case Validate:
		a = clientv3.DowngradeValidate
	case Enable:
		a = clientv3.DowngradeEnable
	case Cancel:
		a = clientv3.DowngradeCancel
	default:
		return "", fmt.Errorf("unknown downgrade action %q: want one of %s", action, strings.Join(DowngradeActions, ", "))
	}
	rctx, cancel := d.Config.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := d.Client.Downgrade(rctx, a, target)
	if errors.Is(err, rpctypes.ErrClusterVersionUnavailable) {
		// A cluster just started or just changed members: the leader
		// decides the cluster version a few seconds later.
		return "", fmt.Errorf("downgrade %s %s: the cluster has not decided its version yet (it does a few seconds after a start or a member change); retry in a moment (etcd: %w)", action, target, err)
	}
	if err != nil {
		return "", fmt.Errorf("downgrade %s %s: %w", action, target, err)
	}
	return resp.Version, nil
}

// WaitStorageVersion waits until every member reports storage version
// target (MAJOR.MINOR), printing each member's storage version when it
// changes: after `downgrade enable` the cluster version drops at once and
// each member rewrites its data for the older release; only then may its
// image be changed to that release.
func (d *Downgrader) WaitStorageVersion(ctx context.Context, target string, timeout time.Duration) error {
	seen := map[string]string{}
	err := poll.Until(ctx, "every member to store version "+target, 500*time.Millisecond, timeout, func(ctx context.Context) error {
		statuses, err := cluster.Collect(ctx, d.Config, d.Client)
		if err != nil {
			return err
		}
		var waiting []string
		for _, s := range statuses {
			sv := s.StorageVersion
			if !s.Healthy() {
				sv = "no answer (" + strings.Join(s.Errors, ", ") + ")"
			}
			if seen[s.Name] != sv {
				d.logf("[downgrade] member %s: storage version %s", s.Name, sv)
				seen[s.Name] = sv
			}
			if majorMinor(s.StorageVersion) != target {
				waiting = append(waiting, s.Name+" at "+sv)
			}
		}
		if len(waiting) > 0 {
			return errors.New(strings.Join(waiting, "; "))
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.logf("[downgrade] every member stores version %s: change each node's image to %s with kubectl etcd upgrade --version", target, target)
	return nil
}

func majorMinor(v string) string {
	parsed, err := version.ParseGeneric(v)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d.%d", parsed.Major(), parsed.Minor())
}
