// Package nodetest runs real control-plane "nodes" for tests: each node is
// a network namespace of its own (its own loopback, so its own
// 127.0.0.1:2379, and an address 10.250.0.N on a bridge that lives in a
// further namespace the test creates), with its own containerd and a real
// kubelet 1.37 in standalone mode that runs the static pods of the node's
// manifests directory. kubectl-etcd runs inside a node the way an
// operator runs it on a control-plane machine.
//
// It needs root, containerd and runc (hack/node-prereqs.sh installs them
// and builds the etcd and pause images, which are imported into each
// node's containerd: nothing is pulled), and the reference kubelet
// (hack/build-kube.sh). Everything a cluster starts and creates (processes,
// mounts, namespaces, links, cgroups, files) is named with the prefix
// "kenode-<pid>-" and removed when the test ends, pass or fail; a run that
// was killed leaves them behind, and the next run removes them first.
package nodetest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/hackscript"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
)

// Prefix starts the name of everything a cluster creates, so that the
// next run finds what a killed one left.
const Prefix = "kenode-"

// baseDir holds the nodes' files. It is short on purpose: containerd's
// socket paths must stay under the 108 bytes a unix socket address holds.
const baseDir = "/tmp/kenode"

// Subnet is the nodes' network: node i (from 1) is 10.250.0.i.
const Subnet = "10.250.0.0/24"

// Options shape a cluster of nodes.
type Options struct {
	// Nodes is how many nodes to start (default 3).
	Nodes int
	// EtcdVersion is the etcd release tests run on the nodes by default
	// (default the newest reference release). The nodes hold the images
	// of every reference release, the upgrade tests' older ones too.
	EtcdVersion string
	// Plugin is the kubectl-etcd binary Node.Kubectl runs.
	Plugin string
	// APIServerURL and APIServerToken, when set, register the kubelets
	// with that kube-apiserver (WithAPIServer).
	APIServerURL, APIServerToken string
	// EgressProxy, when set, is pointed at the nodes' network so the
	// kube-apiserver reaches the kubelets (WithEgressProxy).
	EgressProxy *EgressProxy
}

// Option changes Options.
type Option func(*Options)

// WithNodes sets the number of nodes.
func WithNodes(n int) Option { return func(o *Options) { o.Nodes = n } }

// WithEtcdVersion sets the etcd release tests run by default.
func WithEtcdVersion(v string) Option { return func(o *Options) { o.EtcdVersion = v } }

// WithPlugin sets the kubectl-etcd binary the nodes run.
func WithPlugin(path string) Option { return func(o *Options) { o.Plugin = path } }

// Cluster is a set of nodes on one private network.
type Cluster struct {
	T       testing.TB
	Options Options
	// Nodes are the nodes, cp-1 first.
	Nodes []*Node

	id       string // Prefix + pid + "-" + sequence
	bridge   string // the namespace holding the bridge
	stopOnce sync.Once
	// stopForward ends the forwarding to the kube-apiserver.
	stopForward func()
}

// Node is one control-plane machine.
type Node struct {
	cluster *Cluster
	// Name is the node name (cp-1, cp-2, ...), the kubelet's
	// --hostname-override.
	Name string
	// IP is the node's address on the cluster network.
	IP string
	// NetNS is the path of the node's network namespace.
	NetNS string
	// Dir holds everything of the node's.
	Dir string

	dirs       nodeDirs
	netnsName  string
	cgroupName string
	containerd *exec.Cmd
	kubelet    *exec.Cmd
	exited     map[*exec.Cmd]chan struct{}
}

// ManifestsDir is the kubelet's staticPodPath (kubeadm's
// /etc/kubernetes/manifests).
func (n *Node) ManifestsDir() string { return n.dirs.manifests() }

// EtcdManifest is the etcd static pod manifest's path.
func (n *Node) EtcdManifest() string { return filepath.Join(n.dirs.manifests(), "etcd.yaml") }

// PKIDir is the node's /etc/kubernetes/pki.
func (n *Node) PKIDir() string { return n.dirs.pki() }

// DataDir is the node's /var/lib/etcd.
func (n *Node) DataDir() string { return n.dirs.data() }

