package members

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// Views turns collected statuses into what the preflight reads.
func Views(statuses []cluster.MemberStatus) []View {
	out := make([]View, len(statuses))
	for i, s := range statuses {
		out[i] = View{
			ID:           s.ID,
			Name:         s.Name,
			Learner:      s.Learner,
			Started:      s.Started,
			Healthy:      s.Healthy(),
			Leader:       s.Leader,
			AppliedIndex: s.RaftAppliedIndex,
			Reason:       strings.Join(s.Errors, ", "),
			Endpoint:     s.Endpoint,
		}
	}
	return out
}

// Resolve finds the member named ref, or else the member whose hex ID is
// ref. Names are matched exactly; a name two members share, or no match at
// all, is an error that lists the members so the user can pick by ID.
func Resolve(members []cluster.Member, ref string) (cluster.Member, error) {
	var byName []cluster.Member
	for _, m := range members {
		if m.Name == ref {
			byName = append(byName, m)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
	default:
		return cluster.Member{}, fmt.Errorf("member name %q is ambiguous: %d members have it; name one by ID (members: %s)", ref, len(byName), List(members))
	}
	want := strings.TrimPrefix(strings.ToLower(ref), "0x")
	for _, m := range members {
		if m.ID == want {
			return m, nil
		}
	}
	return cluster.Member{}, fmt.Errorf("no member named or with ID %q (members: %s)", ref, List(members))
}

// List names every member for an error message: "m1 (id), m2 (id)".
func List(members []cluster.Member) string {
	var parts []string
	for _, m := range members {
		parts = append(parts, View{ID: m.ID, Name: m.Name}.Label())
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// ValidatePeerURLs checks that each URL is http(s)://host:port, as etcd
// requires of peer URLs.
func ValidatePeerURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("--peer-urls is required")
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("peer URL %q is not valid: want https://HOST:PORT (the member's --initial-advertise-peer-urls, port 2380 by default)", raw)
		}
	}
	return nil
}

// ParseID reads a member ID printed in hex.
func ParseID(id string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(id, "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("member ID %q is not hex", id)
	}
	return v, nil
}

// Operator runs membership changes against one cluster.
type Operator struct {
	Config *connect.Config
	Client *clientv3.Client
	// Progress receives one line per step of a long operation; may be nil.
	Progress io.Writer
	// PromoteTimeout bounds the wait for a learner to catch up.
	PromoteTimeout time.Duration
	// RetryInterval is the pause between promotion attempts (default 1s).
	RetryInterval time.Duration
}

func (o *Operator) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Collect asks every member for its status. Whether a member is a learner
// is taken from the member list, which is the cluster's word: a member just
// promoted may still call itself a learner until it applies the change.
func (o *Operator) Collect(ctx context.Context) ([]cluster.MemberStatus, error) {
	statuses, err := cluster.Collect(ctx, o.Config, o.Client)
	if err != nil {
		return nil, err
	}
	list, err := cluster.ListMembers(ctx, o.Config, o.Client)
	if err != nil {
		return nil, err
	}
	learner := map[string]bool{}
	for _, m := range list {
		learner[m.ID] = m.Learner
	}
	for i := range statuses {
		if l, ok := learner[statuses[i].ID]; ok {
			statuses[i].Learner = l
		}
	}
	return statuses, nil
}

// AddResult is a member just added, with what it needs to start.
type AddResult struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Learner bool   `json:"learner"`
	// InitialCluster is the --initial-cluster value the new member must
	// start with (with --initial-cluster-state=existing).
	InitialCluster string `json:"initialCluster"`
}

