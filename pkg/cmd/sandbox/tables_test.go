package sandbox

import (
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/sandbox"
)

func TestMemberTableGolden(t *testing.T) {
	headers, rows := MemberTable([]sandbox.MemberState{
		{Name: "member-1", Endpoint: "https://127.0.0.1:2379", PID: 4242, Running: true, Healthy: true},
		{Name: "member-2", Endpoint: "https://127.0.0.2:2379", PID: 4243, Running: true, Error: "context deadline exceeded"},
		{Name: "member-3", Endpoint: "https://127.0.0.3:2379", Error: "not running"},
	})
	golden.AssertTable(t, "status.golden", headers, rows)
}
