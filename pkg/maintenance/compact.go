package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// CurrentRevision is the cluster's revision, read with quorum.
func CurrentRevision(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) (int64, error) {
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.Get(rctx, "compaction-revision-probe", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("reading the current revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// CompactionPlan says what a compaction would do.
type CompactionPlan struct {
	// Current is the cluster's revision when planned.
	Current int64 `json:"currentRevision"`
	// Revision is the revision to compact to: history before it goes.
	Revision int64 `json:"revision"`
}

// PlanCompaction picks the revision to compact to: rev when given, else
// the current revision minus keep, so the last keep revisions stay
// readable. It refuses a revision in the future or below 1.
func PlanCompaction(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, keep, rev int64) (*CompactionPlan, error) {
	cur, err := CurrentRevision(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	p := &CompactionPlan{Current: cur, Revision: rev}
	if rev == 0 {
		p.Revision = cur - keep
	}
	switch {
	case rev > cur:
		return nil, fmt.Errorf("revision %d is in the future: the cluster is at revision %d", rev, cur)
	case p.Revision < 1:
		return nil, fmt.Errorf("nothing to compact: the cluster is at revision %d and --keep is %d", cur, keep)
	}
	return p, nil
}

// ErrAlreadyCompacted says the history before a revision is already gone.
var ErrAlreadyCompacted = errors.New("already compacted")

// Compact removes the history before rev on every member. Physical waits
// until every member has freed the space in its database, which a
// following defragmentation needs to give it back.
func Compact(ctx context.Context, cli *clientv3.Client, rev int64, physical bool, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var opts []clientv3.CompactOption
	if physical {
		opts = append(opts, clientv3.WithCompactPhysical())
	}
	_, err := cli.Compact(cctx, rev, opts...)
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("revision %d: %w", rev, ErrAlreadyCompacted)
	}
	if err != nil {
		return fmt.Errorf("compacting to revision %d: %w", rev, err)
	}
	return nil
}

// CompactTo compacts physically to rev, or to the current revision when
// rev is 0, and returns the revision. A revision already compacted is no
// error: the history is gone either way.
func CompactTo(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, rev int64, timeout time.Duration) (int64, error) {
	if rev == 0 {
		cur, err := CurrentRevision(ctx, cfg, cli)
		if err != nil {
			return 0, err
		}
		rev = cur
	}
	if err := Compact(ctx, cli, rev, true, timeout); err != nil && !errors.Is(err, ErrAlreadyCompacted) {
		return 0, err
	}
	return rev, nil
}