// Add adds a member, as a learner unless voter.
func (o *Operator) Add(ctx context.Context, name string, peerURLs []string, voter bool) (*AddResult, error) {
	var resp *clientv3.MemberAddResponse
	err := o.retryUnhealthy(ctx, func(rctx context.Context) (err error) {
		if voter {
			resp, err = o.Client.MemberAdd(rctx, peerURLs)
		} else {
			resp, err = o.Client.MemberAddAsLearner(rctx, peerURLs)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("adding member %s: %w", name, err)
	}
	res := &AddResult{ID: cluster.FormatID(resp.Member.ID), Name: name, Learner: !voter}
	var initial []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == resp.Member.ID {
			n = name
		}
		if n == "" {
			continue // another member that has not started yet
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	sort.Strings(initial)
	res.InitialCluster = strings.Join(initial, ",")
	return res, nil
}

// Remove removes target. When it leads, leadership moves to transferee
// first, so the cluster does not stall in an election.
func (o *Operator) Remove(ctx context.Context, target View, transferee *View) error {
	if transferee != nil {
		if err := o.MoveLeader(ctx, *transferee); err != nil {
			return fmt.Errorf("moving leadership away from %s before removing it: %w", target.Label(), err)
		}
	}
	id, err := ParseID(target.ID)
	if err != nil {
		return err
	}
	// Ask another member: the removed one stops as soon as it applies its
	// own removal, and may do so before it answers ("server stopped").
	cli := o.Client
	var others []string
	for _, ep := range o.Config.Endpoints {
		if ep != target.Endpoint {
			others = append(others, ep)
		}
	}
	if len(others) > 0 && len(others) < len(o.Config.Endpoints) {
		if c, err := o.Config.ClientFor(others...); err == nil {
			defer c.Close()
			cli = c
		}
	}
	err = o.retryUnhealthy(ctx, func(rctx context.Context) error {
		_, err := cli.MemberRemove(rctx, id)
		return err
	})
	if err != nil && o.gone(ctx, target.ID) {
		o.progress("The request for removal failed (%v), but %s is no longer a member: removed", err, target.Label())
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing member %s: %w", target.Label(), err)
	}
	return nil
}

// gone reports whether the member list, read now, lacks the member with ID
// id; false when it cannot be read.
func (o *Operator) gone(ctx context.Context, id string) bool {
	list, err := cluster.ListMembers(ctx, o.Config, o.Client)
	if err != nil {
		return false
	}
	for _, m := range list {
		if m.ID == id {
			return false
		}
	}
	return true
}

// Update changes the peer URLs of a member.
func (o *Operator) Update(ctx context.Context, target View, peerURLs []string) error {
	id, err := ParseID(target.ID)
	if err != nil {
		return err
	}
	if err := o.retryUnhealthy(ctx, func(rctx context.Context) error {
		_, err := o.Client.MemberUpdate(rctx, id, peerURLs)
		return err
	}); err != nil {
		return fmt.Errorf("updating member %s: %w", target.Label(), err)
	}
	return nil
}

// MoveLeader asks the current leader to hand leadership to the member to,
// then checks that it leads.
func (o *Operator) MoveLeader(ctx context.Context, to View) error {
	toID, err := ParseID(to.ID)
	if err != nil {
		return err
	}
	statuses, err := o.Collect(ctx)
	if err != nil {
		return err
	}
	var leader *cluster.MemberStatus
	for i := range statuses {
		if statuses[i].Leader {
			leader = &statuses[i]
		}
	}
	if leader == nil {
		return errors.New("no member reports itself leader: the cluster has no quorum or is electing one")
	}
	if leader.ID == to.ID {
		return nil
	}
	// MoveLeader must be sent to the leader itself.
	cli, err := o.Config.ClientFor(leader.Endpoint)
	if err != nil {
		return err
	}
	defer cli.Close()
	o.progress("Moving leadership from %s to %s", View{ID: leader.ID, Name: leader.Name}.Label(), to.Label())
	// The leader waits for the transfer, up to an election timeout or so.
	rctx, cancel := context.WithTimeout(ctx, o.Config.CommandTimeout+10*time.Second)
	defer cancel()
	if _, err := cli.MoveLeader(rctx, toID); err != nil {
		return fmt.Errorf("moving leadership to %s via %s: %w", to.Label(), leader.Endpoint, err)
	}
	return o.waitLeader(ctx, to, 10*time.Second)
}

func (o *Operator) waitLeader(ctx context.Context, want View, timeout time.Duration) error {
	return poll.Until(ctx, "leadership to move to "+want.Label(), 200*time.Millisecond, timeout, func(ctx context.Context) error {
		if leader := cluster.LeaderID(ctx, o.Config, o.Client); leader != want.ID {
			return fmt.Errorf("leader now: %q", leader)
		}
		return nil
	})
}

// Lag is how far a learner trails the leader.
type Lag struct {
	// LeaderIndex is the leader's committed raft index.
	LeaderIndex uint64
	// LearnerIndex is the learner's applied raft index; 0 when it does not
	// answer.
	LearnerIndex uint64
	// LearnerError says why the learner could not be asked.
	LearnerError string
}

// String describes the lag for a person.
func (l Lag) String() string {
	if l.LearnerError != "" {
		return fmt.Sprintf("the learner does not answer (%s); leader at raft index %d", l.LearnerError, l.LeaderIndex)
	}
	behind := uint64(0)
	if l.LeaderIndex > l.LearnerIndex {
		behind = l.LeaderIndex - l.LearnerIndex
	}
	return fmt.Sprintf("learner at raft index %d, leader at %d: %d entries behind", l.LearnerIndex, l.LeaderIndex, behind)
}

// LagOf measures how far the learner with ID id trails the leader.
func (o *Operator) LagOf(ctx context.Context, id string) Lag {
	statuses, err := o.Collect(ctx)
	if err != nil {
		return Lag{LearnerError: err.Error()}
	}
	var lag Lag
	found := false
	for _, s := range statuses {
		if s.Leader {
			lag.LeaderIndex = s.RaftIndex
		}
		if s.ID == id {
			found = true
			lag.LearnerIndex = s.RaftAppliedIndex
			if !s.Healthy() {
				lag.LearnerError = strings.Join(s.Errors, ", ")
			}
		}
	}
	if !found {
		lag.LearnerError = "no longer a member"
	}
	return lag
}

// unhealthy is in etcd's refusal of a membership change while a voter has
// been connected for less than its health interval (5 seconds): right after
// a member started or reconnected. It passes.
const unhealthy = "unhealthy cluster"

// unhealthyWait bounds the retries of a change etcd calls unhealthy.
const unhealthyWait = 15 * time.Second

// retryUnhealthy runs fn with the command timeout, again while etcd says
// the cluster is unhealthy, for up to unhealthyWait.
func (o *Operator) retryUnhealthy(ctx context.Context, fn func(context.Context) error) error {
	attempts := 0
	err := poll.Until(ctx, "etcd to accept the change", time.Second, unhealthyWait, func(ctx context.Context) error {
		if attempts++; attempts > 1 {
			o.progress("etcd says the cluster is unhealthy (a peer connected less than 5s ago, or one is down); retrying")
		}
		rctx, cancel := o.Config.WithCommandTimeout(ctx)
		err := fn(rctx)
		cancel()
		if err != nil && !strings.Contains(err.Error(), unhealthy) {
			return poll.Stop(err)
		}
		return err
	})
	// Callers put the change's own words around etcd's refusal.
	return poll.Last(err)
}

// notInSync is in the server's answer to promoting a learner that trails.
const notInSync = "in sync with leader"

// Promote promotes a learner to a voter, retrying while the server says it
// is not yet in sync with the leader, until PromoteTimeout. Each retry
// reports how far behind the learner is.
func (o *Operator) Promote(ctx context.Context, target View) error {
	id, err := ParseID(target.ID)
	if err != nil {
		return err
	}
	timeout := o.PromoteTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	interval := o.RetryInterval
	if interval <= 0 {
		interval = time.Second
	}
	attempt := 0
	var lag Lag
	err = poll.Until(ctx, "learner "+target.Label()+" to catch up", interval, timeout, func(ctx context.Context) error {
		attempt++
		rctx, cancel := o.Config.WithCommandTimeout(ctx)
		_, err := o.Client.MemberPromote(rctx, id)
		cancel()
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), notInSync) && !strings.Contains(err.Error(), unhealthy) {
			return poll.Stop(fmt.Errorf("promoting member %s: %w", target.Label(), err))
		}
		lag = o.LagOf(ctx, target.ID)
		o.progress("Waiting for learner %s to catch up (attempt %d): %s", target.Label(), attempt, lag)
		return err
	})
	var te *poll.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("promoting member %s: not in sync with the leader after %s (%s); the cluster is unchanged: check the member's log and network, then retry, or remove it with 'kubectl etcd member remove %s'",
			target.Label(), timeout, lag, target.ID)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("promoting member %s: %w", target.Label(), err)
	}
	return err
}
