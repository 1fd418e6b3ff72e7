package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

func TestRemovalCheck(t *testing.T) {
	m := func(id uint64, learner bool) *etcdserverpb.Member {
		return &etcdserverpb.Member{ID: id, Name: string(rune('a' + id - 1)), IsLearner: learner}
	}
	a, b, c, l := m(1, false), m(2, false), m(3, false), m(4, true)
	tests := []struct {
		name       string
		members    []*etcdserverpb.Member
		self       *etcdserverpb.Member
		healthy    map[uint64]bool
		force      bool
		wantErr    string
		wantTarget uint64
	}{
		{"three healthy", []*etcdserverpb.Member{a, b, c}, a, map[uint64]bool{1: true, 2: true, 3: true}, false, "", 2},
		{"one other down: 1 of 2 remaining is no quorum", []*etcdserverpb.Member{a, b, c}, a, map[uint64]bool{1: true, 3: true}, false, "leaves 2 voters of which 1 are healthy, fewer than the quorum of 2", 0},
		{"forced", []*etcdserverpb.Member{a, b, c}, a, map[uint64]bool{1: true, 3: true}, true, "", 3},
		{"two members, other healthy", []*etcdserverpb.Member{a, b}, b, map[uint64]bool{1: true, 2: true}, false, "", 1},
		{"two members, other down", []*etcdserverpb.Member{a, b}, b, map[uint64]bool{2: true}, false, "fewer than the quorum of 1", 0},
		{"last voter with a learner", []*etcdserverpb.Member{a, l}, a, map[uint64]bool{1: true, 4: true}, false, "last voting member", 0},
		{"a learner may always go", []*etcdserverpb.Member{a, l}, l, map[uint64]bool{}, false, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := removalCheck(tt.members, tt.self, tt.healthy, tt.force)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got uint64
			if target != nil {
				got = target.ID
			}
			if got != tt.wantTarget {
				t.Errorf("target %d, want %d", got, tt.wantTarget)
			}
		})
	}
}

// TestUseManifestDataDir: leave and reset clear the data directory the
// manifest in place runs etcd on, which a recovery or restore moved away
// from the default.
func TestUseManifestDataDir(t *testing.T) {
	dir := t.TempDir()
	moved := filepath.Join(dir, "etcd-recover-20261207T010000Z")
	node := func() *Node {
		n := NewNode()
		n.ManifestsDir, n.DataDir = filepath.Join(dir, "manifests"), filepath.Join(dir, "etcd")
		return n
	}
	n := node()
	if err := n.UseManifestDataDir(false); err != nil || n.DataDir != filepath.Join(dir, "etcd") {
		t.Errorf("without a manifest: %s, %v; want the default kept", n.DataDir, err)
	}

	spec := node().Spec()
	spec.Name, spec.AdvertiseAddress, spec.DataDir = "cp-1", "10.0.0.11", moved
	data, err := staticpod.Marshal(staticpod.NewEtcdPod(spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(n.ManifestsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.ManifestPath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		dataDir string
		given   bool
		want    string
		wantErr string
	}{
		{"default", filepath.Join(dir, "etcd"), false, moved, ""},
		{"given, the manifest's", moved + "/", true, moved, ""},
		{"given, another", filepath.Join(dir, "etcd"), true, "", "--data-dir " + filepath.Join(dir, "etcd") + " is not the data directory " + n.ManifestPath() + " runs etcd on, " + moved + ": leave --data-dir out to clear that one"},
	} {
		n := node()
		n.DataDir = c.dataDir
		err := n.UseManifestDataDir(c.given)
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("%s: %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || n.DataDir != c.want {
			t.Errorf("%s: %s, %v; want %s", c.name, n.DataDir, err, c.want)
		}
	}

	spec.DataDir = "/"
	if data, err = staticpod.Marshal(staticpod.NewEtcdPod(spec)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.ManifestPath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if n := node(); n.UseManifestDataDir(false) == nil || n.DataDir == "/" {
		t.Errorf("a manifest whose data directory is /: %s, not refused", n.DataDir)
	}

	if err := os.WriteFile(n.ManifestPath(), []byte("not: [a manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	n = node()
	if err := n.UseManifestDataDir(false); err == nil || !strings.HasPrefix(err.Error(), "cannot tell which data directory etcd runs on: "+n.ManifestPath()+" is not a pod manifest") || !strings.HasSuffix(err.Error(), "pass --data-dir") {
		t.Errorf("an unreadable manifest, no --data-dir: %v", err)
	}
	n.DataDir = filepath.Join(dir, "other")
	if err := n.UseManifestDataDir(true); err != nil || n.DataDir != filepath.Join(dir, "other") {
		t.Errorf("an unreadable manifest, --data-dir given: %s, %v", n.DataDir, err)
	}
}

// TestLocalIdentityOfAParkedManifest: leave and reset on a node whose
// manifest a killed restart left parked say so, rather than ask which
// member the node is.
func TestLocalIdentityOfAParkedManifest(t *testing.T) {
	n := NewNode()
	n.ManifestsDir = t.TempDir()
	if _, _, _, err := n.localIdentity(); err == nil || !strings.Contains(err.Error(), "pass --name") {
		t.Fatalf("no manifest, no --name: %v; want to be asked for --name", err)
	}
	parked := staticpod.ParkedPath(n.ManifestPath())
	if err := os.WriteFile(parked, []byte("pod"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Name = "cp-1"
	if _, _, _, err := n.localIdentity(); err == nil || !strings.Contains(err.Error(), "mv "+parked+" "+n.ManifestPath()) {
		t.Fatalf("a parked manifest: %v; want the way to put it back", err)
	}
}
