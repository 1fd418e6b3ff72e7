package snapshot

import (
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

var fileStatus = snapshot.FileStatus{
	Path: "/var/backups/etcd/etcd-snapshot-20261125T120000Z-rev1234.db.zst", Compression: snapshot.Zstd,
	FileSize: 3_221_225, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	HashCheck: snapshot.HashOK, Hash: 0x7a1c55e2, Revision: 1234, TotalKeys: 871, TotalSize: 25_165_824, StorageVersion: "3.7.0",
}

func TestStatusTableGolden(t *testing.T) {
	headers, rows := StatusTable(&fileStatus)
	golden.AssertTable(t, "status.golden", headers, rows)
}

func TestSaveRowsGolden(t *testing.T) {
	res := &snapshot.Result{
		FileStatus: fileStatus, EtcdVersion: "3.7.3", Member: "cp-2", MemberID: "91bc3c398fb3c146",
		Endpoint: "https://10.0.0.12:2379", ClusterID: "cdf818194e3a8c32", Taken: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		MetadataFile: fileStatus.Path + ".json", Pruned: []string{"/var/backups/etcd/etcd-snapshot-20261118T120000Z-rev1001.db.zst"},
		Verified: snapshot.VerifyFull,
	}
	golden.AssertTable(t, "save-full.golden", []string{"FIELD", "VALUE"}, SaveRows(res))
	res.Verified, res.Compression, res.MetadataFile, res.Pruned = snapshot.VerifyQuick, "", "", nil
	res.EtcdVersion, res.StorageVersion = "", ""
	golden.AssertTable(t, "save-quick.golden", []string{"FIELD", "VALUE"}, SaveRows(res))
}

// BumpedRestore is a restore of etcd.db with its revision bumped, into a
// two-member cluster: the summary tests here and in snapshot_test share it.
func BumpedRestore() *snapshot.RestoreResult {
	return &snapshot.RestoreResult{
		Snapshot: snapshot.FileStatus{Path: "etcd.db", Revision: 1234, HashCheck: snapshot.HashOK, StorageVersion: "3.6.0"},
		DataDir:  "/var/lib/etcd-restored", Name: "node-1", PeerURLs: []string{"https://10.0.0.1:2380"},
		InitialCluster: "node-1=https://10.0.0.1:2380,node-2=https://10.0.0.2:2380", InitialClusterToken: "etcd-cluster",
		Revision: 1000001234, NeedsEtcd: "3.6",
	}
}

func TestRestoreSummaryGolden(t *testing.T) {
	res := BumpedRestore()
	golden.Assert(t, "restore-bumped.golden", RestoreSummary(res, 1000000000, true))
	res.Revision, res.NeedsEtcd, res.Snapshot.StorageVersion, res.InitialCluster = 1234, "", "", ""
	golden.Assert(t, "restore-kept.golden", RestoreSummary(res, 0, false))
}
