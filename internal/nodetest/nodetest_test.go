package nodetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubectl-etcd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kubectl-etcd/kubectl-etcd/cmd/kubectl-etcd").CombinedOutput()
	if err != nil {
		t.Fatalf("building kubectl-etcd: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestNodeRunsEtcdStaticPodAndLeavesNothing starts one node, has
// kubectl etcd init write the kubeadm-style manifest there, and checks
// that the real kubelet runs it: the kubelet reports the etcd pod, and
// etcd answers on the node's own 127.0.0.1 and on its address. Taking
// the manifest away stops etcd. Then the cluster is stopped and nothing
// of it may remain: no namespace, process, mount, cgroup or file.
func TestNodeRunsEtcdStaticPodAndLeavesNothing(t *testing.T) {
	plugin := buildPlugin(t)
	start := time.Now()
	c := Start(t, WithNodes(1), WithPlugin(plugin))
	n := c.Nodes[0]
	t.Logf("a node with containerd and a kubelet in %s", time.Since(start).Round(100*time.Millisecond))

	t.Log("kubectl etcd init on the node writes the manifest; the kubelet runs it")
	start = time.Now()
	run(t, n.Kubectl(append([]string{"init", "--name", n.Name, "--advertise-address", n.IP, "--image", EtcdImage(c.Options.EtcdVersion)}, n.DirFlags()...)...))
	n.WaitEtcd(true, 60*time.Second)
	out := run(t, n.Kubectl("health"))
	t.Logf("etcd pod healthy %s after init:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	if !strings.Contains(out, "https://"+n.IP+":2379") || !strings.Contains(out, "true") {
		t.Errorf("health through the node's manifest does not show a healthy %s:2379:\n%s", n.IP, out)
	}
	conn, err := n.Dial(t.Context(), "127.0.0.1:2379")
	if err != nil {
		t.Errorf("etcd does not listen on the node's own 127.0.0.1:2379: %v", err)
	} else {
		conn.Close()
	}
	out = run(t, n.Kubectl("status", "--endpoints", "https://"+n.IP+":2379", "-o", "json",
		"--cacert", filepath.Join(n.PKIDir(), "etcd", "ca.crt"), "--cert", filepath.Join(n.PKIDir(), "etcd", "healthcheck-client.crt"), "--key", filepath.Join(n.PKIDir(), "etcd", "healthcheck-client.key")))
	if !strings.Contains(out, `"version": "`+c.Options.EtcdVersion+`"`) {
		t.Errorf("etcd on %s does not report version %s:\n%s", n.IP, c.Options.EtcdVersion, out)
	}
	conn, err = n.Dial(t.Context(), n.IP+":2379")
	if err != nil {
		t.Errorf("dialing etcd on the node's address from the test: %v", err)
	} else {
		conn.Close()
	}

	t.Log("the manifest taken out: the kubelet stops etcd")
	if err := os.Rename(n.EtcdManifest(), filepath.Join(n.Dir, "etcd.yaml.away")); err != nil {
		t.Fatal(err)
	}
	n.WaitEtcd(false, 30*time.Second)

	t.Log("stopped, the cluster leaves nothing behind")
	c.Stop()
	for _, name := range []string{c.ID() + "-br", c.ID() + "-1"} {
		if _, err := os.Stat(filepath.Join(netnsDir, name)); !os.IsNotExist(err) {
			t.Errorf("network namespace %s is still there: %v", name, err)
		}
	}
	links, _ := exec.Command("ip", "-o", "link").Output()
	if strings.Contains(string(links), "veth1") {
		t.Errorf("a veth is left in the host namespace:\n%s", links)
	}
	for _, m := range mountInfo() {
		if strings.HasPrefix(m.point, n.Dir) {
			t.Errorf("mount %s (%s) is left", m.point, m.fsType)
		}
	}
	for _, mp := range cgroupMounts() {
		if _, err := os.Stat(filepath.Join(mp, c.ID()+"-1")); !os.IsNotExist(err) {
			t.Errorf("cgroup %s is left", filepath.Join(mp, c.ID()+"-1"))
		}
	}
	if _, err := os.Stat(n.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is left", n.Dir)
	}
	ps, _ := exec.Command("ps", "-eo", "pid,args").Output()
	for _, line := range strings.Split(string(ps), "\n") {
		if strings.Contains(line, n.Dir) {
			t.Errorf("a process of the node still runs: %s", line)
		}
	}
}

// TestLeftoversOfAKilledRunAreRemoved kills a test process (SIGKILL, no
// cleanup runs) whose node runs etcd, and checks that what it left (the
// namespaces, the etcd container and its shim, mounts, cgroups, files) is
// there and that RemoveLeftovers, which every Start runs first, removes
// all of it.
func TestLeftoversOfAKilledRunAreRemoved(t *testing.T) {
	if marker := os.Getenv("NODETEST_HELPER_MARKER"); marker != "" {
		c := Start(t, WithNodes(1), WithPlugin(os.Getenv("NODETEST_HELPER_PLUGIN")))
		n := c.Nodes[0]
		run(t, n.Kubectl(append([]string{"init", "--name", n.Name, "--advertise-address", n.IP, "--image", EtcdImage(c.Options.EtcdVersion)}, n.DirFlags()...)...))
		n.WaitEtcd(true, 60*time.Second)
		if err := os.WriteFile(marker, []byte(c.ID()+"\n"+n.Dir), 0o600); err != nil {
			t.Fatal(err)
		}
		select {} // until killed
	}
	plugin := buildPlugin(t)
	marker := filepath.Join(t.TempDir(), "started")
	helper := exec.Command(os.Args[0], "-test.run", "^TestLeftoversOfAKilledRunAreRemoved$", "-test.timeout", "5m")
	helper.Env = append(os.Environ(), "NODETEST_HELPER_MARKER="+marker, "NODETEST_HELPER_PLUGIN="+plugin)
	var out bytes.Buffer
	helper.Stdout, helper.Stderr = &out, &out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	var data []byte
	for {
		var err error
		if data, err = os.ReadFile(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			helper.Process.Kill()
			helper.Wait()
			t.Fatalf("the helper run did not start its node:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	id, dir, _ := strings.Cut(string(data), "\n")
	t.Logf("kill the test process that runs %s, before its cleanup", id)
	helper.Process.Kill()
	helper.Wait()
	nsPath := filepath.Join(netnsDir, id+"-1")
	if _, err := os.Stat(nsPath); err != nil {
		t.Fatalf("the killed run left no namespace %s: %v", nsPath, err)
	}
	left := processesIn(nsPath)
	t.Logf("left behind: namespaces %s-br and -1, %d processes in it, %s", id, len(left), dir)
	if len(left) == 0 {
		t.Error("the killed run's etcd container and shim should outlive it")
	}

	RemoveLeftovers(t)
	for _, ns := range []string{id + "-br", id + "-1"} {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); !os.IsNotExist(err) {
			t.Errorf("namespace %s is still there", ns)
		}
	}
	for _, pid := range left {
		// A killed process whose parent has not reaped it yet is a
		// zombie: it has stopped running.
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(stat, ')'); err == nil && i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' {
			t.Errorf("process %d (%s) of the killed run still runs", pid, stat[:i+1])
		}
	}
	for _, m := range mountInfo() {
		if strings.HasPrefix(m.point, dir) {
			t.Errorf("mount %s is left", m.point)
		}
	}
	for _, mp := range cgroupMounts() {
		if _, err := os.Stat(filepath.Join(mp, id+"-1")); !os.IsNotExist(err) {
			t.Errorf("cgroup %s is left", filepath.Join(mp, id+"-1"))
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is left", dir)
	}
}

// TestKeepLogs copies a node's kubelet, containerd and etcd logs, as a
// failed test does when NODETEST_KEEP names a directory.
func TestKeepLogs(t *testing.T) {
	n := &Node{Name: "cp-1", Dir: t.TempDir()}
	files := map[string]string{
		"kubelet.log":    "kubelet says\n",
		"containerd.log": "containerd says\n",
		"pod-logs/kube-system_etcd-cp-1_0123/etcd/0.log": "etcd says\n",
		"data/member/snap/db":                            "not a log",
	}
	for rel, text := range files {
		p := filepath.Join(n.Dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := t.TempDir()
	to, err := n.keepLogs(keep, "TestSomething/sub test")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(keep, "TestSomething_sub_test", "cp-1"); to != want {
		t.Errorf("kept in %s, want %s", to, want)
	}
	for rel, text := range files {
		got, err := os.ReadFile(filepath.Join(to, rel))
		if rel == "data/member/snap/db" {
			if err == nil {
				t.Errorf("%s was kept: it is not a log", rel)
			}
			continue
		}
		if string(got) != text {
			t.Errorf("%s kept as %q (%v), want %q", rel, got, err, text)
		}
	}
}
