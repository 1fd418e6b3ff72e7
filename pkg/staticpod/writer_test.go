package staticpod

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestEtcdPodGolden pins the manifest for kubeadm's defaults. The golden
// files hold what kubeadm 1.37 writes for node cp-1 at 10.0.0.11 (and cp-2
// joining it): flags sorted by name with the etcd 3.6 feature gate and
// watch-progress-notify-interval that replaced the experimental flags,
// /livez and /readyz probes on 127.0.0.1 through the named port
// probe-port (2381), the data mount before the certificates mount,
// volumes sorted by name, priority 2000001000. The init manifest is
// byte for byte what the real kubeadm 1.37.2 writes (pkg/cmd/node's
// TestInitManifestMatchesKubeadm runs it); the join manifest differs only
// in the flags kubeadm's join adds (--initial-cluster with every member,
// --initial-cluster-state=existing), from its source, as kubeadm's join
// phase needs a running control plane.
func TestEtcdPodGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		spec   EtcdPodSpec
	}{
		{"etcd-init.golden.yaml", EtcdPodSpec{Name: "cp-1", AdvertiseAddress: "10.0.0.11"}},
		{"etcd-join.golden.yaml", EtcdPodSpec{
			Name: "cp-2", AdvertiseAddress: "10.0.0.12", ClusterState: ClusterStateExisting,
			InitialCluster: []InitialMember{{"cp-1", "https://10.0.0.11:2380"}, {"cp-2", "https://10.0.0.12:2380"}},
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			if err := tc.spec.Validate(); err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(NewEtcdPod(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("manifest differs from %s (go test -update rewrites it):\n%s", path, got)
			}
			// What we write, we read back the same way.
			m, err := Parse(path, got)
			if err != nil {
				t.Fatal(err)
			}
			if m.Flags["name"] != tc.spec.Name || m.Flags["client-cert-auth"] != "true" {
				t.Errorf("flags read back: %v", m.Flags)
			}
		})
	}
}

func TestWriteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	path := filepath.Join(dir, ManifestFileName)
	if err := WriteFile(path, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: ManifestDirMode, path: ManifestMode} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", p, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("manifest directory holds %d files, want only the manifest", len(entries))
	}
}
