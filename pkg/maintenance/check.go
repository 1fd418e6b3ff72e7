package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

func parseID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("member ID %q is not hex: %w", id, err)
	}
	return n, nil
}

// MemberHash is one member's hash of the keyspace at a revision.
type MemberHash struct {
	Name            string `json:"name"`
	ID              string `json:"id"`
	Endpoint        string `json:"endpoint"`
	Hash            uint32 `json:"hash"`
	CompactRevision int64  `json:"compactRevision"`
	// Revision is the member's own revision when it answered.
	Revision int64  `json:"revision"`
	Error    string `json:"error,omitempty"`
	// Skipped says why a member was not asked (a learner, not started).
	Skipped string `json:"skipped,omitempty"`
}

// Consistency is the result of comparing every member's hash.
type Consistency struct {
	// Revision is the revision every member hashed at.
	Revision int64        `json:"revision"`
	Members  []MemberHash `json:"members"`
	// Consistent is true when every member answered with the same hash.
	Consistent bool `json:"consistent"`
	// Differences describe the groups of members that agree, when more than
	// one: "member-1, member-2: hash 1a2b; member-3: hash 3c4d".
	Differences string `json:"differences,omitempty"`
}

// CheckConsistency asks every voting member for HashKV at the same
// revision, the lowest one all of them have applied. Hashes cover history
// since the last compaction, so members that disagree on the compaction
// revision (a compaction in progress) are asked again.
func CheckConsistency(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) (*Consistency, error) {
	members, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	// A compaction between choosing the revision and hashing at it, or one
	// applied by some members only, is no inconsistency: ask again, five
	// times in all; the fifth answer stands.
	var c *Consistency
	attempts := 0
	err = poll.Until(ctx, "members to agree on the compaction revision", hashRetryInterval, 0, func(ctx context.Context) error {
		var err error
		if c, err = hashAll(ctx, cfg, cli, members); err != nil {
			return poll.Stop(err)
		}
		if attempts++; attempts == hashAttempts || (sameCompaction(c.Members) && !raced(c.Members)) {
			return nil
		}
		return errors.New("a compaction raced the hashes")
	})
	if err != nil {
		return nil, err
	}
	groups := map[string][]string{}
	answered := 0
	for _, m := range c.Members {
		if m.Error != "" || m.Skipped != "" {
			continue
		}
		answered++
		key := fmt.Sprintf("hash %x at compaction revision %d", m.Hash, m.CompactRevision)
		groups[key] = append(groups[key], m.Name)
	}
	if len(groups) > 1 {
		var parts []string
		for k, names := range groups {
			parts = append(parts, strings.Join(names, ", ")+": "+k)
		}
		sort.Strings(parts)
		c.Differences = strings.Join(parts, "; ")
	}
	c.Consistent = len(groups) == 1 && answered == countAsked(c.Members)
	return c, nil
}

// Five hashes half a second apart outlast a compaction in progress.
const hashAttempts = 5

var hashRetryInterval = 500 * time.Millisecond

func countAsked(ms []MemberHash) int {
	n := 0
	for _, m := range ms {
		if m.Skipped == "" {
			n++
		}
	}
	return n
}

func raced(ms []MemberHash) bool {
	for _, m := range ms {
		if strings.Contains(m.Error, rpctypes.ErrCompacted.Error()) {
			return true
		}
	}
	return false
}

// sameCompaction reports whether every member that answered hashed since
// the same compaction. A member never compacted answers -1.
func sameCompaction(ms []MemberHash) bool {
	first := true
	var rev int64
	for _, m := range ms {
		if m.Error != "" || m.Skipped != "" {
			continue
		}
		if !first && m.CompactRevision != rev {
			return false
		}
		first, rev = false, m.CompactRevision
	}
	return true
}

func hashAll(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, members []cluster.Member) (*Consistency, error) {
	c := &Consistency{}
	hashes := make([]MemberHash, len(members))
	var asked []int
	for i, m := range members {
		hashes[i] = MemberHash{Name: memberName(m), ID: m.ID, Endpoint: m.Endpoint}
		switch {
		case !m.Started:
			hashes[i].Skipped = "not started"
		case m.Learner:
			hashes[i].Skipped = "learner: etcd serves no HashKV to learners"
		default:
			asked = append(asked, i)
		}
	}
	// The lowest revision every member has applied, so none is asked for
	// a revision it does not have yet.
	var rev int64
	for _, i := range asked {
		h := &hashes[i]
		if _, err := cfg.Probe(ctx, h.Endpoint); err != nil {
			h.Error = err.Error()
			continue
		}
		rctx, cancel := cfg.WithCommandTimeout(ctx)
		resp, err := cli.Status(rctx, h.Endpoint)
		cancel()
		if err != nil {
			h.Error = fmt.Sprintf("status: %v", err)
			continue
		}
		if rev == 0 || resp.Header.Revision < rev {
			rev = resp.Header.Revision
		}
	}
	c.Revision = rev
	var wg sync.WaitGroup
	for _, i := range asked {
		if hashes[i].Error != "" {
			continue
		}
		wg.Add(1)
		go func(h *MemberHash) {
			defer wg.Done()
			// Hashing reads the whole database: allow more than one request's time.
			rctx, cancel := context.WithTimeout(ctx, 10*cfg.CommandTimeout)
			defer cancel()
			resp, err := cli.HashKV(rctx, h.Endpoint, rev)
			if err != nil {
				h.Error = fmt.Sprintf("hashkv at revision %d: %v", rev, err)
				return
			}
			h.Hash, h.CompactRevision, h.Revision = resp.Hash, resp.CompactRevision, resp.Header.Revision
		}(&hashes[i])
	}
	wg.Wait()
	// Members that failed because the caller gave up (Ctrl-C) are no
	// finding about the cluster.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("checking consistency: %w", err)
	}
	c.Members = hashes
	return c, nil
}
