package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// Alarm names etcd raises.
const (
	AlarmNoSpace = "NOSPACE"
	AlarmCorrupt = "CORRUPT"
)

// Alarm is one active alarm on one member.
type Alarm struct {
	Member   string `json:"member"`
	MemberID string `json:"memberID"`
	Alarm    string `json:"alarm"`
}

// ListAlarms returns the active alarms, with member names, sorted.
func ListAlarms(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) ([]Alarm, error) {
	members, err := cluster.ListMembers(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, m := range members {
		names[m.ID] = memberName(m)
	}
	rctx, cancel := cfg.WithCommandTimeout(ctx)
	defer cancel()
	resp, err := cli.AlarmList(rctx)
	if err != nil {
		return nil, fmt.Errorf("listing alarms: %w", err)
	}
	var out []Alarm
	for _, a := range resp.Alarms {
		id := cluster.FormatID(a.MemberID)
		name := names[id]
		if name == "" {
			name = id
		}
		out = append(out, Alarm{Member: name, MemberID: id, Alarm: a.Alarm.String()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Member != out[j].Member {
			return out[i].Member < out[j].Member
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out, nil
}

// Disarm clears the given alarms, each on its member.
func Disarm(ctx context.Context, cfg *connect.Config, cli *clientv3.Client, alarms []Alarm) error {
	var errs []string
	for _, a := range alarms {
		id, err := parseID(a.MemberID)
		if err != nil {
			return err
		}
		typ, ok := etcdserverpb.AlarmType_value[a.Alarm]
		if !ok {
			return fmt.Errorf("unknown alarm %q", a.Alarm)
		}
		rctx, cancel := cfg.WithCommandTimeout(ctx)
		_, err = cli.AlarmDisarm(rctx, &clientv3.AlarmMember{MemberID: id, Alarm: etcdserverpb.AlarmType(typ)})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("disarming %s on %s: %v", a.Alarm, a.Member, err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Recovery brings a cluster back from NOSPACE the way etcd's maintenance
// guide says: compact, defragment every member one at a time, disarm.
type Recovery struct {
	Config *connect.Config
	Client *clientv3.Client
	// Wait and Timeout are the defragmentation's (see Defragmenter).
	Wait    time.Duration
	Timeout time.Duration
	// Progress receives one line per step.
	Progress func(string)
}

// RecoveryReport sums up a recovery.
type RecoveryReport struct {
	Alarms            []Alarm `json:"alarms"`
	CompactedRevision int64   `json:"compactedRevision,omitempty"`
	Defrag            *Report `json:"defrag,omitempty"`
	Disarmed          bool    `json:"disarmed"`
}

func (r *Recovery) progress(format string, args ...any) {
	if r.Progress != nil {
		r.Progress(fmt.Sprintf(format, args...))
	}
}

// PlanRecovery returns the alarms a recovery would clear. Only NOSPACE is
// recovered this way: a CORRUPT alarm means members disagree, and freeing
// space would hide that, so it is refused.
func PlanRecovery(ctx context.Context, cfg *connect.Config, cli *clientv3.Client) ([]Alarm, error) {
	alarms, err := ListAlarms(ctx, cfg, cli)
	if err != nil {
		return nil, err
	}
	for _, a := range alarms {
		if a.Alarm != AlarmNoSpace {
			return alarms, fmt.Errorf("%s alarm on %s: only NOSPACE is recovered by compaction and defragmentation; run 'kubectl etcd check consistency' and restore the damaged member", a.Alarm, a.Member)
		}
	}
	return alarms, nil
}

// Run recovers from the NOSPACE alarms given by PlanRecovery, reporting
// each step; it stops at the first step that fails and leaves the alarm
// armed, so writes stay refused until the space is really back.
func (r *Recovery) Run(ctx context.Context, alarms []Alarm) (*RecoveryReport, error) {
	rep := &RecoveryReport{Alarms: alarms}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultDefragTimeout
	}
	r.progress("step 1/4: compacting the keyspace to the current revision")
	rev, err := CompactTo(ctx, r.Config, r.Client, 0, timeout)
	if err != nil {
		return rep, fmt.Errorf("step 1/4 (compact): %w; the alarm stays armed", err)
	}
	rep.CompactedRevision = rev
	r.progress("step 1/4: compacted to revision %d", rev)

	r.progress("step 2/4: defragmenting every member, one at a time")
	d := &Defragmenter{
		Config: r.Config, Client: r.Client, Wait: r.Wait, Timeout: r.Timeout,
		AllowAlarms: []string{AlarmNoSpace}, Progress: r.Progress,
	}
	plan, err := d.Plan(ctx)
	if err != nil {
		return rep, fmt.Errorf("step 2/4 (defragment): %w; the alarm stays armed", err)
	}
	rep.Defrag, err = d.Run(ctx, plan)
	if err != nil {
		return rep, fmt.Errorf("step 2/4 (defragment): %w; the alarm stays armed", err)
	}
	r.progress("step 2/4: %d members defragmented, %s reclaimed", rep.Defrag.Defragmented, output.Bytes(rep.Defrag.Reclaimed))

	r.progress("step 3/4: checking that every member is back under its quota")
	statuses, err := cluster.Collect(ctx, r.Config, r.Client)
	if err != nil {
		return rep, fmt.Errorf("step 3/4 (check sizes): %w; the alarm stays armed", err)
	}
	for _, s := range statuses {
		// etcd raises NOSPACE again at the next write above the quota.
		if s.DBQuota > 0 && s.DBSizeInUse >= s.DBQuota {
			return rep, fmt.Errorf("step 3/4 (check sizes): %s still uses %s of its %s quota after compaction and defragmentation: delete data or raise --quota-backend-bytes; the alarm stays armed", memberName(s.Member), output.Bytes(s.DBSizeInUse), output.Bytes(s.DBQuota))
		}
	}

	// Each member raises NOSPACE when its own backend passes the quota, so
	// a member may have raised it after the plan was made: with every
	// member back under its quota (step 3), disarm those too.
	now, err := ListAlarms(ctx, r.Config, r.Client)
	if err != nil {
		return rep, fmt.Errorf("step 4/4 (disarm): %w", err)
	}
	alarms = withLaterAlarms(alarms, now)
	r.progress("step 4/4: disarming %d alarm(s)", len(alarms))
	if err := Disarm(ctx, r.Config, r.Client, alarms); err != nil {
		return rep, fmt.Errorf("step 4/4 (disarm): %w", err)
	}
	left, err := ListAlarms(ctx, r.Config, r.Client)
	if err != nil {
		return rep, fmt.Errorf("step 4/4 (disarm): %w", err)
	}
	if len(left) > 0 {
		var names []string
		for _, a := range left {
			names = append(names, a.Alarm+" on "+a.Member)
		}
		return rep, fmt.Errorf("step 4/4 (disarm): still armed: %s", strings.Join(names, ", "))
	}
	rep.Disarmed = true
	r.progress("step 4/4: no alarm left; writes are accepted again")
	return rep, nil
}

// withLaterAlarms adds to planned the alarms in now of a kind planned has,
// raised by other members since the plan.
func withLaterAlarms(planned, now []Alarm) []Alarm {
	kinds, seen := map[string]bool{}, map[Alarm]bool{}
	for _, a := range planned {
		kinds[a.Alarm], seen[a] = true, true
	}
	out := append([]Alarm(nil), planned...)
	for _, a := range now {
		if kinds[a.Alarm] && !seen[a] {
			out, seen[a] = append(out, a), true
		}
	}
	return out
}
