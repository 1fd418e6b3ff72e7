package status

import (
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// statuses are a leader, a learner that answers, and a member that is down.
var statuses = []cluster.MemberStatus{
	{Member: cluster.Member{Name: "cp-1", ID: "8e9e05c52164694d", PeerURLs: []string{"https://10.0.0.11:2380"}, ClientURLs: []string{"https://10.0.0.11:2379"}, Started: true, Endpoint: "https://10.0.0.11:2379"},
		Version: "3.7.3", StorageVersion: "3.7.0", DBSize: 25_165_824, DBSizeInUse: 12_582_912, DBQuota: 2_147_483_648, Leader: true, RaftTerm: 4, RaftIndex: 1021, RaftAppliedIndex: 1021},
	{Member: cluster.Member{Name: "cp-2", ID: "91bc3c398fb3c146", PeerURLs: []string{"https://10.0.0.12:2380", "https://cp-2:2380"}, Learner: true, Started: true, Endpoint: "https://10.0.0.12:2379"},
		Version: "3.7.3", StorageVersion: "3.7.0", DBSize: 24_576, DBSizeInUse: 20_480, DBQuota: 2_147_483_648, RaftTerm: 4, RaftIndex: 1021, RaftAppliedIndex: 1019},
	{Member: cluster.Member{Name: "cp-3", ID: "fd422379fda50e48", PeerURLs: []string{"https://10.0.0.13:2380"}, Started: true, Endpoint: "https://10.0.0.13:2379"},
		Errors: []string{"dial tcp 10.0.0.13:2379: connect: connection refused"}},
	{Member: cluster.Member{ID: "2c5e1a4e3e46a0b7", PeerURLs: []string{"https://10.0.0.14:2380"}, Learner: true},
		Errors: []string{"not started: added to the cluster but has not joined yet"}},
}

func TestStatusTableGolden(t *testing.T) {
	headers, rows := StatusTable(statuses, false)
	golden.AssertTable(t, "status.golden", headers, rows)
	headers, rows = StatusTable(statuses, true)
	golden.AssertTable(t, "status-wide.golden", headers, rows)
}

func TestHealthTableGolden(t *testing.T) {
	headers, rows := HealthTable([]cluster.Health{
		{Name: "cp-1", ID: "8e9e05c52164694d", Endpoint: "https://10.0.0.11:2379", Healthy: true, Took: 2345678 * time.Nanosecond},
		{Name: "cp-2", ID: "91bc3c398fb3c146", Endpoint: "https://10.0.0.12:2379", Took: 5 * time.Second, Error: "context deadline exceeded"},
		{ID: "2c5e1a4e3e46a0b7", Error: "not started"},
	})
	golden.AssertTable(t, "health.golden", headers, rows)
}
