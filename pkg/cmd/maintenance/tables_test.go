package maintenance

import (
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
)

func TestReportTable(t *testing.T) {
	r := &maintenance.Report{Members: []maintenance.MemberResult{
		{Name: "member-1", ID: "a1", Action: maintenance.ActionDefragmented, SizeBefore: 25_000_000, SizeAfter: 3_000_000, Reclaimed: 22_000_000, Took: 1200 * time.Millisecond},
		{Name: "member-2", ID: "b2", Action: maintenance.ActionSkipped, Reason: "learner: etcd serves no defragment request to learners"},
		{Name: "member-3", ID: "c3", Action: maintenance.ActionNotReached},
	}}
	headers, rows := ReportTable(r)
	if strings.Join(headers, " ") != "NAME ID ACTION BEFORE AFTER RECLAIMED TOOK REASON" {
		t.Errorf("headers %v", headers)
	}
	want := [][]string{
		{"member-1", "a1", "defragmented", "25 MB", "3.0 MB", "22 MB", "1.2s", "<none>"},
		{"member-2", "b2", "skipped", "-", "-", "-", "-", "learner: etcd serves no defragment request to learners"},
		{"member-3", "c3", "not reached", "-", "-", "-", "-", "<none>"},
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
}

func TestConsistencyTable(t *testing.T) {
	c := &maintenance.Consistency{Revision: 42, Members: []maintenance.MemberHash{
		{Name: "member-1", ID: "a1", Endpoint: "https://127.0.0.1:2379", Hash: 0xbeef, CompactRevision: 7},
		{Name: "member-2", ID: "b2", Endpoint: "https://127.0.0.2:2379", Error: "connection refused"},
		{Name: "member-3", ID: "c3", Skipped: "learner"},
	}}
	_, rows := ConsistencyTable(c)
	if got := strings.Join(rows[0], "|"); got != "member-1|a1|https://127.0.0.1:2379|42|7|beef|<none>" {
		t.Errorf("row 0 = %s", got)
	}
	if rows[1][6] != "connection refused" || rows[1][5] != "-" || rows[2][6] != "skipped: learner" {
		t.Errorf("rows %q", rows[1:])
	}
}
