package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

// fillAndFree writes about 3 MB, overwrites it and deletes half, so the
// databases hold free pages and old revisions.
func fillAndFree(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := context.Background()
	val := strings.Repeat("x", 10<<10)
	for round := 0; round < 2; round++ {
		for i := range 150 {
			if _, err := cli.Put(ctx, fmt.Sprintf("/e2e/%04d", i), val); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := cli.Delete(ctx, "/e2e/00", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}

func countKeys(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

func TestRollingDefragAgainstRealEtcd(t *testing.T) {
	etcdtest.ForEachVersion(t, func(t *testing.T, version string) {
		c := etcdtest.StartProcesses(t, version)
		conn := c.ConnectArgs()
		cli := c.Client()
		fillAndFree(t, cli)

		t.Log("A dry run names every member, the leader last, and changes nothing")
		r := plugin(t, nil, append(conn, "defrag", "--all", "--dry-run", "-o", "json")...)
		var plan maintenance.Plan
		if err := json.Unmarshal([]byte(r.stdout), &plan); r.code != 0 || err != nil {
			t.Fatalf("dry run: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		if len(plan.Targets()) != 3 || !plan.Steps[2].Leader {
			t.Fatalf("plan %+v: want 3 targets, leader last", plan.Steps)
		}
		// These members run with etcd's default feature gates: they
		// keep taking requests while they defragment.
		if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], strings.Join(plan.Targets(), ", ")) || !strings.Contains(plan.Notes[0], "StopGRPCServiceOnDefrag=true") {
			t.Errorf("dry run notes %q: want one naming %v and the feature gate that turns clients away", plan.Notes, plan.Targets())
		}

		t.Log("Writers write through every endpoint during a rolling defrag with compaction; none fails")
		writers := etcdtest.StartOverwriters(t, cli, 2, 20, 10*time.Millisecond)
		r = plugin(t, nil, append(conn, "defrag", "--all", "--compact", "--yes", "--wait", "500ms", "-o", "json")...)
		writes, failures := writers.Finish()
		for _, f := range failures {
			t.Logf("write failed: %s", f)
		}
		var report maintenance.Report
		if err := json.Unmarshal([]byte(r.stdout), &report); r.code != 0 || err != nil {
			t.Fatalf("defrag: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		if len(failures) > 0 || writes == 0 {
			t.Errorf("%d of %d writes failed during the rolling defrag", len(failures), writes+len(failures))
		}
		for _, m := range report.Members {
			if m.Action != maintenance.ActionDefragmented || m.Reclaimed <= 0 {
				t.Errorf("%s: %s, %d bytes reclaimed; want defragmented with bytes reclaimed", m.Name, m.Action, m.Reclaimed)
			}
		}
		var order []string
		for _, l := range strings.Split(r.stderr, "\n") {
			if name, _, ok := strings.Cut(l, ": defragmenting ("); ok {
				order = append(order, name)
			}
		}
		if len(order) != 3 || order[2] != plan.Steps[2].Name {
			t.Errorf("defragmented in order %v, want the leader %s last", order, plan.Steps[2].Name)
		}
		t.Logf("%d writes, none failed; %d bytes reclaimed", writes, report.Reclaimed)

		t.Log("Every member still holds the same data")
		if r := plugin(t, nil, append(conn, "check", "consistency")...); r.code != 0 {
			t.Errorf("check consistency: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// pluginWatch runs kubectl-etcd and calls onLine with each stderr line as
// it is printed, so a test can act in the middle of a long operation.
func pluginWatch(t *testing.T, onLine func(string), args ...string) result {
	t.Helper()
	cmd := exec.Command(pluginBin, args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	r := watchStderr(t, cmd, func(line string) bool { onLine(line); return false })
	t.Logf("kubectl etcd %s -> exit %d", strings.Join(args, " "), r.code)
	return r
}

// startFilledCluster starts a cluster of the newest etcd release with
// space to free (fillAndFree) and returns it, a client and its key count.
func startFilledCluster(t *testing.T) (*etcdtest.Process, *clientv3.Client, int64) {
	t.Helper()
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	cli := c.Client()
	fillAndFree(t, cli)
	return c, cli, countKeys(t, cli)
}

func TestKillMemberDuringRollingDefrag(t *testing.T) {
	c, cli, keys := startFilledCluster(t)
	conn := c.ConnectArgs()

	t.Log("Kill the first member the moment its defragmentation starts")
	var killed atomic.Value
	start := time.Now()
	r := pluginWatch(t, func(line string) {
		name, _, ok := strings.Cut(line, ": defragmenting (")
		if ok && killed.Load() == nil {
			for i, m := range c.State.Members {
				if m.Name == name {
					c.Kill(i)
					killed.Store(name)
				}
			}
		}
	}, append(conn, "defrag", "--all", "--yes", "--wait", "1s", "--dial-timeout", "1s")...)
	victim, _ := killed.Load().(string)
	if victim == "" {
		t.Fatalf("no member was defragmented:\n%s", r.stderr)
	}
	t.Logf("killed %s; the command said:\n%s", victim, r.stderr)
	if took := time.Since(start); took > 90*time.Second {
		t.Errorf("the command took %s to notice the dead member", took)
	}

	t.Log("The command fails, names the member, says what was not done and how the cluster is")
	if r.code == 0 {
		t.Errorf("defrag with %s killed exited 0", victim)
	}
	if !strings.HasPrefix(r.stderr[strings.LastIndex(strings.TrimSuffix(r.stderr, "\n"), "\n")+1:], "error: ") {
		t.Errorf("last stderr line should be the error:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, victim) || !(strings.Contains(r.stderr, "not defragmented") || strings.Contains(r.stderr, "stopped before defragmenting")) {
		t.Errorf("stderr should name %s and what was left undone:\n%s", victim, r.stderr)
	}
	if !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("stderr should say why: %s is down:\n%s", victim, r.stderr)
	}

	t.Log("The two survivors serve and hold every key")
	health := plugin(t, nil, append(conn, "health", "--dial-timeout", "1s")...)
	if health.code != 5 || !strings.Contains(health.stderr, "1 of 3 members unhealthy: "+victim) {
		t.Errorf("health after the kill: exit %d\n%s%s", health.code, health.stdout, health.stderr)
	}
	if got := countKeys(t, cli); got != keys {
		t.Errorf("%d keys after the kill, %d before", got, keys)
	}

	t.Log("Restarted, the member rejoins and all members agree")
	for i, m := range c.State.Members {
		if m.Name == victim {
			c.Start(i)
		}
	}
	c.WaitHealthy(60 * time.Second)
	if r := plugin(t, nil, append(conn, "check", "consistency")...); r.code != 0 {
		t.Errorf("check consistency after restart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := plugin(t, nil, append(conn, "defrag", "--all", "--yes", "--wait", "0s")...); r.code != 0 {
		t.Errorf("defrag after restart: exit %d\n%s", r.code, r.stderr)
	}
}

func TestPauseMemberDuringDefrag(t *testing.T) {
	c, cli, keys := startFilledCluster(t)
	conn := c.ConnectArgs()

	t.Log("Pause (SIGSTOP) the first member the moment its defragmentation starts: it hangs")
	paused := -1
	start := time.Now()
	r := pluginWatch(t, func(line string) {
		name, _, ok := strings.Cut(line, ": defragmenting (")
		if ok && paused < 0 {
			for i, m := range c.State.Members {
				if m.Name == name {
					c.Pause(i)
					paused = i
				}
			}
		}
	}, append(conn, "defrag", "--all", "--yes", "--wait", "1s", "--dial-timeout", "1s")...)
	if paused < 0 {
		t.Fatalf("no member was defragmented:\n%s", r.stderr)
	}
	victim := c.State.Members[paused].Name
	t.Logf("paused %s; after %s the command said:\n%s", victim, time.Since(start).Round(time.Second), r.stderr)
	if r.code == 0 || !strings.Contains(r.stderr, "error: defragmenting "+victim) || !strings.Contains(r.stderr, "hung") {
		t.Errorf("defrag with %s paused: exit %d, want an error that names it as hung", victim, r.code)
	}
	if took := time.Since(start); took > 90*time.Second {
		t.Errorf("the command took %s to give up on the hung member", took)
	}
	if got := countKeys(t, cli); got != keys {
		t.Errorf("%d keys with %s paused, %d before", got, victim, keys)
	}

	t.Log("Resumed, the member serves again and all members agree")
	c.Resume(paused)
	c.WaitHealthy(60 * time.Second)
	if r := plugin(t, nil, append(conn, "check", "consistency")...); r.code != 0 {
		t.Errorf("check consistency after resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestNoSpaceRecoveryAgainstRealEtcd(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t), etcdtest.WithQuotaBackendBytes(4<<20))
	conn := c.ConnectArgs()
	cli := c.Client()
	etcdtest.FillToNoSpace(t, cli)
	if r := plugin(t, nil, append(conn, "alarm", "list")...); r.code != 5 || !strings.Contains(r.stdout, "NOSPACE") {
		t.Fatalf("alarm list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Log("A plain defrag refuses and points at alarm recover")
	if r := plugin(t, nil, append(conn, "defrag", "--all", "--yes")...); r.code != 5 || !strings.Contains(r.stderr, "alarm recover") {
		t.Errorf("defrag under NOSPACE: exit %d\n%s", r.code, r.stderr)
	}
	r := plugin(t, nil, append(conn, "alarm", "recover", "--yes", "--wait", "200ms")...)
	if r.code != 0 || !strings.Contains(r.stderr, "step 4/4: no alarm left") {
		t.Fatalf("alarm recover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := cli.Put(context.Background(), "/after", "ok"); err != nil {
		t.Errorf("write after recovery: %v", err)
	}
}

// sequentialWriter puts one key after another through cli, each with its
// own deadline, until stop closes; it returns how many writes there were
// and which failed.
func sequentialWriter(cli *clientv3.Client, prefix string, deadline time.Duration, stop <-chan struct{}) func() (writes int, failed []string) {
	done := make(chan struct{})
	var n int
	var errs []string
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			start := time.Now()
			_, err := cli.Put(ctx, fmt.Sprintf("%s/%d", prefix, i%20), "v")
			cancel()
			n++
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s after %s", err, time.Since(start).Round(time.Millisecond)))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() (int, []string) { <-done; return n, errs }
}

// With --feature-gates=StopGRPCServiceOnDefrag=true a member reports
// NOT_SERVING on the gRPC health service while it defragments. A
// health-checked client (connect.Config.HealthCheckedClient) goes to the
// other members; etcd's client as it comes (kube-apiserver's) does not,
// and its requests wait out the defragmentation.
func TestDefragTurnsHealthCheckingClientsAway(t *testing.T) {
	version := etcdtest.NewestVersion(t)
	c := etcdtest.StartProcesses(t, version, etcdtest.WithFeatureGates("StopGRPCServiceOnDefrag=true"))
	conn := c.ConnectArgs()
	cli := c.Client()

	t.Log("Members that turn clients away while they defragment get no note in the plan")
	r := plugin(t, nil, append(conn, "defrag", "--all", "--dry-run", "-o", "json")...)
	var plan maintenance.Plan
	if err := json.Unmarshal([]byte(r.stdout), &plan); r.code != 0 || err != nil {
		t.Fatalf("dry run: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(plan.Notes) != 0 {
		t.Errorf("dry run notes %q: want none, every member stops serving while it defragments", plan.Notes)
	}

	t.Log("About 200 MiB of data: each member's defragmentation copies it and takes a while")
	val := strings.Repeat("x", 1<<20)
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("/big/%04d", i), val)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	cfg := c.Config()
	checkedCli, err := cfg.HealthCheckedClient()
	if err != nil {
		t.Fatal(err)
	}
	defer checkedCli.Close()
	raw, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, TLS: cfg.TLS(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	const deadline = 500 * time.Millisecond
	t.Logf("Two writers, one key after another with a %s deadline, during a rolling defrag", deadline)
	stop := make(chan struct{})
	checked := sequentialWriter(checkedCli, "/writers/health-checked", deadline, stop)
	plain := sequentialWriter(raw, "/writers/plain", deadline, stop)
	r = plugin(t, nil, append(conn, "defrag", "--all", "--yes", "--wait", "1s", "-o", "json")...)
	close(stop)
	checkedWrites, checkedFailed := checked()
	plainWrites, plainFailed := plain()
	var report maintenance.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); r.code != 0 || err != nil {
		t.Fatalf("defrag: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	shortest := time.Hour
	for _, m := range report.Members {
		if m.Action != maintenance.ActionDefragmented {
			t.Errorf("%s: %s (%s); want defragmented", m.Name, m.Action, m.Reason)
		}
		shortest = min(shortest, m.Took)
	}
	t.Logf("defragmentations took %s or more; health-checked client: %d of %d writes failed %q; etcd's plain client: %d of %d failed %q",
		shortest, len(checkedFailed), checkedWrites, checkedFailed, len(plainFailed), plainWrites, plainFailed)
	// A member turns new requests away when its defragmentation starts;
	// the one write the client may have sent it just before waits. So at
	// most one failure per member.
	if len(checkedFailed) > len(report.Members) || checkedWrites == 0 {
		t.Errorf("the health-checked client: %d of %d writes failed (%q); want at most one per member (%d)", len(checkedFailed), checkedWrites, checkedFailed, len(report.Members))
	}
	// The comparison shows what the health check changes, when the
	// defragmentations outlast the deadline (they do on CI's disks).
	if shortest > 2*deadline && len(plainFailed) <= len(checkedFailed) {
		t.Errorf("etcd's plain client failed %d writes, the health-checked one %d: the health check made no difference", len(plainFailed), len(checkedFailed))
	}
}