// KubeletRootDir is the kubelet's --root-dir.
func (n *Node) KubeletRootDir() string { return n.dirs.kubeletRoot() }

// DirFlags are the kubectl-etcd node command flags for the node's
// directories: --manifests-dir and --data-dir (--pki-dir is global and
// Kubectl adds it).
func (n *Node) DirFlags() []string {
	return []string{"--manifests-dir", n.ManifestsDir(), "--data-dir", n.DataDir()}
}

var sequence atomic.Int64

// Start starts a cluster of nodes, each with containerd and a kubelet
// running and the etcd and pause images imported, and stops and removes
// everything of it when the test ends.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	o := Options{Nodes: 3}
	for _, fn := range opts {
		fn(&o)
	}
	if o.EtcdVersion == "" {
		vs := etcdtest.Versions(t)
		o.EtcdVersion = vs[len(vs)-1]
	}
	if os.Geteuid() != 0 {
		t.Fatal("nodetest needs root (network namespaces, containerd); CI runs as root")
	}
	images := prerequisites(t)
	kubelet := filepath.Join(string(kubetest.Binaries(t)), "kubelet")
	if _, err := os.Stat(kubelet); err != nil {
		t.Fatalf("the reference kubelet: %v (hack/build-kube.sh builds it)", err)
	}
	RemoveLeftovers(t)

	c := &Cluster{T: t, Options: o, id: fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), sequence.Add(1))}
	c.bridge = c.id + "-br"
	t.Cleanup(c.Stop)
	if err := c.makeNetwork(); err != nil {
		t.Fatal(err)
	}
	if o.APIServerURL != "" {
		if err := c.writeKubeconfig(); err != nil {
			t.Fatal(err)
		}
		if err := c.forwardAPIServer(); err != nil {
			t.Fatal(err)
		}
	}
	if o.EgressProxy != nil {
		o.EgressProxy.mu.Lock()
		o.EgressProxy.bridge = filepath.Join(netnsDir, c.bridge)
		o.EgressProxy.mu.Unlock()
	}
	for i := 1; i <= o.Nodes; i++ {
		n := &Node{
			cluster:    c,
			Name:       fmt.Sprintf("cp-%d", i),
			IP:         fmt.Sprintf("10.250.0.%d", i),
			netnsName:  fmt.Sprintf("%s-%d", c.id, i),
			cgroupName: fmt.Sprintf("%s-%d", c.id, i),
			Dir:        filepath.Join(baseDir, strings.TrimPrefix(c.id, Prefix), fmt.Sprint(i)),
			exited:     map[*exec.Cmd]chan struct{}{},
		}
		n.NetNS = filepath.Join(netnsDir, n.netnsName)
		n.dirs = nodeDirs{n.Dir}
		c.Nodes = append(c.Nodes, n)
		if err := n.makeNetwork(c.bridge, i); err != nil {
			t.Fatal(err)
		}
	}
	// The nodes come up together: most of the time is containerd
	// importing images and the kubelet's first sync.
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.start(kubelet, images)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("starting %s: %v", c.Nodes[i].Name, err)
		}
	}
	return c
}

