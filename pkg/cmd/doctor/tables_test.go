package doctor_test

import (
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/doctor"
)

func TestReportTableGolden(t *testing.T) {
	r := &doctor.Report{Errors: 1, Warnings: 1, Findings: []doctor.Finding{
		{Severity: doctor.Error, Check: "reachable", Member: "cp-3", Message: "cp-3 does not answer: connection refused", Fix: "kubectl etcd member list; check the etcd pod on cp-3"},
		{Severity: doctor.Warning, Check: "fragmentation", Member: "cp-1", Message: "cp-1 holds 419 MB of free pages (524 MB file, 105 MB in use)", Fix: "kubectl etcd defrag"},
		{Severity: doctor.OK, Check: "quorum", Message: "2 of 3 voters healthy, quorum is 2"},
	}}
	golden.AssertTable(t, "report.golden", doctor.Headers, r.Rows())
}
