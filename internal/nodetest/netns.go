package nodetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` keeps its namespaces.
const netnsDir = "/run/netns"

// ip runs ip(8) with args and returns an error carrying its output.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNetns calls open on an OS thread moved into the network namespace at
// nsPath, so that the socket it makes stays in that namespace (a socket
// stays in the namespace it was made in), and moves the thread back before
// other goroutines may run on it. Should moving back fail, the thread stays
// locked and ends with the goroutine. Threads must not end otherwise: a
// process started with Pdeathsig dies when the thread that started it does.
func inNetns[T any](nsPath string, open func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("opening this thread's network namespace: %w", err)}
			return
		}
		defer unix.Close(home)
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("opening %s: %w", nsPath, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("entering %s: %w", nsPath, err)}
			return
		}
		v, err := open()
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

// dialIn dials addr from inside the network namespace at nsPath.
func dialIn(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	return inNetns(nsPath, func() (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
}

// netnsInode identifies a network namespace: what /proc/PID/ns/net of a
// process in it links to is net:[inode].
func netnsInode(nsPath string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// processesIn lists the processes whose network namespace is the one at
// nsPath: a node's containerd, shims, kubelet and containers.
func processesIn(nsPath string) []int {
	ino, err := netnsInode(nsPath)
	if err != nil {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", ino)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if link, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// listenIn listens on addr inside the network namespace at nsPath, as
// dialIn dials there.
func listenIn(nsPath, network, addr string) (net.Listener, error) {
	return inNetns(nsPath, func() (net.Listener, error) { return net.Listen(network, addr) })
}
