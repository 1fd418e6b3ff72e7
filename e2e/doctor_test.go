package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// doctorFindings runs doctor -o json and returns the findings of one check.
func doctorFindings(t *testing.T, r result, check string) []doctor.Finding {
	t.Helper()
	var report doctor.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("doctor -o json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	var out []doctor.Finding
	for _, f := range report.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

// TestDoctorDiskAndLeaderChangesAgainstRealEtcd reads the disk histograms
// and leader-change counters from real members' /metrics. The disk here is
// whatever the test machine has, so the thresholds are set on either side
// of it rather than faking a slow disk; leader changes are real ones,
// made with move-leader.
func TestDoctorDiskAndLeaderChangesAgainstRealEtcd(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))
	conn := c.ConnectArgs()
	cli := c.Client()
	for i := range 150 {
		mustPut(t, cli, fmt.Sprintf("/doctor/%03d", i), "v")
	}
	doctorJSON := func(args ...string) result {
		return plugin(t, nil, append(append(conn, "doctor", "-o", "json"), args...)...)
	}

	t.Log("Generous thresholds: the disks pass, no leader changed; warnings only, exit 0")
	r := doctorJSON("--sample-window", "0", "--wal-fsync-threshold", "1m", "--backend-commit-threshold", "1m")
	if disk := doctorFindings(t, r, "disk"); r.code != 0 || len(disk) != 1 || disk[0].Severity != doctor.OK || !strings.Contains(disk[0].Message, "member-3 WAL fsync") {
		t.Errorf("disk with 1m thresholds: exit %d, %+v", r.code, disk)
	}
	if lc := doctorFindings(t, r, "leader-changes"); len(lc) != 1 || lc[0].Severity != doctor.OK {
		t.Errorf("leader changes of a fresh cluster: %+v", lc)
	}

	t.Log("A threshold below any real fsync: every member's disk is reported slow, by name, with the fix")
	r = doctorJSON("--sample-window", "0", "--wal-fsync-threshold", "1ns")
	slow := map[string]bool{}
	for _, f := range doctorFindings(t, r, "disk") {
		if f.Severity == doctor.Warning && strings.Contains(f.Message, "p99 WAL fsync") && strings.Contains(f.Fix, "fio") {
			slow[f.Member] = true
		}
	}
	if r.code != 0 || len(slow) != 3 {
		t.Errorf("WAL fsync threshold 1ns: exit %d, slow members %v; want all 3:\n%s", r.code, slow, r.stdout)
	}

	t.Log("Leadership moved while the doctor watches: reported as a leader change during the window")
	scrapes := scrapeCounter(t, c)
	watching := startPlugin(t, append(conn, "doctor", "-o", "json", "--sample-window", "8s")...)
	scrapes.waitScraped(t)
	moveLeader(t, conn)
	r = watching.wait()
	lc := doctorFindings(t, r, "leader-changes")
	if len(lc) == 0 || lc[0].Severity != doctor.Warning || !strings.Contains(lc[0].Message, "the leader changed during the 8s the doctor watched") {
		t.Errorf("leader moved during the window: %+v", lc)
	}

	t.Log("Leadership moved three more times: flapping since the members started")
	for range 3 {
		moveLeader(t, conn)
	}
	r = doctorJSON("--sample-window", "0")
	lc = doctorFindings(t, r, "leader-changes")
	if len(lc) != 1 || lc[0].Severity != doctor.Warning || lc[0].Member == "" || !strings.Contains(lc[0].Message, "has seen 5 leader changes") || !strings.Contains(lc[0].Fix, "--election-timeout") {
		t.Errorf("after 4 leader moves: %+v", lc)
	}
	c.WaitHealthy(30 * time.Second)
}

func moveLeader(t *testing.T, conn []string) {
	t.Helper()
	if r := plugin(t, nil, append(conn, "member", "move-leader", "--yes")...); r.code != 0 || !strings.Contains(r.stdout, "Leadership moved") {
		t.Fatalf("move-leader: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// scrapes counts the reads of every member's /metrics, from etcd's own
// promhttp_metric_handler_requests_total, so a test can tell when another
// program (the doctor taking its first sample) has read them.
type scrapes struct {
	cfg  *connect.Config
	eps  []string
	base []float64
	own  []float64
}

func scrapeCounter(t *testing.T, c *etcdtest.Process) *scrapes {
	t.Helper()
	s := &scrapes{cfg: c.Config()}
	for _, m := range c.State.Members {
		v, err := s.read(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		s.eps, s.base, s.own = append(s.eps, m.ClientURL), append(s.base, v), append(s.own, 1)
	}
	return s
}

func (s *scrapes) read(ep string) (float64, error) {
	families, err := cluster.ScrapeMetrics(context.Background(), s.cfg, ep)
	if err != nil {
		return 0, err
	}
	for _, m := range families["promhttp_metric_handler_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" && l.GetValue() == "200" {
				return m.GetCounter().GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("%s/metrics has no promhttp_metric_handler_requests_total{code=\"200\"}", ep)
}

// waitScraped waits until someone other than s read every member's
// metrics. A read counts once it is answered, so each answer counts the
// reads before it, s's own included.
func (s *scrapes) waitScraped(t *testing.T) {
	t.Helper()
	done := make([]bool, len(s.eps))
	err := poll.Until(context.Background(), "the doctor to read every member's metrics", 50*time.Millisecond, 30*time.Second, func(context.Context) error {
		for i, ep := range s.eps {
			if done[i] {
				continue
			}
			v, err := s.read(ep)
			if err != nil {
				return err
			}
			done[i] = v-s.base[i]-s.own[i] >= 1
			s.own[i]++
			if !done[i] {
				return fmt.Errorf("%s: not read yet", ep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
