package cmd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

// overwrite writes n values of size bytes twice and deletes them, leaving
// free pages behind.
func overwrite(t *testing.T, cli *clientv3.Client, n, size int) {
	t.Helper()
	ctx := context.Background()
	val := strings.Repeat("x", size)
	for round := 0; round < 2; round++ {
		for i := range n {
			if _, err := cli.Put(ctx, fmt.Sprintf("/data/%04d", i), val); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := cli.Delete(ctx, "/data/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}

func TestDefragCommand(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()
	overwrite(t, c.Client(), 150, 10<<10)

	t.Log("--dry-run lists every member with a reason and changes nothing")
	out, stderr, code, err := cmdtest.Run(t, append(conn, "defrag", "--all", "--dry-run", "-o", "json")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d, %v", code, err)
	}
	var plan maintenance.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("dry run -o json: %v\n%s", err, out)
	}
	if len(plan.Targets()) != 3 || !plan.Steps[2].Leader || !strings.Contains(stderr, "dry run: would defragment") {
		t.Fatalf("dry run plan %+v, stderr %q: want 3 targets, leader last", plan.Steps, stderr)
	}
	out, _, _, _ = cmdtest.Run(t, append(conn, "defrag", "--all", "--dry-run", "-o", "json")...)
	var again maintenance.Plan
	_ = json.Unmarshal([]byte(out), &again)
	for i := range plan.Steps {
		if again.Steps[i].DBSize < plan.Steps[i].DBSize {
			t.Errorf("%s shrank after a dry run: %d -> %d", plan.Steps[i].Name, plan.Steps[i].DBSize, again.Steps[i].DBSize)
		}
	}

	t.Log("The default rule finds nothing to do on a small cluster")
	_, stderr, code, _ = cmdtest.Run(t, append(conn, "defrag", "--yes")...)
	if code != 0 || !strings.Contains(stderr, "no member needs defragmentation") {
		t.Errorf("defrag by the default rule: exit %d, stderr %q", code, stderr)
	}

	t.Log("Without --yes and without a terminal it refuses")
	_, _, code, err = cmdtest.Run(t, append(conn, "defrag", "--all")...)
	if code != 1 || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("defrag without --yes: exit %d, %v", code, err)
	}

	t.Log("--yes: every member defragmented, the leader last, bytes reclaimed")
	out, stderr, code, err = cmdtest.Run(t, append(conn, "defrag", "--all", "--compact", "--yes", "--wait", "100ms", "-o", "json")...)
	if code != 0 {
		t.Fatalf("defrag: exit %d, %v\n%s", code, err, stderr)
	}
	var report maintenance.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("defrag -o json: %v\n%s", err, out)
	}
	if report.Defragmented != 3 || report.Reclaimed <= 0 || report.CompactedRevision == 0 {
		t.Errorf("report %+v: want 3 defragmented after compaction, bytes reclaimed", report)
	}
	if strings.Count(stderr, ": defragmented in ") != 3 || !strings.Contains(stderr, "compacted the keyspace to revision") {
		t.Errorf("progress on stderr should report the compaction and each member:\n%s", stderr)
	}
	lines := strings.Split(stderr, "\n")
	var last string
	for _, l := range lines {
		if strings.Contains(l, ": defragmenting (") {
			last = strings.SplitN(l, ":", 2)[0]
		}
	}
	if last != plan.Steps[2].Name {
		t.Errorf("last member defragmented %s, want the leader %s:\n%s", last, plan.Steps[2].Name, stderr)
	}

	t.Log("Table output ends with the bytes reclaimed")
	out, _, code, _ = cmdtest.Run(t, append(conn, "defrag", "--all", "--yes", "--wait", "0s")...)
	if code != 0 || !strings.HasPrefix(out, "NAME ") || !strings.Contains(out, "reclaimed on 3 member(s)") {
		t.Errorf("defrag table: exit %d\n%s", code, out)
	}

	t.Log("A member down: refused with exit 5 unless --force")
	c.Stop(0)
	_, _, code, err = cmdtest.Run(t, append(conn, "defrag", "--all", "--yes", "--dial-timeout", "1s")...)
	if code != cmdutil.ExitUnhealthy || !strings.Contains(err.Error(), "member-1") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("defrag with member-1 down: exit %d, %v; want 5 naming member-1 and --force", code, err)
	}
	out, _, code, err = cmdtest.Run(t, append(conn, "defrag", "--all", "--yes", "--force", "--wait", "0s", "--dial-timeout", "1s", "-o", "json")...)
	report = maintenance.Report{}
	_ = json.Unmarshal([]byte(out), &report)
	if code != 0 || report.Defragmented != 2 || report.Members[0].Action != maintenance.ActionSkipped {
		t.Errorf("defrag --force with member-1 down: exit %d, %v, %+v; want member-1 skipped, 2 defragmented", code, err, report)
	}
}

func TestMaintenanceUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"defrag", "--all", "--rule", "true"}, "--all and --rule contradict"},
		{[]string{"defrag", "--rule", "dbSize >"}, `rule "dbSize >"`},
		{[]string{"defrag", "--rule", "nosuchvar > 1"}, "unknown name nosuchvar"},
		{[]string{"defrag", "-o", "wide"}, `unknown output format "wide"`},
		{[]string{"compact", "--keep", "5", "--rev", "9"}, "--keep and --rev contradict"},
		{[]string{"compact", "--keep", "-1"}, "must not be negative"},
		{[]string{"alarm", "list", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"check", "consistency", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, code, err := cmdtest.Run(t, tt.args...)
			if code == 0 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, error %v; want non-zero with %q", code, err, tt.want)
			}
		})
	}
}

