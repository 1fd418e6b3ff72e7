package stats

import (
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/stats"
)

var fixed = &stats.Stats{
	Keys: 1204, Bytes: 9_871_234, OldBytes: 31_337_000,
	Groups: []stats.Group{
		{Resource: "events", Namespace: "prod", Count: 812, Bytes: 6_100_000, OldBytes: 25_000_000},
		{Resource: "pods", Namespace: "prod", Count: 301, Bytes: 3_500_000, OldBytes: 6_000_000},
		{Resource: "configmaps", Namespace: "kube-system", Count: 91, Bytes: 271_234, OldBytes: 337_000},
	},
	Largest: []stats.KeySize{{Key: "/registry/configmaps/kube-system/kubeadm-config", Bytes: 48_211}, {Key: "/registry/pods/prod/web-7d4b9c-x2x8k", Bytes: 21_004}},
}

func TestTableGolden(t *testing.T) {
	headers, rows := Table(fixed, false, false)
	golden.AssertTable(t, "stats.golden", headers, rows)
	headers, rows = Table(fixed, true, true)
	golden.AssertTable(t, "stats-by-namespace-snapshot.golden", headers, rows)
	headers, rows = LargestTable(fixed)
	golden.AssertTable(t, "largest.golden", headers, rows)
}
