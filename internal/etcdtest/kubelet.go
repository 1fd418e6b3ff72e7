package etcdtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// Kubelet stands in for the kubelet of one test "node" in tests that must
// run without root or the kubelet build (the unit stage); internal/nodetest
// runs real kubelets for the end-to-end tests. It watches one etcd static pod manifest the way the kubelet watches
// /etc/kubernetes/manifests: when the manifest appears or changes it
// (re)starts the pod, when it is deleted it stops the pod, and when etcd
// exits it starts it again after a back-off, as restartPolicy Always does.
// Like the kubelet it stops a pod with SIGTERM and kills it only when it
// has not exited after a grace period, so etcd shuts down gracefully
// (finishing requests in flight, handing over leadership) as it does on a
// real node.
//
// The "pod" is a process of the real etcd binary run with the container's
// command line. Each hostPath volume is mounted by rewriting the arguments
// that start with its mountPath to its host path (with the manifests
// kubectl-etcd writes both are the same test directory). hostNetwork pods
// share the machine's network, so a process on 127.0.0.x is faithful.
type Kubelet struct {
	T            testing.TB
	Binary       string
	ManifestPath string
	LogFile      string
	// GracePeriod is how long a stopped pod may take to exit after SIGTERM
	// before it is killed (the pod's terminationGracePeriodSeconds).
	GracePeriod time.Duration

	mu sync.Mutex
	// binaryFor, when set, picks the etcd binary from the container's
	// image instead of Binary (StartImageKubelet).
	binaryFor func(image string) (string, error)
	paused    bool
	cmd       *exec.Cmd
	exited    chan struct{}
	running   []byte
	starts    int
	stop      chan struct{}
	finished  chan struct{}
}

// StartKubelet watches manifestPath and runs its pod with the etcd binary
// of version. Every process it starts is stopped when the test ends.
func StartKubelet(t testing.TB, version, manifestPath string) *Kubelet {
	t.Helper()
	return startKubelet(t, filepath.Join(EtcdBinaries(t, version), "etcd"), manifestPath, nil)
}

func startKubelet(t testing.TB, binary, manifestPath string, binaryFor func(string) (string, error)) *Kubelet {
	k := &Kubelet{
		T:            t,
		Binary:       binary,
		binaryFor:    binaryFor,
		ManifestPath: manifestPath,
		LogFile:      manifestPath + ".etcd.log",
		GracePeriod:  10 * time.Second,
		stop:         make(chan struct{}),
		finished:     make(chan struct{}),
	}
	t.Cleanup(func() {
		close(k.stop)
		<-k.finished
		k.mu.Lock()
		k.killLocked(false)
		k.mu.Unlock()
		if t.Failed() {
			k.dumpLog()
		}
	})
	go k.loop()
	return k
}

func (k *Kubelet) loop() {
	defer close(k.finished)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var backoffUntil time.Time
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		data, err := os.ReadFile(k.ManifestPath)
		k.mu.Lock()
		switch {
		case err != nil:
			// Deleted: stop the pod.
			k.killLocked(true)
		case k.cmd != nil && !bytes.Equal(data, k.running):
			// Changed: restart with the new command line.
			k.killLocked(true)
			k.startLocked(data)
		case k.cmd != nil && k.hasExitedLocked():
			k.cmd = nil
			backoffUntil = time.Now().Add(time.Second)
		case k.cmd == nil && time.Now().After(backoffUntil):
			if !k.startLocked(data) {
				backoffUntil = time.Now().Add(time.Second)
			}
		}
		k.mu.Unlock()
	}
}

func (k *Kubelet) hasExitedLocked() bool {
	select {
	case <-k.exited:
		return true
	default:
		return false
	}
}

