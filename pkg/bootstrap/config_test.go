package bootstrap

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

func manifestFlag(t *testing.T, n *e2eNode, name string) string {
	t.Helper()
	m, err := staticpod.Read(n.ManifestPath())
	if err != nil {
		t.Fatal(err)
	}
	return m.Flags[name]
}

func TestRollingConfigSetWithRealEtcd(t *testing.T) {
	vs := etcdtest.Versions(t)
	v := vs[len(vs)-1]
	nodes := upgradeCluster(t, v)
	cfg := allConfig(t, nodes)
	ctx := context.Background()
	const quota = 3 << 30 // given as 3GiB
	before := manifestFlag(t, nodes[0], "quota-backend-bytes")

	t.Log("an election timeout under 5 heartbeats is refused and changes nothing")
	_, err := nodes[0].ConfigSet(ctx, ConfigOptions{Set: map[string]string{"heartbeat-interval": "300"}})
	if err == nil || !strings.Contains(err.Error(), "must be at least 5 times --heartbeat-interval=300") {
		t.Fatalf("heartbeat 300 against the default election timeout = %v, want a refusal", err)
	}

	t.Log("a dry run prints the new manifest and changes nothing")
	dry := &strings.Builder{}
	nodes[0].DryRun, nodes[0].Out = true, dry
	if _, err := nodes[0].ConfigSet(ctx, ConfigOptions{Set: map[string]string{"quota-backend-bytes": "3GiB"}}); err != nil {
		t.Fatalf("dry run: %v\n%s", err, nodes[0].log)
	}
	nodes[0].DryRun = false
	if !strings.Contains(dry.String(), "--quota-backend-bytes=3221225472") || manifestFlag(t, nodes[0], "quota-backend-bytes") != before {
		t.Fatalf("dry run printed %q and left --quota-backend-bytes=%s", dry, manifestFlag(t, nodes[0], "quota-backend-bytes"))
	}

	t.Log("quota-backend-bytes=3GiB on every node at once, a writer throughout: the restart lock serialises them")
	w := etcdtest.StartHealthCheckedWriter(t, cfg, "/registry/writer/", 20*time.Millisecond)
	start := time.Now()
	results, errs := etcdtest.AtOnce(nodes, func(n *e2eNode) (*ConfigResult, error) {
		return n.ConfigSet(ctx, ConfigOptions{Set: map[string]string{"quota-backend-bytes": "3GiB"}, RestartOptions: RestartOptions{Timeout: 90 * time.Second}})
	})
	t.Logf("3 nodes changed in %s", time.Since(start).Round(time.Second))
	checkWriter(t, w, nodes)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("config set on %s: %v\n%s", nodes[i].Name, err, nodes[i].log)
		}
	}
	for i, n := range nodes {
		if got := manifestFlag(t, n, "quota-backend-bytes"); got != "3221225472" {
			t.Errorf("%s manifest has --quota-backend-bytes=%s, want 3221225472", n.Name, got)
		}
		if _, err := os.Stat(filepath.Join(results[i].BackupDir, staticpod.ManifestFileName)); err != nil {
			t.Errorf("%s backup of the old manifest: %v", n.Name, err)
		}
	}
	for _, s := range memberStatuses(t, cfg) {
		if s.DBQuota != quota {
			t.Errorf("member %s reports a quota of %d, want %d", s.Name, s.DBQuota, int64(quota))
		}
	}
	out := nodes[1].log.String()
	for _, want := range []string{FlagChange{Name: "quota-backend-bytes", Old: before, New: "3221225472"}.String(), "Took lock", "serves with a quota of 3221225472 bytes and caught up with the leader", "every member serves"} {
		if !strings.Contains(out, want) {
			t.Errorf("config set progress lacks %q:\n%s", want, out)
		}
	}

	t.Log("the same value again changes nothing, but checks the member as the gate does (a run killed after it wrote the manifest leaves it so)")
	res, err := nodes[0].ConfigSet(ctx, ConfigOptions{Set: map[string]string{"quota-backend-bytes": "3221225472"}})
	if err != nil || len(res.Changes) != 0 || !strings.Contains(nodes[0].log.String(), "already has --quota-backend-bytes=3221225472; checking that cp-1 serves with a quota of 3221225472 bytes and catches up") ||
		!strings.Contains(nodes[0].log.String(), "cp-1 serves with a quota of 3221225472 bytes and caught up with the leader") || !strings.Contains(nodes[0].log.String(), "nothing to do") {
		t.Fatalf("unchanged value = %+v, %v; want the member checked, then nothing to do\n%s", res, err, nodes[0].log)
	}

	t.Log("raft's timing must agree: once cp-1 has one heartbeat, another on cp-2 is refused; the same one passes")
	timing := map[string]string{"heartbeat-interval": "150", "election-timeout": "1500"}
	if _, err := nodes[0].ConfigSet(ctx, ConfigOptions{Set: timing}); err != nil {
		t.Fatalf("config set %v on %s: %v\n%s", timing, nodes[0].Name, err, nodes[0].log)
	}
	if want := "run this change on " + nodes[1].Name + ", " + nodes[2].Name + " too"; !strings.Contains(nodes[0].log.String(), want) {
		t.Errorf("config set of a must-agree flag does not say %q:\n%s", want, nodes[0].log)
	}
	_, err = nodes[1].ConfigSet(ctx, ConfigOptions{Set: map[string]string{"heartbeat-interval": "200", "election-timeout": "1500"}})
	if err == nil || !strings.Contains(err.Error(), "config set gave member "+nodes[0].Name+" --heartbeat-interval=150") {
		t.Fatalf("a second heartbeat on %s = %v, want a refusal naming %s's", nodes[1].Name, err, nodes[0].Name)
	}
	if got := manifestFlag(t, nodes[1], "heartbeat-interval"); got == "200" {
		t.Fatal("the refused change was written")
	}
	if _, err := nodes[1].ConfigSet(ctx, ConfigOptions{Set: timing}); err != nil {
		t.Fatalf("the same timing on %s: %v\n%s", nodes[1].Name, err, nodes[1].log)
	}
	t.Log("the doctor names the member the timing change is still to be made on")
	cli := etcdtest.Client(t, cfg)
	defer cli.Close()
	report := doctor.Diagnose(doctor.Gather(ctx, cfg, cli, doctor.GatherOptions{Now: time.Now()}))
	var timingFinding *doctor.Finding
	for i, f := range report.Findings {
		if f.Check == "raft-timing" && f.Severity == doctor.Warning && strings.Contains(f.Message, "--heartbeat-interval") {
			timingFinding = &report.Findings[i]
		}
	}
	if timingFinding == nil || !strings.Contains(timingFinding.Fix, "config set heartbeat-interval=150 on the node of "+nodes[2].Name) {
		t.Errorf("doctor's raft-timing finding = %+v, want one naming %s:\n%+v", timingFinding, nodes[2].Name, report.Findings)
	}

	t.Log("a metrics URL on a port already in use makes etcd exit: the old manifest goes back, the cluster stays healthy")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	oldMetrics := manifestFlag(t, nodes[2], "listen-metrics-urls")
	res, err = nodes[2].ConfigSet(ctx, ConfigOptions{Set: map[string]string{"listen-metrics-urls": "http://" + busy.Addr().String()}, RestartOptions: RestartOptions{Timeout: 15 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "rolled back to --listen-metrics-urls="+oldMetrics+", which serves") || res == nil || !res.RolledBack {
		t.Fatalf("config set of a busy metrics port = %+v, %v; want a rollback\n%s", res, err, nodes[2].log)
	}
	t.Logf("%v", err)
	if log, _ := os.ReadFile(nodes[2].ManifestPath() + ".etcd.log"); !strings.Contains(string(log), "address already in use") {
		t.Errorf("etcd's log of %s does not say the metrics port was in use:\n%s", nodes[2].Name, log)
	}
	if got := manifestFlag(t, nodes[2], "listen-metrics-urls"); got != oldMetrics {
		t.Fatalf("after the rollback the manifest has --listen-metrics-urls=%s, want %s", got, oldMetrics)
	}
	waitHealthy(t, cfg, 3, 60*time.Second)
}
