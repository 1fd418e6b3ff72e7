package nodetest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupMounts lists the mount points of every cgroup hierarchy (v1 and
// the v2 one these machines mount beside them).
func cgroupMounts() []string {
	var out []string
	for _, m := range mountInfo() {
		if m.fsType == "cgroup" || m.fsType == "cgroup2" {
			out = append(out, m.point)
		}
	}
	return out
}

// makeCgroups creates the node's cgroupRoot in every hierarchy: the
// kubelet with the cgroupfs driver expects it to exist. A new cpuset
// cgroup has no CPUs or memory nodes until given its parent's.
func makeCgroups(name string) error {
	for _, mp := range cgroupMounts() {
		dir := filepath.Join(mp, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			parent, err := os.ReadFile(filepath.Join(mp, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), parent, 0o644); err != nil {
				return fmt.Errorf("copying %s into %s: %w", f, dir, err)
			}
		}
	}
	return nil
}

// removeCgroups removes the cgroup tree name in every hierarchy, deepest
// first (a cgroup is removed with rmdir once it holds no process or
// child). Processes that were killed may take a moment to leave.
func removeCgroups(name string) []string {
	var problems []string
	for _, mp := range cgroupMounts() {
		root := filepath.Join(mp, name)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for range 50 {
				if err = syscall.Rmdir(d); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				killCgroupProcs(d)
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("removing cgroup %s: %v", d, err))
			}
		}
	}
	return problems
}

func killCgroupProcs(dir string) {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

type mount struct{ point, fsType string }

// mountInfo reads this process's mount table.
func mountInfo() []mount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// ID parent major:minor root mountpoint options [optional...] - fstype source superoptions
		sep := -1
		for i, fld := range fields {
			if fld == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, mount{point: unescapeOctal(fields[4]), fsType: fields[sep+1]})
	}
	return out
}

// unescapeOctal undoes mountinfo's \040-style escapes.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or under dir, deepest first: the
// kubelet's bind of its root dir, containerd's rootfs overlays and shm.
func unmountUnder(dir string) []string {
	var problems []string
	for range 5 {
		var points []string
		for _, m := range mountInfo() {
			if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
				points = append(points, m.point)
			}
		}
		if len(points) == 0 {
			return nil
		}
		sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
		problems = problems[:0]
		for _, p := range points {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
				problems = append(problems, fmt.Sprintf("unmounting %s: %v", p, err))
			}
		}
	}
	return problems
}

// removeNode kills every process in the node's network namespace
// (containerd, its shims, the containers; the kubelet if still there),
// then removes its mounts, the namespace (its veth goes with it), its
// cgroups and its files. It returns what it could not remove.
func removeNode(nsPath, dir, cgroupName string) []string {
	var problems []string
	if _, err := os.Stat(nsPath); err == nil {
		deadline := time.Now().Add(15 * time.Second)
		for {
			pids := processesIn(nsPath)
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				problems = append(problems, fmt.Sprintf("processes %v still run in %s", pids, nsPath))
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	problems = append(problems, unmountUnder(dir)...)
	if _, err := os.Stat(nsPath); err == nil {
		if err := ip("netns", "delete", filepath.Base(nsPath)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, removeCgroups(cgroupName)...)
	if err := os.RemoveAll(dir); err != nil {
		problems = append(problems, fmt.Sprintf("removing %s: %v", dir, err))
	}
	return problems
}

// RemoveLeftovers removes what clusters of test processes that no longer
// run left behind (a run killed before its cleanup): their namespaces and
// the processes in them, mounts, cgroups and files. Clusters of processes
// still running (another test package's) are left alone.
func RemoveLeftovers(t testing.TB) {
	t.Helper()
	dead := func(name string) bool {
		rest := strings.TrimPrefix(name, Prefix)
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil {
			return false
		}
		return pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH
	}
	entries, _ := os.ReadDir(netnsDir)
	var bridges []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, Prefix) || !dead(name) {
			continue
		}
		if strings.HasSuffix(name, "-br") {
			bridges = append(bridges, name)
			continue
		}
		// kenode-PID-SEQ-I: files under baseDir/PID-SEQ/I.
		rest := strings.TrimPrefix(name, Prefix)
		i := strings.LastIndex(rest, "-")
		t.Logf("removing node %s left by an earlier run", name)
		for _, p := range removeNode(filepath.Join(netnsDir, name), filepath.Join(baseDir, rest[:i], rest[i+1:]), name) {
			t.Logf("leftover: %s", p)
		}
	}
	for _, b := range bridges {
		_ = ip("netns", "delete", b)
	}
	// Cgroups and files whose namespace was already gone.
	for _, mp := range cgroupMounts() {
		cgs, _ := os.ReadDir(mp)
		for _, cg := range cgs {
			if cg.IsDir() && strings.HasPrefix(cg.Name(), Prefix) && dead(cg.Name()) {
				removeCgroups(cg.Name())
			}
		}
	}
	runs, _ := os.ReadDir(baseDir)
	for _, r := range runs {
		if dead(Prefix + r.Name()) {
			unmountUnder(filepath.Join(baseDir, r.Name()))
			_ = os.RemoveAll(filepath.Join(baseDir, r.Name()))
		}
	}
}