// prerequisites runs hack/node-prereqs.sh once per process: containerd
// and runc installed, the images built; it returns the images' directory.
// A failure fails every test that asks.
func prerequisites(t testing.TB) string {
	t.Helper()
	dir, err := installPrerequisites()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// A failure is kept, unlike hackscript.Memo's: a failed apt-get would
// only fail again, test after test.
var installPrerequisites = sync.OnceValues(func() (string, error) {
	return hackscript.Output(hackscript.Path("node-prereqs.sh"))
})

// makeNetwork creates the namespace with the bridge every node's veth
// joins. The bridge's namespace has no route anywhere else: what the nodes
// send stays among them.
func (c *Cluster) makeNetwork() error {
	if err := ip("netns", "add", c.bridge); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", c.bridge, "link", "set", "lo", "up"},
		{"-n", c.bridge, "link", "add", "br0", "type", "bridge"},
		{"-n", c.bridge, "addr", "add", bridgeAddress + "/24", "dev", "br0"},
		{"-n", c.bridge, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// makeNetwork creates node i's namespace: loopback up, eth0 (a veth whose
// other end is on the bridge) with the node's address, and a default route
// (the kubelet's node-status code resolves the node name on every sync; it
// stalls for seconds without a route).
func (n *Node) makeNetwork(bridge string, i int) error {
	if err := ip("netns", "add", n.netnsName); err != nil {
		return err
	}
	veth := fmt.Sprintf("veth%d", i)
	for _, args := range [][]string{
		{"-n", n.netnsName, "link", "set", "lo", "up"},
		{"-n", bridge, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.netnsName},
		{"-n", bridge, "link", "set", veth, "master", "br0", "up"},
		{"-n", n.netnsName, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"-n", n.netnsName, "link", "set", "eth0", "up"},
		{"-n", n.netnsName, "route", "add", "default", "via", bridgeAddress},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// start lays out the node's directories and cgroups, starts containerd,
// imports the images, and starts the kubelet.
func (n *Node) start(kubelet, images string) error {
	for _, d := range []string{n.dirs.manifests(), n.dirs.kubeletRoot(), filepath.Join(n.Dir, "kubelet-pki"), filepath.Join(n.Dir, "cni", "bin"), filepath.Join(n.Dir, "cni", "conf"), filepath.Join(n.Dir, "volume-plugins"), filepath.Join(n.Dir, "pod-logs"), filepath.Join(n.Dir, "containerd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := makeCgroups(n.cgroupName); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "containerd.toml"), []byte(containerdConfig(n.dirs)), 0o600); err != nil {
		return err
	}
	// Registered with an API server, the kubelet serves on the node's
	// address too: the server reaches it there for exec and port-forward.
	address := "127.0.0.1"
	if n.cluster.Options.APIServerURL != "" {
		address = n.IP
	}
	// Where kubeadm keeps it, so the plugin finds the podLogsDir there.
	if err := os.WriteFile(n.dirs.kubeletConfigFile(), []byte(kubeletConfig(n.dirs, "/"+n.cgroupName, address)), 0o600); err != nil {
		return err
	}
	var err error
	var kubeconfig []string
	if n.cluster.Options.APIServerURL != "" {
		kubeconfig = []string{"--kubeconfig", n.cluster.Kubeconfig()}
	}
	if n.containerd, err = n.spawn("containerd.log", "containerd", "--config", filepath.Join(n.Dir, "containerd.toml")); err != nil {
		return err
	}
	if err := n.waitFor(30*time.Second, "containerd to serve", func() error { return n.ctr("version") }); err != nil {
		return err
	}
	// Every reference etcd release hack/node-prereqs.sh built (those of
	// hack/etcd-versions.txt and the older ones of
	// hack/etcd-upgrade-versions.txt), so a test can change a node's image
	// (an older etcd on a restored newer data dir, a rolling upgrade from
	// 3.5); about 1.5 s each.
	tarballs, _ := filepath.Glob(filepath.Join(images, "etcd-*-0.tar"))
	if len(tarballs) == 0 {
		return fmt.Errorf("no etcd images in %s", images)
	}
	for _, img := range append([]string{filepath.Join(images, "pause-3.10.tar")}, tarballs...) {
		if err := n.ctr("image", "import", img); err != nil {
			return err
		}
	}
	// Every kubelet binds its device plugin socket at one host path,
	// whatever its --root-dir: it removes what is there, then listens. Two
	// kubelets starting together can interleave those steps, and the later
	// to listen exits ("Failed to start ContainerManager ... bind: address
	// already in use"; seen once in a CI run). The kubelets of this
	// machine, of every test binary, start one at a time, each until its
	// socket is there.
	unlock, err := lockKubeletStart()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(devicePluginSocket); err != nil && !os.IsNotExist(err) {
		return err
	}
	if n.kubelet, err = n.spawn("kubelet.log", kubelet, append(kubeconfig,
		"--config", n.dirs.kubeletConfigFile(),
		"--root-dir", n.dirs.kubeletRoot(),
		"--cert-dir", filepath.Join(n.Dir, "kubelet-pki"),
		"--hostname-override", n.Name,
		"--node-ip", n.IP,
		"-v", "2")...); err != nil {
		return err
	}
	return n.waitFor(60*time.Second, "the kubelet to be healthy", func() error {
		resp, err := n.HTTPClient(2 * time.Second).Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", kubeletHealthzPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		if _, err := os.Stat(devicePluginSocket); err != nil {
			return fmt.Errorf("its device plugin socket: %w", err)
		}
		return nil
	})
}

// devicePluginSocket is where every kubelet listens for device plugins;
// the kubelet does not put it under --root-dir.
const devicePluginSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"

// lockKubeletStart takes a lock all the test binaries of this machine
// share (tests of several packages run at once), for starting a kubelet.
func lockKubeletStart() (unlock func(), err error) {
	if err := os.MkdirAll(baseDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(baseDir, "kubelet-start.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// spawn starts a program in the node's network namespace with nsenter
// (ip netns exec would also give it a mount namespace of its own, in
// which the cgroup mounts the kubelet needs are hidden), logging to the
// node's logName. It dies with the test binary.
func (n *Node) spawn(logName, program string, args ...string) (*exec.Cmd, error) {
	log, err := os.OpenFile(filepath.Join(n.Dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.NetNS, program}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", program, err)
	}
	done := make(chan struct{})
	n.exited[cmd] = done
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd, nil
}

// ctr runs containerd's ctr against the node's containerd, in the
// namespace the CRI uses.
func (n *Node) ctr(args ...string) error {
	out, err := exec.Command("ctr", append([]string{"--address", n.dirs.containerdSocket(), "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TagImage gives an image the node's containerd holds another name, as
// if it had been pulled under it.
func (n *Node) TagImage(src, dst string) error {
	return n.ctr("images", "tag", "--force", src, dst)
}

func (n *Node) waitFor(timeout time.Duration, what string, ok func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: waited %s for %s: %v", n.Name, timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ID is the prefix of the names of everything the cluster made: its
// namespaces are ID-br and ID-1, ID-2, ..., its cgroups ID-1, ....
func (c *Cluster) ID() string { return c.id }

// Dial opens a connection from inside the node, so 127.0.0.1 is the
// node's own loopback and other nodes are reached by their address. It
// has the signature gRPC's WithContextDialer wants.
func (n *Node) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return dialIn(ctx, n.NetNS, "tcp", addr)
}

// HTTPClient is an HTTP client whose connections start inside the node.
// It skips verification of server certificates: it talks to the kubelet,
// whose certificate is self-signed.
func (n *Node) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, n.NetNS, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

// Kubectl is `kubectl etcd ARGS` run on the node: in its network
// namespace, with its --pki-dir and --etcd-manifest, and no ETCDCTL_* or
// kubeconfig from the developer's environment.
func (n *Node) Kubectl(args ...string) *exec.Cmd {
	if n.cluster.Options.Plugin == "" {
		n.cluster.T.Fatal("nodetest: no kubectl-etcd binary (WithPlugin)")
	}
	full := append([]string{"--net=" + n.NetNS, n.cluster.Options.Plugin}, args...)
	full = append(full, "--pki-dir", n.PKIDir(), "--etcd-manifest", n.EtcdManifest())
	cmd := exec.Command("nsenter", full...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ETCDCTL_") && !strings.HasPrefix(e, "KUBECONFIG=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "KUBECONFIG="+os.DevNull)
	return cmd
}

// RunningPod is a pod the kubelet runs, as its /runningpods/ reports it
// (read from the container runtime).
type RunningPod struct {
	Name, Namespace, UID string
	// Containers maps each running container's name to its ID.
	Containers map[string]string
}

// RunningPods asks the node's kubelet which pods have running containers.
func (n *Node) RunningPods() ([]RunningPod, error) {
	resp, err := n.HTTPClient(5 * time.Second).Get(fmt.Sprintf("https://%s/runningpods/", net.JoinHostPort(n.kubeletAddress(), fmt.Sprint(KubeletPort))))
	if err != nil {
		return nil, fmt.Errorf("%s: asking the kubelet for running pods: %w", n.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: kubelet /runningpods/: %s: %s", n.Name, resp.Status, body)
	}
	var list corev1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%s: kubelet /runningpods/: %w", n.Name, err)
	}
	var pods []RunningPod
	for _, p := range list.Items {
		rp := RunningPod{Name: p.Name, Namespace: p.Namespace, UID: string(p.UID), Containers: map[string]string{}}
		for _, c := range p.Spec.Containers {
			rp.Containers[c.Name] = c.Image
		}
		pods = append(pods, rp)
	}
	return pods, nil
}

func (n *Node) kubeletAddress() string {
	if n.cluster.Options.APIServerURL != "" {
		return n.IP
	}
	return "127.0.0.1"
}

// EtcdPodName is the name the kubelet gives the etcd static pod of the
// node: the manifest's pod name and the node name.
func (n *Node) EtcdPodName() string { return "etcd-" + n.Name }

// EtcdRunning reports whether the kubelet runs the node's etcd container,
// as the kubelet last saw the runtime (its cache is up to 2 s old: a
// container started a moment ago may not show yet; WaitEtcd waits).
func (n *Node) EtcdRunning() (bool, error) {
	pods, err := n.RunningPods()
	if err != nil {
		return false, err
	}
	for _, p := range pods {
		if p.Name == n.EtcdPodName() && p.Namespace == "kube-system" {
			_, ok := p.Containers["etcd"]
			return ok, nil
		}
	}
	return false, nil
}

// WaitEtcd waits until the kubelet runs the node's etcd container
// (running) or runs none (!running).
func (n *Node) WaitEtcd(running bool, timeout time.Duration) {
	n.cluster.T.Helper()
	what := "etcd to stop"
	if running {
		what = "etcd to run"
	}
	err := n.waitFor(timeout, what, func() error {
		ok, err := n.EtcdRunning()
		if err != nil {
			return err
		}
		if ok != running {
			return fmt.Errorf("etcd running: %v", ok)
		}
		return nil
	})
	if err != nil {
		n.cluster.T.Fatalf("%v\n%s", err, n.Logs(30))
	}
}

// etcdPIDs are the etcd processes in the node: its etcd container's.
func (n *Node) etcdPIDs() []int {
	var pids []int
	for _, pid := range processesIn(n.NetNS) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "etcd" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// WaitEtcdExited waits until no etcd process is left in the node: the
// process itself has exited (and let go of its files), which the kubelet
// reports only on its next look at the runtime.
func (n *Node) WaitEtcdExited(timeout time.Duration) {
	n.cluster.T.Helper()
	err := n.waitFor(timeout, "the etcd process to exit", func() error {
		if pids := n.etcdPIDs(); len(pids) > 0 {
			return fmt.Errorf("etcd processes %v", pids)
		}
		return nil
	})
	if err != nil {
		n.cluster.T.Fatalf("%v\n%s", err, n.Logs(30))
	}
}

// WaitEtcdArg waits until an etcd runs in the node and every etcd process
// there has arg on its command line: the kubelet runs the etcd of the
// manifest now in place, not one of an earlier manifest (a manifest
// changed in place starts its pod only once the old one is gone).
func (n *Node) WaitEtcdArg(arg string, timeout time.Duration) {
	n.cluster.T.Helper()
	err := n.waitFor(timeout, "an etcd with "+arg, func() error {
		pids := n.etcdPIDs()
		if len(pids) == 0 {
			return fmt.Errorf("no etcd runs")
		}
		for _, pid := range pids {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				return err
			}
			if !slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
				return fmt.Errorf("etcd %d runs without %s", pid, arg)
			}
		}
		return nil
	})
	if err != nil {
		n.cluster.T.Fatalf("%v\n%s", err, n.Logs(30))
	}
}

// PauseEtcd stops the node's etcd with SIGSTOP: a hung member that keeps
// its sockets and answers nothing. The kubelet still kills it when its
// manifest changes or goes.
func (n *Node) PauseEtcd() {
	n.cluster.T.Helper()
	n.signalEtcd(syscall.SIGSTOP, "pause")
}

// KillEtcd kills the node's etcd with SIGKILL: a crash, nothing flushed
// or closed. The kubelet starts it again while its manifest is there.
func (n *Node) KillEtcd() {
	n.cluster.T.Helper()
	n.signalEtcd(syscall.SIGKILL, "kill")
}

// signalEtcd sends sig to every etcd process of the node. A node that runs
// none fails the test: it meant to verb (pause, kill) an etcd that is not
// there.
func (n *Node) signalEtcd(sig syscall.Signal, verb string) {
	n.cluster.T.Helper()
	pids := n.etcdPIDs()
	if len(pids) == 0 {
		n.cluster.T.Fatalf("%s runs no etcd to %s", n.Name, verb)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
}

// ResumeEtcd continues a paused etcd.
func (n *Node) ResumeEtcd() {
	for _, pid := range n.etcdPIDs() {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// EtcdStarts counts the etcd containers the node's containerd has
// started, from its log: the kubelet removes dead containers, so the
// runtime's list does not keep them all.
func (n *Node) EtcdStarts() int {
	data, _ := os.ReadFile(filepath.Join(n.Dir, "containerd.log"))
	count := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "CreateContainer within sandbox") && strings.Contains(line, "Name:etcd,") && strings.Contains(line, "returns container id") {
			count++
		}
	}
	return count
}

// logFiles are the node's kubelet, containerd and etcd container logs.
func (n *Node) logFiles() []string {
	files := []string{filepath.Join(n.Dir, "kubelet.log"), filepath.Join(n.Dir, "containerd.log")}
	etcdLogs, _ := filepath.Glob(filepath.Join(n.Dir, "pod-logs", "kube-system_etcd-*", "etcd", "*.log"))
	return append(files, etcdLogs...)
}

// KeepLogsEnv names a directory where a failed test's nodes leave their
// whole logs (logFiles), under TEST/NODE/, before the nodes are removed:
// a test's message holds only their last lines.
const KeepLogsEnv = "NODETEST_KEEP"

// keepLogs copies the node's logs under dir/test/node and returns where.
func (n *Node) keepLogs(dir, test string) (to string, err error) {
	to = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(test), n.Name)
	for _, f := range n.logFiles() {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(n.Dir, f)
		if err != nil {
			return to, err
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return to, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return to, err
		}
	}
	return to, nil
}

// Logs returns the last lines of the node's kubelet, containerd and etcd
// logs, for a failing test's message.
func (n *Node) Logs(lines int) string {
	var b strings.Builder
	for _, f := range n.logFiles() {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "--- %s: last lines of %s\n%s\n", n.Name, f, strings.Join(all, "\n"))
	}
	return b.String()
}

// Stop stops and removes everything of the cluster; it runs when the test
// ends, and a test that checks what is left may call it before.
func (c *Cluster) Stop() { c.stopOnce.Do(c.teardown) }

func (c *Cluster) teardown() {
	if c.T.Failed() {
		keep := os.Getenv(KeepLogsEnv)
		for _, n := range c.Nodes {
			c.T.Log(n.Logs(25))
			if keep == "" {
				continue
			}
			if to, err := n.keepLogs(keep, c.T.Name()); err != nil {
				c.T.Logf("%s: keeping the logs in %s: %v", n.Name, to, err)
			} else {
				c.T.Logf("%s: the whole logs are kept in %s", n.Name, to)
			}
		}
	}
	for _, n := range c.Nodes {
		// The kubelet first, so it starts nothing again.
		if n.kubelet != nil {
			_ = n.kubelet.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.exited[n.kubelet]:
			case <-time.After(5 * time.Second):
				_ = n.kubelet.Process.Kill()
				<-n.exited[n.kubelet]
			}
		}
	}
	var problems []string
	for _, n := range c.Nodes {
		problems = append(problems, removeNode(n.NetNS, n.Dir, n.cgroupName)...)
		if n.containerd != nil {
			select {
			case <-n.exited[n.containerd]:
			case <-time.After(15 * time.Second):
				problems = append(problems, fmt.Sprintf("%s: containerd (pid %d) did not exit", n.Name, n.containerd.Process.Pid))
			}
		}
	}
	if c.stopForward != nil {
		c.stopForward()
	}
	if err := ip("netns", "delete", c.bridge); err != nil && !strings.Contains(err.Error(), "No such file") {
		problems = append(problems, err.Error())
	}
	_ = os.RemoveAll(filepath.Join(baseDir, strings.TrimPrefix(c.id, Prefix)))
	for _, p := range problems {
		c.T.Errorf("tearing down nodes: %s", p)
	}
}