// Command turns the manifest's etcd container into the command line to
// run here: the etcd binary instead of the image's, host paths for the
// mounted volumes.
func (k *Kubelet) Command(data []byte) ([]string, error) {
	m, err := staticpod.Parse(k.ManifestPath, data)
	if err != nil {
		return nil, err
	}
	c := m.Pod.Spec.Containers[m.Container]
	hostPaths := map[string]string{}
	for _, v := range m.Pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	args := append(append([]string{}, c.Command...), c.Args...)
	args[0] = k.Binary
	if k.binaryFor != nil {
		if args[0], err = k.binaryFor(c.Image); err != nil {
			return nil, err
		}
	}
	for i := 1; i < len(args); i++ {
		for _, vm := range c.VolumeMounts {
			host, ok := hostPaths[vm.Name]
			if !ok {
				return nil, fmt.Errorf("volume mount %s has no hostPath volume", vm.Name)
			}
			args[i] = remap(args[i], vm.MountPath, host)
		}
	}
	return args, nil
}

// remap rewrites a path argument ("--flag=/mount/x" or "/mount/x") under
// mountPath to the same place under hostPath.
func remap(arg, mountPath, hostPath string) string {
	prefix, value := "", arg
	if k, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "-") {
		prefix, value = k+"=", v
	}
	if value == mountPath || strings.HasPrefix(value, strings.TrimSuffix(mountPath, "/")+"/") {
		return prefix + hostPath + strings.TrimPrefix(value, mountPath)
	}
	return arg
}

func (k *Kubelet) startLocked(data []byte) bool {
	args, err := k.Command(data)
	if err != nil {
		k.T.Logf("kubelet stand-in: %s: %v", k.ManifestPath, err)
		return false
	}
	log, err := os.OpenFile(k.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		k.T.Logf("kubelet stand-in: %v", err)
		return false
	}
	defer log.Close()
	fmt.Fprintf(log, "=== kubelet stand-in starts: %s\n", strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		k.T.Logf("kubelet stand-in: starting etcd: %v", err)
		return false
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	k.cmd, k.exited, k.running, k.paused = cmd, exited, data, false
	k.starts++
	return true
}

// killLocked stops the pod: gracefully (SIGTERM, then SIGKILL after the
// grace period) when the kubelet would, at once at the end of the test. A
// paused (hung) pod is killed at once: the kubelet would kill it after the
// grace period, which a test need not wait out.
func (k *Kubelet) killLocked(graceful bool) {
	if k.cmd == nil {
		return
	}
	if graceful && !k.paused {
		terminate(k.cmd.Process)
		select {
		case <-k.exited:
		case <-time.After(k.GracePeriod):
			k.T.Logf("kubelet stand-in: etcd of %s did not exit within %s of SIGTERM; killing it", k.ManifestPath, k.GracePeriod)
		}
	}
	resume(k.cmd.Process)
	_ = k.cmd.Process.Kill()
	<-k.exited
	k.cmd = nil
	k.running = nil
	k.paused = false
}

// Running reports whether the pod's etcd process is running.
func (k *Kubelet) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cmd != nil && !k.hasExitedLocked()
}

// Kill kills the running etcd at once, as a crash would; the stand-in
// starts it again after its back-off while the manifest is there.
func (k *Kubelet) Kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		_ = k.cmd.Process.Kill()
	}
}

// Pause stops the running etcd with SIGSTOP, a hung pod: it keeps its
// sockets and answers nothing. The stand-in still kills it (resuming it
// first) when the manifest changes or goes, as the kubelet kills a hung
// container.
func (k *Kubelet) Pause() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		pause(k.cmd.Process)
		k.paused = true
	}
}

// Resume continues a paused etcd.
func (k *Kubelet) Resume() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		resume(k.cmd.Process)
		k.paused = false
	}
}

// Starts counts the times the pod was started.
func (k *Kubelet) Starts() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.starts
}

func (k *Kubelet) dumpLog() {
	data, err := os.ReadFile(k.LogFile)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	k.T.Logf("last lines of %s:\n%s", k.LogFile, strings.Join(lines, "\n"))
}
