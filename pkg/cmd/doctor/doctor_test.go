package doctor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
)

func doctorJSON(t *testing.T, c interface{ ConnectArgs() []string }) (*doctor.Report, int, error) {
	t.Helper()
	// The disks of a shared test machine are as slow as they are: judge
	// them generously here; e2e tests the thresholds.
	out, _, code, err := cmdtest.Run(t, append(c.ConnectArgs(), "doctor", "-o", "json", "--pki-dir", t.TempDir(),
		"--wal-fsync-threshold", "1m", "--backend-commit-threshold", "1m")...)
	r := &doctor.Report{}
	if jerr := json.Unmarshal([]byte(out), r); jerr != nil {
		t.Fatalf("doctor -o json: %v\n%s", jerr, out)
	}
	return r, code, err
}

// TestDoctorHealthyThenMemberStopped runs its members as etcd processes:
// members embedded in one test process share one Prometheus registry, so
// etcd_server_leader_changes_seen_total adds up the elections of every
// cluster the process ran, and a second cluster looks like a flapping one.
func TestDoctorHealthyThenMemberStopped(t *testing.T) {
	c := etcdtest.StartProcesses(t, etcdtest.NewestVersion(t))

	t.Log("a healthy cluster: no error, exit 0, the checks that passed are listed")
	r, code, err := doctorJSON(t, c)
	if code != 0 || r.Errors != 0 {
		t.Fatalf("healthy cluster: exit %d, %v, report %+v", code, err, r)
	}
	for _, check := range []string{"reachable", "quorum", "leader", "raft", "alarms", "quota", "fragmentation", "versions", "consistency", "certificates", "disk", "leader-changes"} {
		if r.Find(doctor.OK, check) == nil {
			t.Errorf("no OK finding for %s: %+v", check, r.Findings)
		}
	}
	out, _, code, _ := cmdtest.Run(t, append(c.ConnectArgs(), "doctor")...)
	if code != 0 || !strings.Contains(out, "SEVERITY") || !strings.Contains(out, "NEXT STEP") {
		t.Errorf("table: exit %d\n%s", code, out)
	}

	t.Log("a member stopped: an error naming it, exit 5")
	name := c.State.Members[2].Name
	c.Stop(2)
	r, code, err = doctorJSON(t, c)
	if code != cmdutil.ExitUnhealthy || err == nil {
		t.Errorf("stopped member: exit %d, %v; want 5", code, err)
	}
	f := r.Find(doctor.Error, "reachable")
	if f == nil || f.Member != name || !strings.Contains(f.Message, name) || !strings.Contains(f.Fix, "member remove "+name) {
		t.Errorf("no error naming %s: %+v", name, r.Findings)
	}
	out, errOut, _, _ := cmdtest.Run(t, append(c.ConnectArgs(), "doctor")...)
	t.Logf("doctor with a member stopped:\n%s%s", out, errOut)
	if q := r.Find(doctor.Warning, "quorum"); q == nil || !strings.Contains(q.Message, "one more failure loses quorum") {
		t.Errorf("no quorum warning: %+v", r.Findings)
	}

	t.Log("a second member stopped: quorum lost, the member list cannot be read, exit 5")
	c.Stop(1)
	r, code, _ = doctorJSON(t, c)
	if code != cmdutil.ExitUnhealthy || r.Find(doctor.Error, "members") == nil {
		t.Errorf("two members stopped: exit %d, %+v", code, r.Findings)
	}
}

func TestDoctorQuotaNearFull(t *testing.T) {
	c := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1), etcdtest.WithQuotaBackendBytes(4<<20))
	cli := c.Client()
	ctx := context.Background()
	value := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		st, err := cli.Status(ctx, c.Config().Endpoints[0])
		if err != nil {
			t.Fatal(err)
		}
		if float64(st.DbSize)/float64(st.DbSizeQuota) > 0.82 {
			break
		}
		if i > 200 {
			t.Fatalf("database %d of %d after %d puts", st.DbSize, st.DbSizeQuota, i)
		}
		if _, err := cli.Put(ctx, "/fill/"+strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), value); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		// The backend commits in batches every 100 ms, and the size
		// Status reports grows only then; without this commit several
		// puts land on a stale size and the last overshoots the quota.
		c.Server(0).Server.Backend().ForceCommit()
	}
	r, code, err := doctorJSON(t, c)
	if code != 0 || r.Errors != 0 {
		t.Errorf("near quota: exit %d, %v; want 0 with warnings: %+v", code, err, r.Findings)
	}
	f := r.Find(doctor.Warning, "quota")
	if f == nil || !strings.Contains(f.Message, "of its quota") || !strings.Contains(f.Fix, "kubectl etcd") {
		t.Errorf("no quota warning: %+v", r.Findings)
	}
}
