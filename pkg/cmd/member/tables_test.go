package member

import (
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

func TestListTableGolden(t *testing.T) {
	infos := []MemberInfo{
		{Member: cluster.Member{ID: "8e9e05c52164694d", Name: "cp-1", Started: true, PeerURLs: []string{"https://10.0.0.11:2380"}, ClientURLs: []string{"https://10.0.0.11:2379"}, Endpoint: "https://10.0.0.11:2379"},
			Leader: true, Version: "3.7.3", RaftIndex: 1021, RaftAppliedIndex: 1021, DBSize: 25_165_824, Node: "cp-1", Pod: "etcd-cp-1"},
		{Member: cluster.Member{ID: "91bc3c398fb3c146", Name: "cp-2", Started: true, Learner: true, PeerURLs: []string{"https://10.0.0.12:2380"}, ClientURLs: []string{"https://10.0.0.12:2379", "https://cp-2:2379"}, Endpoint: "https://10.0.0.12:2379"},
			Version: "3.7.3", RaftIndex: 1021, RaftAppliedIndex: 1019, DBSize: 24_576, Errors: []string{"learner trails the leader"}},
		{Member: cluster.Member{ID: "2c5e1a4e3e46a0b7", Learner: true, PeerURLs: []string{"https://10.0.0.14:2380"}}, Errors: []string{"not started: added to the cluster but has not joined yet"}},
	}
	headers, rows := ListTable(infos, false)
	golden.AssertTable(t, "list.golden", headers, rows)
	headers, rows = ListTable(infos, true)
	golden.AssertTable(t, "list-wide.golden", headers, rows)
}
