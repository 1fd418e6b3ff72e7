package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/nodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// TestRollingUpgradeOnRealKubelets is issue 15 as an operator lives it, on
// three control-plane nodes with real kubelets, everything through
// `kubectl etcd` run on the nodes: a cluster born on etcd 3.5 goes to 3.6
// (the three nodes upgrading at once, the restart lock making them take
// turns), is refused 3.7 while the WAL holds 3.5's v2 requests, rolls
// back from an image that crash-loops, goes to 3.7 once every member has
// taken a raft snapshot past them, then back down to 3.6 through etcd's
// downgrade API (which etcd ends itself once every member runs 3.6), and
// has its quota raised by config set on the three nodes at once. A writer
// writes through every member all along; no write may fail but for what a
// leadership move loses. After each step
// every member reports the new version; after 3.7 and after the downgrade
// every member holds the same data, and all written before reads back. A
// kube-apiserver stores through the three members all along; every
// ConfigMap it acknowledged is listed at the end and seen by an informer.
// The log ends with each step's time and the writes during it
// (docs/benchmarks.md, "Rolling etcd upgrade").
func TestRollingUpgradeOnRealKubelets(t *testing.T) {
	v35, v36, v37 := etcdtest.UpgradeVersions(t)[0], etcdtest.Versions(t)[0], etcdtest.Versions(t)[1]
	if !strings.HasPrefix(v35, "3.5.") || !strings.HasPrefix(v36, "3.6.") || !strings.HasPrefix(v37, "3.7.") {
		t.Fatalf("the reference releases are %s, %s, %s; this test wants one 3.5, one 3.6 and one 3.7", v35, v36, v37)
	}
	began := time.Now()
	nodes := startBootNodes(t, v35, 3)
	n1 := nodes[0]

	t.Logf("all on etcd %s", v35)
	all := initAndJoin(t, nodes)
	etcdtest.WaitMembers(t, all, 3, "version "+v35, func(s cluster.MemberStatus) bool { return s.Version == v35 })
	const seeded = 50
	for i := range seeded {
		etcdtest.PutKey(t, all, fmt.Sprintf("/upgrade/seeded/p%02d", i), strings.Repeat("x", 100))
	}
	t.Logf("three nodes on %s in %s", v35, time.Since(began).Round(time.Second))

	t.Log("kube-apiserver on the host stores through the three members (its etcd client balances over them) while a client creates a ConfigMap through it every 50 ms, and an informer watches them")
	etcdPKI := filepath.Join(n1.node.PKIDir(), "etcd")
	var forwards []string
	for _, n := range nodes {
		forwards = append(forwards, "https://"+n.node.Forward(t, n.ip+":2379"))
	}
	api := kubetest.StartAPIServer(t, forwards,
		kubetest.EtcdTLS(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(n1.node.PKIDir(), "apiserver-etcd-client.crt"), filepath.Join(n1.node.PKIDir(), "apiserver-etcd-client.key")))
	watched := watchConfigMaps(t, api.Client)
	cmw := startConfigMapWriter(t, api.Client, 50*time.Millisecond)

	w := etcdtest.StartHealthCheckedWriter(t, all, "/upgrade/writer/", 20*time.Millisecond)
	var steps []string
	var stderrs strings.Builder
	step := func(name string, do func()) {
		okBefore, failedBefore := w.Counts()
		start := time.Now()
		do()
		ok, failed := w.Counts()
		line := fmt.Sprintf("%s: %s; writes during it %d ok, %d failed", name, time.Since(start).Round(100*time.Millisecond), ok-okBefore, failed-failedBefore)
		t.Log(line)
		steps = append(steps, line)
	}

	step(fmt.Sprintf("%s -> %s, upgrade started on the 3 nodes at once", v35, v36), func() {
		stderrs.WriteString(upgradeAtOnce(t, nodes, v36))
	})
	etcdtest.WaitMembers(t, all, 3, "version "+v36, func(s cluster.MemberStatus) bool { return s.Version == v36 })

	t.Logf("%s -> %s on %s is refused while the WAL holds the v2 requests of %s", v36, v37, n1.name, v35)
	before, err := os.ReadFile(n1.node.EtcdManifest())
	if err != nil {
		t.Fatal(err)
	}
	r, err := n1.kubectl(t, upgradeArgs(n1, v37)...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code == 0 || !strings.Contains(r.stderr, "v2 requests") || !strings.Contains(r.stderr, "panics") {
		t.Fatalf("upgrade to %s with v2 entries in the WAL: exit %d, want a refusal naming them:\n%s", v37, r.code, r.stderr)
	}
	if after, err := os.ReadFile(n1.node.EtcdManifest()); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the refused upgrade changed the manifest (%v)", err)
	}
	t.Logf("refused: %s", lastLine(r.stderr))

	// The pause image tagged as a later 3.6 patch: the kubelet starts it,
	// and the etcd command it is given does not exist.
	bad := nodetest.EtcdImage(v36[:strings.LastIndex(v36, ".")] + ".99")
	step("an image that crash-loops rolls back to the old manifest; the cluster keeps serving", func() {
		if err := n1.node.TagImage(nodetest.SandboxImage, bad); err != nil {
			t.Fatal(err)
		}
		r, err := n1.kubectl(t, append([]string{"upgrade", "--image", bad, "--yes", "--timeout", "20s"}, n1.manifestFlags()...)...)
		if err != nil {
			t.Fatal(err)
		}
		if r.code == 0 || !strings.Contains(r.stderr, "rolled back to "+nodetest.EtcdImage(v36)) {
			t.Fatalf("upgrade to a crash-looping image: exit %d, want a rollback:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if after, err := os.ReadFile(n1.node.EtcdManifest()); err != nil || !bytes.Equal(before, after) {
			t.Fatalf("after the rollback the manifest differs from the one before (%v)", err)
		}
		t.Logf("rolled back: %s", lastLine(r.stderr))
		stderrs.WriteString(r.stderr)
		etcdtest.WaitMembers(t, all, 3, "version "+v36, func(s cluster.MemberStatus) bool { return s.Version == v36 })
	})

	step("the terminal of an upgrade to such an image closes (SIGHUP) while its gate waits: the new manifest stays and the lock is freed; the same upgrade again checks the member and names the way back, which works", func() {
		// Another tag than the step before: on that one the pod (the
		// same manifest, so the same UID) crash-looped again at once, and
		// in CI the gate saw it and rolled back before the signal came.
		bad := nodetest.EtcdImage(v36[:strings.LastIndex(v36, ".")] + ".98")
		if err := n1.node.TagImage(nodetest.SandboxImage, bad); err != nil {
			t.Fatal(err)
		}
		interruptedUpgrade(t, n1, bad, v36)
		etcdtest.WaitMembers(t, all, 3, "version "+v36, func(s cluster.MemberStatus) bool { return s.Version == v36 })
	})

	step("10,000 writes, 8 at a time, until every member has taken a raft snapshot past the v2 entries", func() {
		etcdtest.PutMany(t, all, "/upgrade/many/", 10_000)
		var manifests []string
		for _, n := range nodes {
			manifests = append(manifests, n.node.EtcdManifest())
		}
		etcdtest.WaitNoV2Entries(t, manifests...)
	})

	step(fmt.Sprintf("%s -> %s, upgrade started on the 3 nodes at once", v36, v37), func() {
		stderrs.WriteString(upgradeAtOnce(t, nodes, v37))
	})
	etcdtest.WaitMembers(t, all, 3, "version "+v37, func(s cluster.MemberStatus) bool { return s.Version == v37 })
	step("storage version 3.7 on every member", func() {
		etcdtest.WaitMembers(t, all, 3, "storage version 3.7", func(s cluster.MemberStatus) bool { return strings.HasPrefix(s.StorageVersion, "3.7.") })
	})
	sameData(t, all)

	step("downgrade validate 3.6, downgrade enable 3.6 (waits for storage version 3.6)", func() {
		r := n1.mustKubectl(t, "downgrade", "validate", "3.6")
		t.Logf("%s%s", r.stdout, r.stderr)
		r = n1.mustKubectl(t, "downgrade", "enable", "3.6", "--yes", "--timeout", "3m")
		t.Logf("%s%s", r.stdout, r.stderr)
		etcdtest.WaitMembers(t, all, 3, "storage version 3.6", func(s cluster.MemberStatus) bool { return strings.HasPrefix(s.StorageVersion, "3.6.") })
		waitDowngrade(t, all, true)
	})

	step(fmt.Sprintf("%s -> %s (downgrade enabled), upgrade started on the 3 nodes at once", v37, v36), func() {
		stderrs.WriteString(upgradeAtOnce(t, nodes, v36))
	})
	etcdtest.WaitMembers(t, all, 3, "version "+v36, func(s cluster.MemberStatus) bool { return s.Version == v36 })
	t.Log("with every member on 3.6, etcd ends the downgrade itself")
	waitDowngrade(t, all, false)

	const quota = 3 << 30
	step("config set quota-backend-bytes=3GiB, started on the 3 nodes at once", func() {
		stderrs.WriteString(atOnce(t, nodes, "etcd flags changed", func(n *bootNode) []string {
			return append([]string{"config", "set", "quota-backend-bytes=3GiB", "--yes", "--timeout", "3m", "--lock-timeout", "10m"}, n.manifestFlags()...)
		}))
	})
	etcdtest.WaitMembers(t, all, 3, "a quota of 3 GiB", func(s cluster.MemberStatus) bool { return s.DBQuota == quota })

	ok, failures := w.Finish()
	t.Logf("writer: %d writes ok, %d failed, one every 20ms through a health-checked client over the 3 members, for %s", ok, len(failures), time.Since(w.Started).Round(time.Second))
	lost := etcdtest.CheckWrites(t, failures, stderrs.String())
	moves := strings.Count(stderrs.String(), "Moving leadership from")
	if ok < 100 {
		t.Errorf("only %d writes succeeded", ok)
	}

	t.Log("the data written on every version serves on the downgraded cluster")
	cli := etcdtest.Client(t, all)
	defer cli.Close()
	for prefix, want := range map[string][2]int{
		"/upgrade/seeded/": {seeded, seeded},
		"/upgrade/many/":   {10_000, 10_000},
		"/upgrade/writer/": {ok, ok + lost},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.Kvs); n < want[0] || n > want[1] {
			t.Errorf("%s: %d keys, want %d to %d", prefix, n, want[0], want[1])
		}
	}
	sameData(t, all)

	t.Log("kube-apiserver served throughout: every ConfigMap it acknowledged is listed, and its informer holds them")
	acked, apiFailed, maxRV := cmw.finish()
	list, err := api.Client.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("kubectl get configmaps after the upgrades: %v\n%s", err, api.LogTail(20))
	}
	listed := map[string]bool{}
	for _, cm := range list.Items {
		listed[cm.Name] = true
	}
	for name := range acked {
		if !listed[name] {
			t.Errorf("ConfigMap %s, acknowledged by kube-apiserver, is not listed", name)
		}
	}
	if len(acked) < 100 {
		t.Errorf("kube-apiserver acknowledged only %d ConfigMaps (%d failed)", len(acked), apiFailed)
	}
	if len(acked) > 0 {
		last := ""
		for name := range acked {
			last = max(last, name)
		}
		watched.waitFor(t, api.Client, last, 0)
	}
	t.Logf("kube-apiserver: %d ConfigMaps created, %d failed, highest resourceVersion %d", len(acked), apiFailed, maxRV)
	steps = append(steps, fmt.Sprintf("kube-apiserver: %d ConfigMaps created, %d failed", len(acked), apiFailed))
	steps = append(steps, fmt.Sprintf("writer: %d ok, %d failed (%d lost to %d leadership moves)", ok, len(failures), lost, moves))
	t.Logf("summary (whole test %s):\n  %s", time.Since(began).Round(time.Second), strings.Join(steps, "\n  "))
}

