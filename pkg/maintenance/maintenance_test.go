package maintenance_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/storage/mvcc"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

func TestRule(t *testing.T) {
	rule, err := maintenance.CompileRule(maintenance.DefaultRule)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    cluster.MemberStatus
		want bool
	}{
		{"small and tidy", cluster.MemberStatus{DBSize: 10 << 20, DBSizeInUse: 9 << 20, DBQuota: 2 << 30}, false},
		{"near quota", cluster.MemberStatus{DBSize: 1700 << 20, DBSizeInUse: 1700 << 20, DBQuota: 2 << 30}, true},
		{"fragmented", cluster.MemberStatus{DBSize: 500 << 20, DBSizeInUse: 100 << 20, DBQuota: 8 << 30}, true},
		{"no quota reported", cluster.MemberStatus{DBSize: 10 << 20, DBSizeInUse: 1 << 20}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := rule.Eval(tt.s)
			if err != nil || got != tt.want {
				t.Fatalf("Eval = %v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(reason, "free") || !strings.Contains(reason, "rule") {
				t.Errorf("reason %q should give the numbers and the verdict", reason)
			}
		})
	}
	for _, bad := range []string{"dbsize > 1", "dbSize >", `name + 1`, "dbSize"} {
		if _, err := maintenance.CompileRule(bad); err == nil {
			t.Errorf("CompileRule(%q) accepted a broken or non-boolean rule", bad)
		}
	}
	if r, err := maintenance.CompileRule("dbFreeRatio > 0.5 && !leader && name != 'member-1'"); err != nil {
		t.Errorf("every documented variable should compile: %v", err)
	} else if ok, _, _ := r.Eval(cluster.MemberStatus{Member: cluster.Member{Name: "member-2"}, DBSize: 10, DBSizeInUse: 2}); !ok {
		t.Errorf("rule on ratio, leader and name: want true")
	}
}

func TestOrderLeaderLast(t *testing.T) {
	steps := []maintenance.Step{{Name: "b", Leader: true}, {Name: "c"}, {Name: "a", Learner: true}, {Name: "d"}}
	maintenance.OrderLeaderLast(steps)
	var got []string
	for _, s := range steps {
		got = append(got, s.Name)
	}
	if strings.Join(got, ",") != "a,c,d,b" {
		t.Errorf("order %v, want a,c,d,b (by name, leader last)", got)
	}
}

func TestBuildStepsSkipsLearnersAndUnreachableMembers(t *testing.T) {
	member := func(name string) cluster.Member { return cluster.Member{Name: name, ID: name + "-id", Started: true} }
	statuses := []cluster.MemberStatus{
		{Member: member("a"), Version: "3.7.3", Leader: true, DBSize: 300 << 20, DBSizeInUse: 10 << 20, DBQuota: 2 << 30},
		{Member: member("b"), Version: "3.7.3", DBSize: 300 << 20, DBSizeInUse: 10 << 20, DBQuota: 2 << 30},
		{Member: member("c"), Version: "3.7.3", DBSize: 20 << 20, DBSizeInUse: 10 << 20, DBQuota: 2 << 30},
		{Member: func() cluster.Member { m := member("d"); m.Learner = true; return m }(), Version: "3.7.3", DBSize: 300 << 20},
		{Member: member("e"), Errors: []string{"connection refused"}},
	}
	rule, err := maintenance.CompileRule(maintenance.DefaultRule)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := maintenance.BuildSteps(statuses, rule)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": false}
	for _, s := range steps {
		if s.Defrag != want[s.Name] {
			t.Errorf("%s: defrag=%v (%s), want %v", s.Name, s.Defrag, s.Reason, want[s.Name])
		}
	}
	if last := steps[len(steps)-1]; last.Name != "a" {
		t.Errorf("last step %s, want the leader a", last.Name)
	}
	for _, s := range steps {
		switch s.Name {
		case "d":
			if !strings.HasPrefix(s.Reason, "learner:") {
				t.Errorf("learner reason %q", s.Reason)
			}
		case "e":
			if !strings.Contains(s.Reason, "cannot be reached: connection refused") {
				t.Errorf("unreachable reason %q", s.Reason)
			}
		}
	}
}

