package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// Defaults of a rolling defragmentation.
const (
	// DefaultDefragTimeout bounds one member's defragmentation. etcd ignores
	// the client's deadline and finishes anyway, so this only bounds how long
	// we wait: it is generous because a large database takes minutes.
	DefaultDefragTimeout = 10 * time.Minute
	// DefaultDefragWait lets a member catch up with the leader before the
	// next one goes offline for its own defragmentation.
	DefaultDefragWait = 5 * time.Second
)

// Actions a member result reports.
const (
	ActionDefragmented = "defragmented"
	ActionSkipped      = "skipped"
	ActionFailed       = "failed"
	ActionNotReached   = "not reached"
	ActionWould        = "would defragment"
)

// Defragmenter defragments the members of a cluster one at a time, the
// leader last, with a health check before each member.
type Defragmenter struct {
	Config *connect.Config
	Client *clientv3.Client
	// Rule picks the members that need it; nil picks every member.
	Rule *Rule
	// Compact compacts the keyspace to the current revision first, so the
	// defragmentation gives back the space of old revisions too.
	Compact bool
	// MoveLeader hands leadership to a defragmented member before the
	// leader is defragmented, so the cluster never waits on a busy leader.
	MoveLeader bool
	// Force goes ahead on an unhealthy cluster, skipping members that
	// cannot be reached.
	Force bool
	// Wait is the pause between two members.
	Wait time.Duration
	// Timeout bounds one member's defragmentation (DefaultDefragTimeout when 0).
	Timeout time.Duration
	// AllowAlarms are alarms that do not make the cluster unhealthy here:
	// NOSPACE, while recovering from it.
	AllowAlarms []string
	// Progress receives one line per step, for the user's terminal.
	Progress func(string)
}

// Step is one member in a plan: whether it will be defragmented and why.
type Step struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Endpoint    string `json:"endpoint"`
	Leader      bool   `json:"leader"`
	Learner     bool   `json:"learner"`
	DBSize      int64  `json:"dbSize"`
	DBSizeInUse int64  `json:"dbSizeInUse"`
	DBQuota     int64  `json:"dbQuota"`
	Defrag      bool   `json:"defrag"`
	Reason      string `json:"reason"`
}

// Plan is the order in which members will be defragmented.
type Plan struct {
	Rule string `json:"rule,omitempty"`
	// Problems are health problems that --force chose to ignore.
	Problems []string `json:"problems,omitempty"`
	// Notes say what clients of the cluster will notice.
	Notes []string `json:"notes,omitempty"`
	Steps []Step   `json:"members"`
}

// Targets names the members the plan defragments, in order.
func (p *Plan) Targets() []string {
	var out []string
	for _, s := range p.Steps {
		if s.Defrag {
			out = append(out, s.Name)
		}
	}
	return out
}

// MemberResult is what happened to one member.
type MemberResult struct {
	Name       string        `json:"name"`
	ID         string        `json:"id"`
	Endpoint   string        `json:"endpoint"`
	Action     string        `json:"action"`
	Reason     string        `json:"reason,omitempty"`
	SizeBefore int64         `json:"sizeBefore,omitempty"`
	SizeAfter  int64         `json:"sizeAfter,omitempty"`
	Reclaimed  int64         `json:"reclaimed"`
	Took       time.Duration `json:"took,omitempty"`
}

// Report sums up a rolling defragmentation.
type Report struct {
	// CompactedRevision is the revision compacted to first, 0 when none.
	CompactedRevision int64          `json:"compactedRevision,omitempty"`
	LeaderMovedTo     string         `json:"leaderMovedTo,omitempty"`
	Members           []MemberResult `json:"members"`
	Defragmented      int            `json:"defragmented"`
	Reclaimed         int64          `json:"reclaimed"`
}

func (d *Defragmenter) progress(format string, args ...any) {
	if d.Progress != nil {
		d.Progress(fmt.Sprintf(format, args...))
	}
}

func (d *Defragmenter) timeout() time.Duration {
	if d.Timeout <= 0 {
		return DefaultDefragTimeout
	}
	return d.Timeout
}

