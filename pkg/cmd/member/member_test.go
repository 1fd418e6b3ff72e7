package member

import (
	"reflect"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

func TestListTable(t *testing.T) {
	infos := []MemberInfo{
		{Member: cluster.Member{ID: "4", Learner: true, PeerURLs: []string{"https://127.0.0.4:2380"}}, Errors: []string{"not started: added to the cluster but has not joined yet"}},
		{Member: cluster.Member{ID: "1", Name: "m1", Started: true, PeerURLs: []string{"https://127.0.0.1:2380"}, ClientURLs: []string{"https://127.0.0.1:2379"}, Endpoint: "https://127.0.0.1:2379"},
			Leader: true, Version: "3.7.3", RaftIndex: 120, RaftAppliedIndex: 118, DBSize: 20480, Node: "cp-1", Pod: "etcd-cp-1"},
	}
	headers, rows := ListTable(infos, false)
	if want := []string{"ID", "NAME", "STARTED", "LEARNER", "LEADER", "PEER URLS", "CLIENT URLS"}; !reflect.DeepEqual(headers, want) {
		t.Errorf("headers %v, want %v", headers, want)
	}
	if want := []string{"4", "<unstarted>", "false", "true", "false", "https://127.0.0.4:2380", "<none>"}; !reflect.DeepEqual(rows[0], want) {
		t.Errorf("row %v, want %v", rows[0], want)
	}
	headers, rows = ListTable(infos, true)
	if len(headers) != 15 || headers[7] != "NODE" || headers[8] != "POD" || headers[11] != "RAFT INDEX" || headers[12] != "APPLIED" {
		t.Errorf("wide headers %v", headers)
	}
	if want := []string{"cp-1", "etcd-cp-1", "https://127.0.0.1:2379", "3.7.3", "120", "118", "20 kB", "<none>"}; !reflect.DeepEqual(rows[1][7:], want) {
		t.Errorf("wide row %v, want ... %v", rows[1], want)
	}
	if want := []string{"<none>", "<none>", "<none>", "<none>", "-", "-", "0 B", "not started: added to the cluster but has not joined yet"}; !reflect.DeepEqual(rows[0][7:], want) {
		t.Errorf("wide row of an unstarted member %v, want ... %v", rows[0], want)
	}
}