// churn writes n values of size bytes, overwrites them and deletes half, so
// the database holds pages a compaction and defragmentation give back.
func churn(t *testing.T, cli *clientv3.Client, n, size int) {
	t.Helper()
	val := strings.Repeat("x", size)
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		for i := range n {
			if _, err := cli.Put(ctx, fmt.Sprintf("/churn/%04d", i), val); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := cli.Delete(ctx, "/churn/0", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}

func dbSizes(t *testing.T, c *etcdtest.Embedded) map[string]int64 {
	t.Helper()
	statuses, err := cluster.Collect(context.Background(), c.Config(), c.Client())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range statuses {
		out[s.Name] = s.DBSize
	}
	return out
}

// commitBackends writes every member's pending batch to its database file,
// which etcd otherwise does every 100ms, so the database sizes read next
// are the ones the data makes.
func commitBackends(c *etcdtest.Embedded) {
	for i := range c.State.Members {
		if e := c.Server(i); e != nil {
			e.Server.Backend().ForceCommit()
		}
	}
}

// waitApplied waits until every member serves key from its own store.
func waitApplied(t *testing.T, c *etcdtest.Embedded, key string) {
	t.Helper()
	for i, m := range c.State.Members {
		kv := c.Server(i).Server.KV()
		err := poll.Until(context.Background(), m.Name+" to apply "+key, 10*time.Millisecond, 10*time.Second, func(context.Context) error {
			r, err := kv.Range(context.Background(), []byte(key), nil, mvcc.RangeOptions{})
			if err != nil {
				return err
			}
			if len(r.KVs) == 0 {
				return errors.New("not there yet")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRollingDefragReclaimsSpaceLeaderLastWithoutFailedWrites(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cfg, cli := c.Config(), c.Client()
	churn(t, cli, 200, 10<<10)
	ctx := context.Background()

	t.Log("The plan (a dry run) names every member, the leader last, and changes nothing")
	// A follower may not have applied the churn's last entries yet (on a
	// loaded machine): its database would grow while the plan runs. Raft
	// applies in order, so one more put applied everywhere settles them.
	if _, err := cli.Put(context.Background(), "/churned", "v"); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, c, "/churned")
	commitBackends(c) // so the sizes the plan reads settle
	rev0, _ := maintenance.CurrentRevision(ctx, cfg, cli)
	before := dbSizes(t, c)
	d := &maintenance.Defragmenter{Config: cfg, Client: cli, Compact: true, Wait: 300 * time.Millisecond}
	plan, err := d.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Targets()) != 3 || !plan.Steps[2].Leader {
		t.Fatalf("plan %+v: want 3 targets with the leader last", plan.Steps)
	}
	leader := plan.Steps[2].Name
	if after := dbSizes(t, c); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("planning changed database sizes: %v -> %v", before, after)
	}
	if rev, _ := maintenance.CurrentRevision(ctx, cfg, cli); rev != rev0 {
		t.Errorf("planning changed the revision: %d -> %d", rev0, rev)
	}

	t.Log("Writers keep writing through every endpoint while members are defragmented one by one")
	writers := etcdtest.StartOverwriters(t, cli, 3, 50, 5*time.Millisecond)
	var order []string
	var mu sync.Mutex
	d.Progress = func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if name, ok := strings.CutSuffix(strings.SplitN(line, " (", 2)[0], ": defragmenting"); ok {
			order = append(order, name)
		}
	}
	report, err := d.Run(ctx, plan)
	writes, failures := writers.Finish()
	if err != nil {
		t.Fatalf("rolling defrag: %v", err)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d writes failed during the rolling defrag, first: %v", len(failures), writes+len(failures), failures[0])
	}
	t.Logf("%d writes, none failed; order %v; %d bytes reclaimed", writes, order, report.Reclaimed)
	if len(order) != 3 || order[2] != leader {
		t.Errorf("defragmented in order %v, want the leader %s last", order, leader)
	}
	if report.Defragmented != 3 || report.CompactedRevision == 0 {
		t.Errorf("report %+v: want 3 members defragmented after a compaction", report)
	}
	for _, m := range report.Members {
		if m.Action != maintenance.ActionDefragmented || m.Reclaimed <= 0 {
			t.Errorf("%s: %s, reclaimed %d; want defragmented with bytes reclaimed", m.Name, m.Action, m.Reclaimed)
		}
	}
	after := dbSizes(t, c)
	for name, size := range after {
		if size >= before[name] {
			t.Errorf("%s database %d bytes after, %d before: want smaller", name, size, before[name])
		}
	}
}

func TestDefragMovesLeadershipAndRespectsTheRule(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()

	t.Log("A rule nobody matches: nothing to do")
	rule, err := maintenance.CompileRule("dbSize > 1*GiB")
	if err != nil {
		t.Fatal(err)
	}
	d := &maintenance.Defragmenter{Config: cfg, Client: cli, Rule: rule}
	plan, err := d.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Targets()) != 0 || !strings.Contains(plan.Steps[0].Reason, "does not match rule") {
		t.Fatalf("plan %+v: want no target, each with the rule's verdict", plan.Steps)
	}

	t.Log("--move-leader: leadership moves to a defragmented member before the leader is defragmented")
	d = &maintenance.Defragmenter{Config: cfg, Client: cli, MoveLeader: true}
	plan, err = d.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldLeader := plan.Steps[2].ID
	report, err := d.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	newLeader := cluster.LeaderID(ctx, cfg, cli)
	if report.LeaderMovedTo == "" || newLeader == oldLeader || report.Defragmented != 3 {
		t.Errorf("leader %s -> %s, moved to %q, %d defragmented; want leadership moved and 3 defragmented", oldLeader, newLeader, report.LeaderMovedTo, report.Defragmented)
	}
}

func TestDefragRefusesAnUnhealthyClusterUnlessForced(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()
	c.Stop(1)

	d := &maintenance.Defragmenter{Config: cfg, Client: cli}
	_, err := d.Plan(ctx)
	var ue *maintenance.UnhealthyError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "member-2") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("Plan with member-2 down = %v; want an UnhealthyError naming member-2 and --force", err)
	}

	d.Force = true
	plan, err := d.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	report, err := d.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range report.Members {
		want := maintenance.ActionDefragmented
		if m.Name == "member-2" {
			want = maintenance.ActionSkipped
		}
		if m.Action != want {
			t.Errorf("%s: %s (%s), want %s", m.Name, m.Action, m.Reason, want)
		}
	}
}