// Plan checks the cluster's health and decides who is defragmented, in
// which order: followers by name, the leader last; learners are skipped
// because etcd serves them no defragment request. It changes nothing.
func (d *Defragmenter) Plan(ctx context.Context) (*Plan, error) {
	statuses, problems, err := Problems(ctx, d.Config, d.Client, d.AllowAlarms...)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 && !d.Force {
		doing := "refusing to defragment (--force goes ahead, skipping members that cannot be reached)"
		if strings.Contains(strings.Join(problems, " "), AlarmNoSpace) {
			doing = "refusing to defragment (a NOSPACE alarm is active: 'kubectl etcd alarm recover' compacts, defragments and disarms)"
		}
		return nil, &UnhealthyError{Doing: doing, Problems: problems}
	}
	p := &Plan{Problems: problems}
	if d.Rule != nil {
		p.Rule = d.Rule.Source
	}
	if p.Steps, err = BuildSteps(statuses, d.Rule); err != nil {
		return nil, err
	}
	if blocking := d.blockingMembers(ctx, p.Steps); len(blocking) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%s keep taking requests while they defragment: requests sent there wait until it is done, and writes waiting over etcd's request timeout (7s) fail. "+
			"Members started with --feature-gates=%s=true (etcd 3.6+) turn away clients that check gRPC health meanwhile (kube-apiserver's etcd client does not check)",
			strings.Join(blocking, ", "), cluster.FeatureStopGRPCServiceOnDefrag))
	}
	return p, nil
}

// blockingMembers names the members to defragment whose metrics say they
// do not stop serving while they defragment. Members whose metrics cannot
// be read (no HTTP path to them, etcd before 3.6) are left out: nothing
// is known of them.
func (d *Defragmenter) blockingMembers(ctx context.Context, steps []Step) []string {
	blocking := make([]bool, len(steps))
	var wg sync.WaitGroup
	for i, s := range steps {
		if !s.Defrag || s.Endpoint == "" {
			continue
		}
		wg.Go(func() {
			families, err := cluster.ScrapeMetrics(ctx, d.Config, s.Endpoint)
			if err != nil {
				return
			}
			enabled, known := cluster.FeatureEnabled(families, cluster.FeatureStopGRPCServiceOnDefrag)
			blocking[i] = known && !enabled
		})
	}
	wg.Wait()
	var names []string
	for i, b := range blocking {
		if b {
			names = append(names, steps[i].Name)
		}
	}
	return names
}

// BuildSteps decides for each member whether it is defragmented and why,
// and orders them: followers by name, the leader last. Members that cannot
// be reached and learners are kept, with the reason they are skipped.
func BuildSteps(statuses []cluster.MemberStatus, rule *Rule) ([]Step, error) {
	var steps []Step
	for _, s := range statuses {
		step := Step{
			Name: memberName(s.Member), ID: s.ID, Endpoint: s.Endpoint, Leader: s.Leader, Learner: s.Learner,
			DBSize: s.DBSize, DBSizeInUse: s.DBSizeInUse, DBQuota: s.DBQuota,
		}
		switch {
		case s.Version == "":
			step.Reason = "cannot be reached: " + strings.Join(s.Errors, ", ")
		case s.Learner:
			step.Reason = "learner: etcd serves no defragment request to learners; defragment it once promoted"
		case rule == nil:
			step.Defrag, step.Reason = true, Describe(s)
		default:
			var err error
			step.Defrag, step.Reason, err = rule.Eval(s)
			if err != nil {
				return nil, err
			}
		}
		steps = append(steps, step)
	}
	OrderLeaderLast(steps)
	return steps, nil
}