// upgradeArgs upgrades n's etcd to version.
func upgradeArgs(n *bootNode, version string) []string {
	return append([]string{"upgrade", "--version", version, "--yes", "--timeout", "3m", "--lock-timeout", "10m"}, n.manifestFlags()...)
}

// upgradeAtOnce starts `kubectl etcd upgrade --version version` on every
// node at the same moment; see atOnce.
func upgradeAtOnce(t *testing.T, nodes []*bootNode, version string) string {
	t.Helper()
	return atOnce(t, nodes, "etcd upgraded from", func(n *bootNode) []string { return upgradeArgs(n, version) })
}

// atOnce runs kubectl etcd ARGS (args(n)) on every node at the same
// moment, as a script run on each control-plane node would, and wants
// each to exit 0 printing done, with no two members down at once and at
// least one waiting for the restart lock; it returns their stderr.
func atOnce(t *testing.T, nodes []*bootNode, done string, args func(*bootNode) []string) string {
	t.Helper()
	sw := watchServing(t, nodes)
	results, errs := etcdtest.AtOnce(nodes, func(n *bootNode) (result, error) { return n.kubectl(t, args(n)...) })
	sw.finish(t, nodes)
	var all strings.Builder
	waiters := 0
	for i, n := range nodes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		all.WriteString(results[i].stderr)
		if strings.Contains(results[i].stderr, "Waiting for lock "+restartLock) {
			waiters++
		}
		if results[i].code != 0 || !strings.Contains(results[i].stdout, done) {
			t.Fatalf("%s: kubectl etcd %s: exit %d\n%s%s\n%s", n.name, strings.Join(args(n), " "), results[i].code, results[i].stdout, results[i].stderr, n.node.Logs(40))
		}
		t.Logf("%s: %s", n.name, strings.TrimSpace(results[i].stdout))
	}
	if waiters == 0 {
		t.Errorf("none of the %d changes started at once waited for the lock", len(nodes))
	}
	t.Logf("%d of the %d changes waited for the lock %s", waiters, len(nodes), restartLock)
	return all.String()
}

