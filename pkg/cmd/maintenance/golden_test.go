package maintenance

import (
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

func TestPlanTableGolden(t *testing.T) {
	headers, rows := PlanTable(&maintenance.Plan{Rule: maintenance.DefaultRule, Steps: []maintenance.Step{
		{Name: "cp-1", ID: "8e9e05c52164694d", Endpoint: "https://10.0.0.11:2379", Leader: true, DBSize: 524_288_000, DBSizeInUse: 104_857_600, DBQuota: 2_147_483_648, Defrag: true, Reason: "dbSize - dbSizeInUse > 200*MiB: 524 MB, 419 MB free"},
		{Name: "cp-2", ID: "91bc3c398fb3c146", Endpoint: "https://10.0.0.12:2379", DBSize: 25_165_824, DBSizeInUse: 24_000_000, DBQuota: 2_147_483_648, Reason: "rule false: 25 MB, 1.2 MB free"},
		{Name: "cp-3", ID: "fd422379fda50e48", Endpoint: "https://10.0.0.13:2379", Learner: true, DBSize: 4096, DBSizeInUse: 4096, Reason: "learner: etcd serves no defragment request to learners"},
	}})
	golden.AssertTable(t, "defrag-plan.golden", headers, rows)
}

func TestReportTableGolden(t *testing.T) {
	headers, rows := ReportTable(&maintenance.Report{Members: []maintenance.MemberResult{
		{Name: "cp-2", ID: "91bc3c398fb3c146", Action: maintenance.ActionDefragmented, SizeBefore: 524_288_000, SizeAfter: 104_857_600, Reclaimed: 419_430_400, Took: 3400 * time.Millisecond},
		{Name: "cp-3", ID: "fd422379fda50e48", Action: maintenance.ActionSkipped, Reason: "learner: etcd serves no defragment request to learners"},
		{Name: "cp-1", ID: "8e9e05c52164694d", Action: maintenance.ActionNotReached},
	}})
	golden.AssertTable(t, "defrag-report.golden", headers, rows)
}

func TestConsistencyTableGolden(t *testing.T) {
	headers, rows := ConsistencyTable(&maintenance.Consistency{Revision: 1021, Members: []maintenance.MemberHash{
		{Name: "cp-1", ID: "8e9e05c52164694d", Endpoint: "https://10.0.0.11:2379", Hash: 0x5d1f0c3a, CompactRevision: 900},
		{Name: "cp-2", ID: "91bc3c398fb3c146", Endpoint: "https://10.0.0.12:2379", Hash: 0x5d1f0c3a},
		{Name: "cp-3", ID: "fd422379fda50e48", Endpoint: "https://10.0.0.13:2379", Error: "connection refused"},
		{Name: "cp-4", ID: "2c5e1a4e3e46a0b7", Endpoint: "https://10.0.0.14:2379", Skipped: "learner"},
	}})
	golden.AssertTable(t, "consistency.golden", headers, rows)
}

func TestAlarmTableGolden(t *testing.T) {
	headers, rows := AlarmTable([]maintenance.Alarm{
		{Member: "cp-1", MemberID: "8e9e05c52164694d", Alarm: "NOSPACE"},
		{Member: "cp-3", MemberID: "fd422379fda50e48", Alarm: "CORRUPT"},
	})
	golden.AssertTable(t, "alarms.golden", headers, rows)
}