// OrderLeaderLast sorts steps by name with the leader last, so the member
// whose pause would stall every write is paused once all others are done.
func OrderLeaderLast(steps []Step) {
	slices.SortStableFunc(steps, func(a, b Step) int {
		if a.Leader != b.Leader {
			if a.Leader {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// Run carries out a plan. It stops at the first member that fails, or
// before a member when the cluster is no longer healthy, and says so; the
// report tells what was done either way.
func (d *Defragmenter) Run(ctx context.Context, plan *Plan) (*Report, error) {
	r := &Report{}
	var todo []int
	for _, s := range plan.Steps {
		res := MemberResult{Name: s.Name, ID: s.ID, Endpoint: s.Endpoint, Action: ActionSkipped, Reason: s.Reason}
		if s.Defrag {
			res.Action, res.Reason = ActionNotReached, ""
			todo = append(todo, len(r.Members))
		}
		r.Members = append(r.Members, res)
	}
	if len(todo) == 0 {
		d.progress("no member needs defragmentation")
		return r, nil
	}
	if d.Compact {
		rev, err := CompactTo(ctx, d.Config, d.Client, 0, d.timeout())
		if err != nil {
			return r, err
		}
		r.CompactedRevision = rev
		d.progress("compacted the keyspace to revision %d", rev)
	}
	for n := 0; n < len(todo); n++ {
		// Leadership may have moved since the plan: keep the leader last.
		if leader := cluster.LeaderID(ctx, d.Config, d.Client); leader != "" {
			for k := n; k < len(todo)-1; k++ {
				if r.Members[todo[k]].ID == leader {
					todo = append(append(todo[:k:k], todo[k+1:]...), todo[k])
					break
				}
			}
		}
		m := &r.Members[todo[n]]
		remaining := func() string {
			var names []string
			for _, i := range todo[n:] {
				names = append(names, r.Members[i].Name)
			}
			return strings.Join(names, ", ")
		}
		if !d.Force {
			_, problems, err := Problems(ctx, d.Config, d.Client, d.AllowAlarms...)
			if err != nil {
				problems = []string{err.Error()}
			}
			if len(problems) > 0 {
				d.progress("%s: the cluster is not healthy, stopping", m.Name)
				return r, &UnhealthyError{Doing: "stopped before defragmenting " + remaining(), Problems: problems}
			}
		}
		if d.MoveLeader && m.ID == cluster.LeaderID(ctx, d.Config, d.Client) {
			to, err := d.moveLeader(ctx, r, m)
			if err != nil {
				return r, fmt.Errorf("moving leadership away from %s before defragmenting it: %w (not defragmented: %s)", m.Name, err, remaining())
			}
			r.LeaderMovedTo = to
		}
		if err := d.defragOne(ctx, m); err != nil {
			m.Action, m.Reason = ActionFailed, err.Error()
			if d.Force {
				d.progress("%s: failed, going on (--force): %v", m.Name, err)
				continue
			}
			return r, d.failure(ctx, m, err, todo[n+1:], r)
		}
		r.Defragmented++
		r.Reclaimed += m.Reclaimed
		if n < len(todo)-1 && d.Wait > 0 {
			d.progress("waiting %s before the next member", d.Wait)
			select {
			case <-ctx.Done():
				return r, fmt.Errorf("interrupted before defragmenting %s: %w", r.Members[todo[n+1]].Name, ctx.Err())
			case <-time.After(d.Wait):
			}
		}
	}
	if !d.Force {
		// The last member was checked before, not after: say so if the
		// cluster did not come back whole.
		_, problems, err := Problems(ctx, d.Config, d.Client, d.AllowAlarms...)
		if err != nil {
			problems = []string{err.Error()}
		}
		if len(problems) > 0 {
			return r, &UnhealthyError{Doing: "defragmentation done, but afterwards", Problems: problems}
		}
	}
	return r, nil
}

// failure builds the error of a member whose defragmentation failed: what
// happened, what was not done, and how the cluster is now.
func (d *Defragmenter) failure(ctx context.Context, m *MemberResult, err error, rest []int, r *Report) error {
	var names []string
	for _, i := range rest {
		names = append(names, r.Members[i].Name)
	}
	msg := fmt.Sprintf("defragmenting %s (%s): %v", m.Name, m.Endpoint, err)
	if len(names) > 0 {
		msg += "; stopped, not defragmented: " + strings.Join(names, ", ")
	}
	_, problems, perr := Problems(ctx, d.Config, d.Client, d.AllowAlarms...)
	switch {
	case perr != nil:
		msg += fmt.Sprintf("; cluster state unknown: %v", perr)
	case len(problems) > 0:
		msg += "; the cluster now: " + strings.Join(problems, "; ")
	default:
		msg += "; the cluster is healthy"
	}
	return errors.New(msg)
}

// defragOne defragments one member and waits until it serves again.
func (d *Defragmenter) defragOne(ctx context.Context, m *MemberResult) error {
	before, err := d.memberStatus(ctx, m.Endpoint)
	if err != nil {
		return err
	}
	m.SizeBefore = before.DbSize
	d.progress("%s: defragmenting (%s, %s in use)", m.Name, output.Bytes(before.DbSize), output.Bytes(before.DbSizeInUse))
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, d.timeout())
	lost := d.watch(dctx, cancel, m.Endpoint)
	_, err = d.Client.Defragment(dctx, m.Endpoint)
	cancel()
	if err != nil {
		if lostErr := lost(); lostErr != nil {
			return fmt.Errorf("the member stopped answering during its defragmentation (should it come back, it finishes on its own): %w", lostErr)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s (--timeout); etcd may still be defragmenting it: check 'kubectl etcd status' before retrying", d.timeout())
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted; etcd finishes the defragmentation it started on its own")
		}
		if _, perr := d.Config.Probe(ctx, m.Endpoint); perr != nil {
			return fmt.Errorf("%v; the member no longer answers: %w", err, perr)
		}
		return err
	}
	after, err := d.waitServing(ctx, m.Endpoint)
	if err != nil {
		return fmt.Errorf("defragmented, but the member does not serve again: %w", err)
	}
	m.Took = time.Since(start).Round(time.Millisecond)
	m.SizeAfter = after.DbSize
	m.Reclaimed = max(0, m.SizeBefore-m.SizeAfter)
	m.Action = ActionDefragmented
	d.progress("%s: defragmented in %s: %s -> %s (%s reclaimed)", m.Name, m.Took, output.Bytes(m.SizeBefore), output.Bytes(m.SizeAfter), output.Bytes(m.Reclaimed))
	return nil
}

// A member that refuses connections watchFailures probes in a row has died;
// one that accepts them but does not answer for hangAfter is given up on.
// The second is slower to decide because a member busy with a large
// defragmentation may answer late.
var (
	watchInterval = 2 * time.Second
	watchFailures = 3
	hangAfter     = 30 * time.Second
)

// watch probes the member while its defragmentation runs. The client waits
// for a lost connection to come back until the deadline (minutes), so a
// member that dies or hangs meanwhile would go unnoticed; watch cancels the
// request when the member is down or hung. The returned function gives the
// last probe error when it did.
func (d *Defragmenter) watch(ctx context.Context, cancel context.CancelFunc, ep string) func() error {
	var lost error
	done := make(chan struct{})
	go func() {
		defer close(done)
		failures := 0
		var since time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(watchInterval):
			}
			_, err := d.Config.Probe(ctx, ep)
			if err == nil || ctx.Err() != nil {
				failures = 0
				continue
			}
			if failures == 0 {
				since = time.Now()
			}
			failures++
			if (errors.Is(err, syscall.ECONNREFUSED) && failures >= watchFailures) || time.Since(since) >= hangAfter {
				lost = err
				cancel()
				return
			}
		}
	}()
	return func() error {
		<-done
		return lost
	}
}

func (d *Defragmenter) memberStatus(ctx context.Context, ep string) (*clientv3.StatusResponse, error) {
	rctx, cancel := d.Config.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := d.Client.Status(rctx, ep)
	if err != nil {
		if _, perr := d.Config.Probe(ctx, ep); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("status of %s: %w", ep, err)
	}
	return resp, nil
}

// waitServing waits until the member answers Status and knows a leader.
func (d *Defragmenter) waitServing(ctx context.Context, ep string) (*clientv3.StatusResponse, error) {
	var serving *clientv3.StatusResponse
	err := poll.Until(ctx, ep+" to serve with a leader", 200*time.Millisecond, d.timeout(), func(ctx context.Context) error {
		resp, err := d.memberStatus(ctx, ep)
		if err != nil {
			return err
		}
		if resp.Leader == 0 {
			return errors.New("no leader")
		}
		serving = resp
		return nil
	})
	return serving, err
}

// moveLeader hands leadership from m to another voting member, preferring
// one already defragmented, and waits until the cluster follows it.
func (d *Defragmenter) moveLeader(ctx context.Context, r *Report, m *MemberResult) (string, error) {
	members, err := cluster.ListMembers(ctx, d.Config, d.Client)
	if err != nil {
		return "", err
	}
	var candidates []cluster.Member
	for _, c := range members {
		if c.ID != m.ID && c.Started && !c.Learner {
			candidates = append(candidates, c)
		}
	}
	done := map[string]bool{}
	for _, res := range r.Members {
		done[res.ID] = res.Action == ActionDefragmented
	}
	slices.SortStableFunc(candidates, func(a, b cluster.Member) int {
		if done[a.ID] != done[b.ID] {
			if done[a.ID] {
				return -1
			}
			return 1
		}
		return 0
	})
	for _, c := range candidates {
		if _, err := d.Config.Probe(ctx, c.Endpoint); err != nil {
			continue
		}
		id, err := strconv.ParseUint(c.ID, 16, 64)
		if err != nil {
			return "", err
		}
		cli, err := d.Config.ClientFor(m.Endpoint)
		if err != nil {
			return "", err
		}
		rctx, cancel := d.Config.WithCommandTimeout(ctx)
		_, err = cli.MoveLeader(rctx, id)
		cancel()
		cli.Close()
		if err != nil {
			if errors.Is(err, rpctypes.ErrNotLeader) {
				// Someone else leads now; m can be defragmented as a follower.
				return "", nil
			}
			return "", fmt.Errorf("to %s: %w", c.Name, err)
		}
		if err := poll.Until(ctx, c.Name+" to lead", 100*time.Millisecond, 30*time.Second, func(ctx context.Context) error {
			switch leader := cluster.LeaderID(ctx, d.Config, d.Client); leader {
			case c.ID:
				return nil
			case "":
				return errors.New("no member answers with a leader")
			default:
				return fmt.Errorf("the leader is %s", leader)
			}
		}); err != nil {
			return "", err
		}
		d.progress("%s: moved leadership to %s", m.Name, c.Name)
		return c.Name, nil
	}
	return "", errors.New("no other voting member answers")
}
