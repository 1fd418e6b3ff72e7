package bootstrap

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPodCgroupsFindsBothDrivers makes a pod's cgroups as the kubelet's
// cgroupfs and systemd drivers name them, in the first cgroup hierarchy
// mounted (root only, as the kubelet), and looks them up by UID.
func TestPodCgroupsFindsBothDrivers(t *testing.T) {
	mounts := cgroupMounts()
	if len(mounts) == 0 {
		t.Fatal("no cgroup hierarchy is mounted (/proc/self/mountinfo)")
	}
	root := filepath.Join(mounts[0], fmt.Sprintf("kubectl-etcd-test-%d", rand.Int64()))
	const cgroupfsUID, systemdUID, otherUID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "f9e8d7c6b5a4938271605f4e3d2c1b0a", "00112233445566778899aabbccddeeff"
	dirs := []string{
		filepath.Join(root, "kubepods", "burstable", "pod"+cgroupfsUID),
		filepath.Join(root, "kubepods.slice", "kubepods-burstable.slice", "kubepods-burstable-pod"+systemdUID+".slice"),
		filepath.Join(root, "kubepods", "besteffort", "pod"+otherUID),
	}
	t.Cleanup(func() {
		// cgroups go with rmdir, deepest first.
		for _, d := range dirs {
			for p := d; p != mounts[0] && len(p) > len(mounts[0]); p = filepath.Dir(p) {
				os.Remove(p)
			}
		}
	})
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("making cgroup %s (needs root): %v", d, err)
		}
	}
	got := podCgroups([]string{cgroupfsUID, systemdUID})
	want := dirs[:2]
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("podCgroups found %q, want %q", got, want)
	}
	if got := podCgroups(nil); got != nil {
		t.Errorf("podCgroups(nil) = %q, want nothing", got)
	}
}
