package bootstrap

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// podCgroupDepth bounds the walk for a pod's cgroups below each cgroup
// mount: the kubelet's cgroupRoot, kubepods, the QoS class and the pod
// make four levels under the systemd or the cgroupfs driver, a nested
// cgroupRoot a few more.
const podCgroupDepth = 8

// podCgroups returns the cgroups the kubelet made for the pods with these
// UIDs, in every cgroup hierarchy mounted (v2, or each of v1's): named
// pod<UID> by the cgroupfs driver and kubepods-<qos>-pod<UID>.slice by the
// systemd driver (which writes a UID's dashes as underscores; a static
// pod's UID has none).
//
// The kubelet removes a pod's cgroup as the last step of its pod worker,
// a moment before it lets another pod take the same name. Its pod
// directory can go before that (the housekeeping that removes it looks at
// the runtime, not at the pod worker), and a static pod of the same name
// that arrives in between waits for the kubelet's 10 s back-off.
func podCgroups(uids []string) []string {
	if len(uids) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, u := range uids {
		want["pod"+u] = true
	}
	var found []string
	for _, root := range cgroupMounts() {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			name := d.Name()
			if i := strings.LastIndex(name, "-pod"); i >= 0 && strings.HasSuffix(name, ".slice") {
				name = strings.TrimSuffix(name[i+1:], ".slice")
			}
			if want[name] {
				found = append(found, path)
				return fs.SkipDir
			}
			if strings.Count(strings.TrimPrefix(path, root), string(filepath.Separator)) >= podCgroupDepth {
				return fs.SkipDir
			}
			return nil
		})
	}
	return found
}

// cgroupMounts lists the mount points of every cgroup hierarchy (v2 and
// v1) from /proc/self/mountinfo.
func cgroupMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(s.Text(), " - ")
		fields, fsType := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(fsType) > 0 && (fsType[0] == "cgroup2" || fsType[0] == "cgroup") {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts
}
