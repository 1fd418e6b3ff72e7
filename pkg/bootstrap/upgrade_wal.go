package bootstrap

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// checkV2Entries refuses an upgrade to etcd 3.7 or later while this node's
// member still holds, in its WAL after its newest raft snapshot, entries
// etcd 3.5 wrote as v2 requests: 3.7 cannot decode them and panics when it
// replays them at start. A cluster born on 3.5 and upgraded to 3.6 has
// them until each member takes a raft snapshot past them, which etcd does
// every --snapshot-count applied entries.
// m is this node's manifest, which names the data directory.
func (n *Node) checkV2Entries(m *staticpod.EtcdManifest, name string, target *version.Version) error {
	if target.Major() != 3 || target.Minor() < 7 {
		return nil
	}
	dataDir, err := m.HostDataDir()
	if err != nil {
		return err
	}
	w, s := datadir.ReadWAL(dataDir)
	switch {
	case w.Error != "":
		n.logf("[upgrade] warning: cannot read the WAL of %s in %s (%s): the entries etcd %d.%d cannot replay are not checked", name, dataDir, w.Error, target.Major(), target.Minor())
		return nil
	case w.V2Entries == 0:
		n.logf("[upgrade] the WAL of %s after its raft snapshot (index %d) holds no v2 entries: etcd %d.%d can replay it", name, s.Index, target.Major(), target.Minor())
		return nil
	}
	every := m.Flags["snapshot-count"]
	if every == "" {
		every = "10000 (the default)"
	}
	return fmt.Errorf("upgrade refused: the WAL of %s in %s still holds %d entries etcd 3.5 wrote as v2 requests after its newest raft snapshot (index %d; the last of them at index %d): etcd %d.%d cannot decode them and panics when it replays them at start (\"unmarshal should never fail\"). etcd 3.6 takes a raft snapshot every --snapshot-count applied entries, here %s: run the upgrade again once this member has taken one past index %d (kubectl etcd doctor --offline on a copy of the data dir, or this preflight, says when)",
		name, dataDir, w.V2Entries, s.Index, w.LastV2Index, target.Major(), target.Minor(), every, w.LastV2Index)
}
