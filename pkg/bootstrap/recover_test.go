package bootstrap

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/datadir"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// pastRaftSnapshot runs a three-member cluster in process with a low
// --snapshot-count, writes until member m1's WAL is past a raft snapshot,
// stops it, and returns m1's etcd manifest (the cluster's other members
// are m2 and m3).
func pastRaftSnapshot(t *testing.T) (manifest string) {
	t.Helper()
	root := t.TempDir()
	ports := etcdtest.FreePorts(t, 7)
	names := []string{"m1", "m2", "m3"}
	var initial []string
	for i, n := range names {
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", n, ports[2*i+1]))
	}
	var servers []*embed.Etcd
	for i, n := range names {
		cfg := embed.NewConfig()
		cfg.Name, cfg.Dir = n, filepath.Join(root, n)
		cfg.SnapshotCount = 5
		cfg.Logger, cfg.LogLevel = "zap", "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]))
		pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.ListenMetricsUrls = nil
		cfg.InitialCluster, cfg.InitialClusterToken = strings.Join(initial, ","), "past-snapshot"
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, e)
	}
	stopped := false
	stop := func() {
		if !stopped {
			for _, e := range servers {
				e.Close()
			}
			stopped = true
		}
	}
	t.Cleanup(stop)
	for _, e := range servers {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(time.Minute):
			t.Fatal("the embedded cluster did not serve within a minute")
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0])}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i := range 30 {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("/k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	dir := filepath.Join(root, "m1")
	if snaps, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap")); len(snaps) == 0 {
		t.Fatal("m1 took no raft snapshot: the WAL is not past one, which this test is about")
	}
	if ins := datadir.Inspect(dir); len(ins.WALMembers) != 3 || ins.WALMembers[0].Name != "" {
		t.Fatalf("the WAL past the snapshot names its members (%+v): this test needs it not to", ins.WALMembers)
	}
	pod := staticpod.NewEtcdPod(staticpod.EtcdPodSpec{
		Name: "m1", AdvertiseAddress: "127.0.0.1", DataDir: dir, PKIDir: filepath.Join(root, "pki"),
		ClientPort: ports[0], PeerPort: ports[1], MetricsPort: ports[6],
	})
	data, err := staticpod.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	manifest = filepath.Join(root, "manifests", "etcd.yaml")
	if err := os.MkdirAll(filepath.Dir(manifest), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := staticpod.WriteFile(manifest, data); err != nil {
		t.Fatal(err)
	}
	return manifest
}

// wantNamedSteps wants one join step for m2 and one for m3, by name and
// address, and none for m1 itself.
func wantNamedSteps(t *testing.T, steps []string) {
	t.Helper()
	if len(steps) != 2 {
		t.Fatalf("join steps %q, want one for m2 and one for m3", steps)
	}
	for i, name := range []string{"m2", "m3"} {
		if !strings.HasPrefix(steps[i], "on "+name+": ") || !strings.Contains(steps[i], "--name "+name+" --advertise-address 127.0.0.1 ") {
			t.Errorf("join step %d: %q, want it for %s by name at 127.0.0.1", i, steps[i], name)
		}
	}
}

// The join steps of a recovery name the other members, also when the
// WAL is past a raft snapshot and so holds only their IDs: the names come
// from the v3 store's members bucket.
func TestRecoverJoinStepsNameMembersPastARaftSnapshot(t *testing.T) {
	manifest := pastRaftSnapshot(t)
	m, err := staticpod.Read(manifest)
	if err != nil {
		t.Fatal(err)
	}
	local, err := m.LocalClientURL()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := connect.NewConfig([]string{local}, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialTimeout, cfg.CommandTimeout = 200*time.Millisecond, 200*time.Millisecond
	recovery := func() (*QuorumRecovery, *strings.Builder) {
		var log strings.Builder
		node := NewNode()
		node.Log = &log
		return &QuorumRecovery{ManifestPath: manifest, Config: cfg, DataDir: filepath.Join(t.TempDir(), "new"), Timeout: time.Minute, DryRun: true, Node: node}, &log
	}

	t.Run("the data directory is not held: the preflight names them", func(t *testing.T) {
		r, log := recovery()
		p, err := r.Preflight(context.Background())
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		out, err := r.RunPlan(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		wantNamedSteps(t, out.JoinSteps)
	})

	t.Run("etcd holds the database: the copy names them", func(t *testing.T) {
		dir, err := m.HostDataDir()
		if err != nil {
			t.Fatal(err)
		}
		// An etcd restarted without quorum holds its database: the
		// preflight cannot read the members bucket.
		db, err := bolt.Open(datadir.DBPath(dir), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r, log := recovery()
		p, err := r.Preflight(context.Background())
		db.Close()
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		out := &RecoverOutcome{RecoverPlan: *p, JoinSteps: r.joinSteps(p)}
		if len(out.JoinSteps) != 2 || !strings.Contains(out.JoinSteps[0], "<unstarted ") {
			t.Fatalf("with the database held, the preflight's join steps are %q: want the two others, by ID (this member known by the WAL's own ID)", out.JoinSteps)
		}
		// What RunPlan does once it has copied the data.
		if err := copyTree(p.Source, p.WorkDir); err != nil {
			t.Fatal(err)
		}
		r.nameFromCopy(p, out)
		wantNamedSteps(t, out.JoinSteps)
	})
}