func TestCompactCommand(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	conn := c.ConnectArgs()
	cli := c.Client()
	ctx := context.Background()
	for i := range 30 {
		if _, err := cli.Put(ctx, "k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code, err := cmdtest.Run(t, append(conn, "compact", "--keep", "10", "--dry-run")...)
	if code != 0 || !strings.Contains(out, "dry run: would compact to revision 21 (the cluster is at 31)") {
		t.Fatalf("compact --dry-run: exit %d, %v\n%s", code, err, out)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(2)); err != nil {
		t.Errorf("a dry run compacted: %v", err)
	}
	if _, _, code, err := cmdtest.Run(t, append(conn, "compact", "--keep", "10")...); code != 1 || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("compact without --yes: exit %d, %v", code, err)
	}
	out, _, code, err = cmdtest.Run(t, append(conn, "compact", "--keep", "10", "--physical", "--yes")...)
	if code != 0 || !strings.Contains(out, "compacted to revision 21") {
		t.Fatalf("compact: exit %d, %v\n%s", code, err, out)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(20)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("revision 20 after compacting to 21: %v, want compacted", err)
	}
	out, _, code, _ = cmdtest.Run(t, append(conn, "compact", "--rev", "5", "--yes")...)
	if code != 0 || !strings.Contains(out, "already compacted") {
		t.Errorf("compacting below the compaction: exit %d\n%s", code, out)
	}
	if _, _, code, err := cmdtest.Run(t, append(conn, "compact", "--rev", "9999", "--yes")...); code != 1 || !strings.Contains(err.Error(), "in the future") {
		t.Errorf("compact to a future revision: exit %d, %v", code, err)
	}
}

func TestAlarmRecoverAndConsistencyCommands(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithQuotaBackendBytes(4<<20))
	conn := c.ConnectArgs()
	cli := c.Client()

	if _, stderr, code, _ := cmdtest.Run(t, append(conn, "alarm", "list")...); code != 0 || !strings.Contains(stderr, "no alarm is active") {
		t.Errorf("alarm list on a healthy cluster: exit %d, %q", code, stderr)
	}
	if out, stderr, code, err := cmdtest.Run(t, append(conn, "check", "consistency")...); code != 0 || strings.Count(out, "member-") != 3 || !strings.Contains(stderr, "all 3 members agree") {
		t.Errorf("check consistency: exit %d, %v\n%s%s", code, err, out, stderr)
	}

	t.Log("Fill the 4 MiB quota until etcd refuses writes with NOSPACE")
	etcdtest.FillToNoSpace(t, cli)
	out, _, code, err := cmdtest.Run(t, append(conn, "alarm", "list")...)
	if code != cmdutil.ExitUnhealthy || !strings.Contains(out, "NOSPACE") || !strings.Contains(err.Error(), "NOSPACE on member-") {
		t.Fatalf("alarm list under NOSPACE: exit %d, %v\n%s", code, err, out)
	}
	out, _, code, _ = cmdtest.Run(t, append(conn, "alarm", "recover", "--dry-run")...)
	if code != 0 || !strings.Contains(out, "alarm(s) active: NOSPACE on member-") {
		t.Errorf("alarm recover --dry-run: exit %d\n%s", code, out)
	}
	if _, _, code, _ := cmdtest.Run(t, append(conn, "alarm", "list")...); code != cmdutil.ExitUnhealthy {
		t.Errorf("the dry run disarmed the alarm")
	}

	t.Log("alarm recover: compact, defragment each member, disarm, each step reported")
	out, stderr, code, err := cmdtest.Run(t, append(conn, "alarm", "recover", "--yes", "--wait", "100ms")...)
	if code != 0 {
		t.Fatalf("alarm recover: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	steps := []string{"step 1/4: compacted to revision", "step 2/4: 3 members defragmented", "step 3/4", "step 4/4: no alarm left"}
	prev := -1
	for _, s := range steps {
		i := strings.Index(stderr, s)
		if i < prev {
			t.Errorf("step %q missing or out of order:\n%s", s, stderr)
		}
		prev = i
	}
	if !strings.Contains(out, "recovered:") {
		t.Errorf("alarm recover output:\n%s", out)
	}
	if _, err := cli.Put(context.Background(), "/after", "ok"); err != nil {
		t.Errorf("write after recover: %v", err)
	}
	if _, _, code, _ := cmdtest.Run(t, append(conn, "alarm", "list")...); code != 0 {
		t.Errorf("alarm list after recover: exit %d", code)
	}
	if out, _, code, _ := cmdtest.Run(t, append(conn, "alarm", "recover", "--yes")...); code != 0 || !strings.Contains(out, "nothing to recover") {
		t.Errorf("recover with no alarm: exit %d\n%s", code, out)
	}

	t.Log("A write behind raft's back on member-2: check consistency names it, exit 5")
	c.Server(1).Server.KV().Put([]byte("/corrupt"), []byte("x"), 0)
	if _, err := cli.Put(context.Background(), "/real", "y"); err != nil {
		t.Fatal(err)
	}
	_, _, code, err = cmdtest.Run(t, append(conn, "check", "consistency")...)
	if code != cmdutil.ExitUnhealthy || !strings.Contains(err.Error(), "member-1, member-3: hash") || !strings.Contains(err.Error(), "member-2: hash") {
		t.Errorf("check consistency with member-2 corrupted: exit %d, %v", code, err)
	}
}