func TestCompactKeepsTheLastRevisions(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()
	for i := range 20 {
		if _, err := cli.Put(ctx, "k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := maintenance.PlanCompaction(ctx, cfg, cli, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Revision != p.Current-5 {
		t.Fatalf("plan %+v: want current-5", p)
	}
	if err := maintenance.Compact(ctx, cli, p.Revision, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(p.Revision-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("reading below the compaction: %v, want compacted", err)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(p.Revision)); err != nil {
		t.Errorf("reading at the compaction revision: %v", err)
	}
	if err := maintenance.Compact(ctx, cli, p.Revision, true, time.Minute); !errors.Is(err, maintenance.ErrAlreadyCompacted) {
		t.Errorf("compacting again: %v, want ErrAlreadyCompacted", err)
	}
	if _, err := maintenance.PlanCompaction(ctx, cfg, cli, 0, p.Current+100); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("a future revision: %v, want refused", err)
	}
	if _, err := maintenance.PlanCompaction(ctx, cfg, cli, 1000, 0); err == nil || !strings.Contains(err.Error(), "nothing to compact") {
		t.Errorf("--keep beyond history: %v, want refused", err)
	}
}

func TestNoSpaceRecovery(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithQuotaBackendBytes(4<<20))
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()
	etcdtest.FillToNoSpace(t, cli)

	alarms, err := maintenance.PlanRecovery(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	if len(alarms) == 0 || alarms[0].Alarm != maintenance.AlarmNoSpace || !strings.HasPrefix(alarms[0].Member, "member-") {
		t.Fatalf("alarms %+v: want NOSPACE with a member name", alarms)
	}
	var steps []string
	r := &maintenance.Recovery{Config: cfg, Client: cli, Progress: func(s string) { steps = append(steps, s) }}
	rep, err := r.Run(ctx, alarms)
	if err != nil {
		t.Fatalf("recovery: %v\n%s", err, strings.Join(steps, "\n"))
	}
	if !rep.Disarmed || rep.Defrag.Defragmented != 3 || rep.Defrag.Reclaimed <= 0 {
		t.Errorf("report %+v: want disarmed after 3 members defragmented with space reclaimed", rep)
	}
	for i, want := range []string{"step 1/4", "step 2/4", "step 3/4", "step 4/4"} {
		found := false
		for _, s := range steps {
			found = found || strings.HasPrefix(s, want)
		}
		if !found {
			t.Errorf("step %d not reported:\n%s", i+1, strings.Join(steps, "\n"))
		}
	}
	if _, err := cli.Put(ctx, "/after", "ok"); err != nil {
		t.Errorf("write after recovery: %v", err)
	}
	if left, _ := maintenance.ListAlarms(ctx, cfg, cli); len(left) != 0 {
		t.Errorf("alarms left: %+v", left)
	}
}

func TestCheckConsistencyNamesTheMemberThatDiffers(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	cfg, cli := c.Config(), c.Client()
	ctx := context.Background()
	churn(t, cli, 20, 100)

	res, err := maintenance.CheckConsistency(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Consistent || len(res.Members) != 3 || res.Revision == 0 {
		t.Fatalf("healthy cluster: %+v, want consistent across 3 members", res)
	}

	t.Log("Write behind raft's back into member-3's store: its hash must differ")
	c.Server(2).Server.KV().Put([]byte("/corrupt"), []byte("only on member-3"), 0)
	if _, err := cli.Put(ctx, "/real", "everywhere"); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, c, "/real")
	res, err = maintenance.CheckConsistency(ctx, cfg, cli)
	if err != nil {
		t.Fatal(err)
	}
	if res.Consistent || !strings.Contains(res.Differences, "member-1, member-2: hash") || !strings.Contains(res.Differences, "member-3: hash") {
		t.Errorf("after corrupting member-3: consistent=%v, differences %q; want member-3 set apart", res.Consistent, res.Differences)
	}
}