// waitDowngrade waits until every member reports a downgrade in
// progress (enabled) or none.
func waitDowngrade(t *testing.T, cfg *connect.Config, enabled bool) {
	t.Helper()
	cli := etcdtest.Client(t, cfg)
	defer cli.Close()
	if err := poll.Until(context.Background(), fmt.Sprintf("downgrade enabled %v on every member", enabled), 500*time.Millisecond, 2*time.Minute, func(ctx context.Context) error {
		for _, ep := range cfg.Endpoints {
			resp, err := cli.Status(ctx, ep)
			if err != nil {
				return fmt.Errorf("%s: %w", ep, err)
			}
			info := resp.DowngradeInfo
			if got := info != nil && info.Enabled; got != enabled {
				return fmt.Errorf("%s reports downgrade enabled %v (%v)", ep, got, info)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("every member reports downgrade enabled %v", enabled)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// interruptedUpgrade upgrades n to the image bad, which never serves, and
// sends the plugin SIGHUP, as a closed SSH session does, once the new
// manifest is written; then runs the same upgrade again, which must check
// the member rather than find nothing to do, and goes back the way its
// error says, to etcd release good.
func interruptedUpgrade(t *testing.T, n *bootNode, bad, good string) {
	t.Helper()
	// The kubelet's root dir is not given, so the gate cannot see the
	// crash loop and end before the signal: it waits until --timeout.
	cmd := n.node.Kubectl("upgrade", "--image", bad, "--yes", "--timeout", "2m", "--manifests-dir", n.node.ManifestsDir(), "--kubelet-root-dir", t.TempDir())
	stderr := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stderr = f
	// A child inherits an ignored SIGHUP (a test run under nohup, as CI
	// may be), and the plugin then rightly keeps running when it comes.
	// Caught here, it is the default again in the child after exec.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waiting := "; waiting for " + n.name + " to serve"
	err = poll.Until(context.Background(), "the upgrade to write the new manifest", 100*time.Millisecond, 2*time.Minute, func(context.Context) error {
		if data, _ := os.ReadFile(stderr); !strings.Contains(string(data), waiting) {
			return fmt.Errorf("its output has no %q yet", waiting)
		}
		return nil
	})
	if err != nil {
		cmd.Process.Kill()
		<-done
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		out, _ := os.ReadFile(stderr)
		t.Fatalf("the upgrade did not end within 30 s of SIGHUP:\n%s", out)
	}
	out, _ := os.ReadFile(stderr)
	if err == nil || !strings.Contains(string(out), "interrupted while waiting for "+n.name+" to serve") || !strings.Contains(string(out), "the new manifest stays") || !strings.Contains(string(out), "Released lock") {
		t.Fatalf("upgrade interrupted by SIGHUP: %v; want it to keep the new manifest, free the lock and say so:\n%s", err, out)
	}
	t.Logf("interrupted: %s", lastLine(string(out)))
	if m, err := staticpod.Read(n.node.EtcdManifest()); err != nil || m.Pod.Spec.Containers[m.Container].Image != bad {
		t.Fatalf("after the interrupted upgrade the manifest is %+v (%v), want image %s", m, err, bad)
	}

	r, err := n.kubectl(t, append([]string{"upgrade", "--image", bad, "--yes", "--timeout", "20s"}, n.manifestFlags()...)...)
	if err != nil {
		t.Fatal(err)
	}
	back := regexp.MustCompile(`go back to the manifest before it: cp (\S+) (\S+), then kubectl etcd upgrade --image (\S+) \(it checks the member\)`).FindStringSubmatch(r.stderr)
	if r.code == 0 || !strings.Contains(r.stderr, "already has "+bad+", but "+n.name+" does not serve") || back == nil || back[2] != n.node.EtcdManifest() || back[3] != nodetest.EtcdImage(good) || strings.Contains(r.stderr, "nothing to do") {
		t.Fatalf("the same upgrade again on a member that does not serve it: exit %d; want it refused with the way back:\n%s", r.code, r.stderr)
	}
	t.Logf("refused: %s", lastLine(r.stderr))

	data, err := os.ReadFile(back[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(back[2], data, 0o600); err != nil {
		t.Fatal(err)
	}
	r = n.mustKubectl(t, append([]string{"upgrade", "--image", back[3], "--yes", "--timeout", "2m"}, n.manifestFlags()...)...)
	if !strings.Contains(r.stderr, n.name+" runs "+back[3]+"; nothing to do") {
		t.Fatalf("the upgrade to the image put back does not check the member and end:\n%s", r.stderr)
	}
}
