package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// TestRecoverQuorumOnRealKubelets is the worst day of issue 14 on three
// control-plane nodes with real kubelets: a kube-apiserver stores its
// objects through cp-1's etcd (as kubeadm's stacked apiserver on cp-1
// does) while a writer creates ConfigMaps and records every one the
// apiserver acknowledged, and an informer watches them. Leadership is
// moved to cp-2, then the etcd of cp-2 and cp-3 is killed (SIGKILL) and
// their manifests and data taken off the nodes: quorum is lost. First the
// faults: `recover quorum` on cp-1 killed (SIGKILL) at each of its steps,
// and etcd crashing on the recovered copy, each time leaving the original
// data byte for byte as etcd left it and the original manifest back (or
// the next run saying what to run). Then `recover quorum` must bring back
// every acknowledged ConfigMap at a revision above every resourceVersion
// the apiserver handed out; kube-apiserver, restarted on it, serves
// `kubectl get`, and the informer, its watch too old now, relists and sees
// what is created after. cp-2 and cp-3 then come back as they were (only
// cut off, with their data) and make a quorum of the old cluster, which
// must not reach the recovered member; last they join again with the steps
// the command printed, and all three hold the same data.
func TestRecoverQuorumOnRealKubelets(t *testing.T) {
	version := etcdtest.NewestVersion(t) // the recovery's etcd is 3.7: so is the image
	nodes := startBootNodes(t, version, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	start := time.Now()
	all := initAndJoin(t, nodes)

	t.Log("kube-apiserver on the host stores through cp-1's etcd only, as kubeadm's apiserver on cp-1 does")
	etcdPKI := filepath.Join(n1.node.PKIDir(), "etcd")
	api := kubetest.StartAPIServer(t, []string{"https://" + n1.node.Forward(t, n1.ip+":2379")},
		kubetest.EtcdTLS(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(n1.node.PKIDir(), "apiserver-etcd-client.crt"), filepath.Join(n1.node.PKIDir(), "apiserver-etcd-client.key")))
	watched := watchConfigMaps(t, api.Client)
	w := startConfigMapWriter(t, api.Client, 20*time.Millisecond)
	time.Sleep(3 * time.Second)

	t.Log("leadership moves to cp-2, so cp-1 is a follower when the others die")
	r := n1.mustKubectl(t, "member", "move-leader", n2.name, "--yes")
	t.Logf("%s%s", r.stdout, r.stderr)
	time.Sleep(2 * time.Second)

	t.Log("kill -9 the etcd of cp-2 (the leader) and cp-3 while the writer writes; their manifests and data go (kept off the nodes, for later)")
	lost := map[*bootNode][]byte{}
	for _, n := range []*bootNode{n2, n3} {
		n.node.KillEtcd()
		manifest, err := os.ReadFile(n.node.EtcdManifest())
		if err != nil {
			t.Fatal(err)
		}
		lost[n] = manifest
		if err := os.Remove(n.node.EtcdManifest()); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*bootNode{n2, n3} {
		n.node.WaitEtcd(false, 30*time.Second)
		if err := os.Rename(n.node.DataDir(), n.node.DataDir()+".lost"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	acked, failed, maxRV := w.finish()
	t.Logf("writer: %d ConfigMaps acknowledged (the highest resourceVersion %d), %d writes failed", len(acked), maxRV, failed)
	if len(acked) < 50 {
		t.Fatalf("only %d writes were acknowledged", len(acked))
	}

	recoveryFaults(t, n1)

	t.Log("recover quorum on cp-1")
	began := time.Now()
	r = n1.mustKubectl(t, "recover", "quorum", "--yes", "--timeout", "2m", "--command-timeout", "2s")
	t.Logf("recover quorum took %s:\n%s%s", time.Since(began).Round(time.Millisecond), r.stderr, r.stdout)
	// The runs killed after their copy began left it (SIGKILL: no
	// rollback); the preflight names them, with the rm to run.
	if left := regexp.MustCompile(`\[preflight\] (\S+\.work) \(.*\) was left by an interrupted recover quorum \(its copy of the data\) and is not used: remove it with rm -rf (\S+)`).FindAllStringSubmatch(r.stderr, -1); len(left) < 2 {
		t.Errorf("the preflight after recoveries killed at the copy, the force-new-cluster and the restore names %d copies they left, want at least 2", len(left))
	} else {
		for _, l := range left {
			if _, err := os.Stat(l[1]); l[1] != l[2] || err != nil {
				t.Errorf("the preflight names %s to remove (rm -rf %s): %v", l[1], l[2], err)
			}
		}
	}
	// The run killed once etcd served its data, and the one whose etcd
	// crashed, each left a whole data directory the member is not on.
	if made := regexp.MustCompile(`\[preflight\] (\S+) \(.*\) is an etcd data directory this member does not run on: a recovery or restore made it`).FindAllStringSubmatch(r.stderr, -1); len(made) < 2 {
		t.Errorf("the preflight names %d data directories the earlier runs made, want at least 2", len(made))
	}
	for _, want := range []string{"no quorum", "member cp-2 (", "member cp-3 (", "unreachable", "[1/5 stop]", "[2/5 copy]", "[3/5 force-new-cluster]", "[4/5 restore]", "[5/5 start]", "[done]"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("recover quorum does not say %q", want)
		}
	}
	one := n1.config(t, n1)
	waitVoters(t, one, 1)

	t.Log("doctor on cp-1, whose etcd now runs on the data directory the recovery made, names the copies the killed runs left beside the original")
	d, err := n1.kubectl(t, "doctor", "--sample-window", "0s")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.stdout, "was left by an interrupted recover quorum (its copy of the data); etcd does not use it") {
		t.Errorf("doctor after the recovery (exit %d) does not name the copies the killed runs left:\n%s%s", d.code, d.stdout, d.stderr)
	}
	if !strings.Contains(d.stdout, n1.node.DataDir()+" (") || !strings.Contains(d.stdout, "the member ran on it before a recovery or restore moved it to") {
		t.Errorf("doctor after the recovery (exit %d) does not name the original data directory, kept, as one etcd no longer runs on:\n%s%s", d.code, d.stdout, d.stderr)
	}

	t.Log("kube-apiserver restarted on the recovered member serves every acknowledged ConfigMap, above every resourceVersion it handed out")
	api.Restart()
	ctx := context.Background()
	out, err := api.Kubectl(ctx, "get", "--raw", "/api/v1/namespaces/default/configmaps")
	if err != nil {
		t.Fatal(err)
	}
	var list corev1.ConfigMapList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("kubectl get --raw: %v\n%s", err, out)
	}
	listRV, _ := strconv.ParseInt(list.ResourceVersion, 10, 64)
	if listRV <= maxRV {
		t.Errorf("kubectl get lists at resourceVersion %d, not above the highest one handed out before, %d", listRV, maxRV)
	}
	served := map[string]bool{}
	for _, cm := range list.Items {
		served[cm.Name+"="+cm.Data["i"]] = true
	}
	if names, err := api.Kubectl(ctx, "get", "configmaps", "-n", "default", "-o", "name"); err != nil || strings.Count(names, "configmap/") != len(list.Items) {
		t.Errorf("kubectl get configmaps lists %d, the API %d: %v", strings.Count(names, "configmap/"), len(list.Items), err)
	}
	missing := 0
	for name := range acked {
		if !served[name+"="+name] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged ConfigMap %s is not served after the recovery", name)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged ConfigMaps are missing", missing, len(acked))
	}
	if _, err := api.Kubectl(ctx, "create", "configmap", "after-recovery", "-n", "default", "--from-literal=i=after-recovery"); err != nil {
		t.Fatal(err)
	}
	watched.waitFor(t, api.Client, "after-recovery", maxRV)

	t.Log("cp-2 and cp-3 were only cut off: they come back with their old data and manifests, and the two make a quorum of the old cluster; cp-1 must not hear them")
	before := n1.members(t)
	beforeHash, rev := memberHash(t, one, 0)
	for _, n := range []*bootNode{n2, n3} {
		if err := os.Rename(n.node.DataDir()+".lost", n.node.DataDir()); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.node.EtcdManifest(), lost[n], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*bootNode{n2, n3} {
		n.node.WaitEtcd(true, 60*time.Second)
	}
	old := n2.config(t, n2, n3)
	waitServing(t, old)
	time.Sleep(5 * time.Second)
	if after := n1.members(t); len(after) != 1 || after[0].ID != before[0].ID {
		t.Errorf("cp-1's members changed once the old members came back: %+v, before %+v", after, before)
	}
	if h, _ := memberHash(t, one, rev); h != beforeHash {
		t.Errorf("cp-1's data up to revision %d changed once the old members came back: HashKV %d, before %d", rev, h, beforeHash)
	}
	if out, err := api.Kubectl(ctx, "get", "configmap", "after-recovery", "-n", "default", "-o", "jsonpath={.data.i}"); err != nil || out != "after-recovery" {
		t.Errorf("kube-apiserver once the old members came back: %q, %v", out, err)
	}

	t.Log("cp-2 and cp-3 come back with the steps recover quorum printed, taken as printed")
	steps := printedJoinSteps.FindAllStringSubmatch(r.stdout, -1)
	if len(steps) != 2 || steps[0][1] != n2.name || steps[1][1] != n3.name {
		t.Fatalf("recover quorum printed steps %q, want one for cp-2 then one for cp-3:\n%s", steps, r.stdout)
	}
	for i, n := range []*bootNode{n2, n3} {
		step := steps[i][2]
		if got := flagValue(step, "endpoints"); got != n1.url() {
			t.Errorf("step for %s joins through %q, want %s", n.name, got, n1.url())
		}
		t.Logf("on %s, as printed: %s", n.name, step)
		runPrintedStep(t, n, step, n.dirs()...)
	}
	waitVoters(t, all, 3)
	sameData(t, all)
	n1.mustKubectl(t, "check", "consistency")
	if out, err := api.Kubectl(ctx, "get", "configmap", "after-recovery", "-n", "default", "-o", "jsonpath={.data.i}"); err != nil || out != "after-recovery" {
		t.Errorf("after the joins: %q, %v", out, err)
	}
	t.Logf("the worst day took %s after the nodes started", time.Since(start).Round(time.Second))

	t.Log("cp-1, on the data directory the recovery made, leaves: not with --data-dir of the original, kept; without it, the recovered one is cleared and the original stays")
	original := etcdtest.FileHashes(t, n1.node.DataDir())
	recovered, err := n1.manifestDataDir()
	if err != nil || recovered == n1.node.DataDir() {
		t.Fatalf("cp-1's manifest does not run etcd on the data directory the recovery made: %q, %v", recovered, err)
	}
	r = n1.mustFail(t, append([]string{"leave", "--yes"}, n1.cleanupFlags()...)...)
	if !strings.Contains(r.stderr, "--data-dir "+n1.node.DataDir()+" is not the data directory") {
		t.Errorf("leave with --data-dir of the original data:\n%s", r.stderr)
	}
	r = n1.mustKubectl(t, append([]string{"leave", "--yes"}, n1.manifestFlags()...)...)
	if !strings.Contains(r.stdout, "cleared "+recovered+"\n") {
		t.Errorf("leave on the recovered member did not clear %s:\n%s%s", recovered, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "[etcd] "+n1.node.DataDir()+" (") || !strings.Contains(r.stderr, "is an etcd data directory this member does not run on: the member ran on it before a recovery or restore moved it to "+recovered) {
		t.Errorf("leave does not tell of the original data it kept:\n%s", r.stderr)
	}
	if entries, err := os.ReadDir(recovered); err != nil || len(entries) > 0 {
		t.Errorf("leave left %d entries in %s (%v)", len(entries), recovered, err)
	}
	if changed := etcdtest.ChangedFiles(original, etcdtest.FileHashes(t, n1.node.DataDir())); len(changed) > 0 {
		t.Errorf("leave changed the original data it does not run on: %s", changed)
	}
	two := n2.config(t, n2, n3)
	waitVoters(t, two, 2)

	t.Log("cp-1 joins again: refused on the original data, kept, with the reset that clears it; after it, cp-1 joins")
	join := append([]string{"join", "--endpoints", n2.url(), "--timeout", "2m"}, n1.identity()...)
	r = n1.mustFail(t, join...)
	clear := regexp.MustCompile(`clear it with '(kubectl etcd reset --data-dir \S+)' first`).FindStringSubmatch(r.stderr)
	if clear == nil || !strings.HasSuffix(clear[1], " "+n1.node.DataDir()) {
		t.Fatalf("join on the original data does not say how to clear it:\n%s", r.stderr)
	}
	n1.mustKubectl(t, append(append(strings.Fields(clear[1])[2:], "--yes"), n1.manifestFlags()...)...)
	n1.mustKubectl(t, join...)
	waitVoters(t, all, 3)
	sameData(t, all)
}

// printedJoinSteps are the "on NODE: COMMAND" lines recover quorum prints
// for the other nodes.
var printedJoinSteps = regexp.MustCompile(`(?m)^\s+on (\S+): (sudo kubectl etcd .+)$`)

// configMapWriter creates a ConfigMap through kube-apiserver every
// interval (an etcdtest.Writer) and records each one it acknowledged with
// the resourceVersion it handed out.
type configMapWriter struct {
	*etcdtest.Writer
	mu    sync.Mutex
	acked map[string]int64
}

func startConfigMapWriter(t *testing.T, client kubernetes.Interface, interval time.Duration) *configMapWriter {
	w := &configMapWriter{acked: map[string]int64{}}
	w.Writer = etcdtest.StartWriterFunc(t, interval, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("w-%05d", i)
		cm, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		rv, err := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.acked[name] = rv
		w.mu.Unlock()
		return nil
	})
	return w
}

// finish stops the writer and returns the acknowledged ConfigMaps, how
// many writes failed, and the highest resourceVersion handed out.
func (w *configMapWriter) finish() (map[string]int64, int, int64) {
	_, failures := w.Finish()
	w.mu.Lock()
	defer w.mu.Unlock()
	var maxRV int64
	for _, rv := range w.acked {
		maxRV = max(maxRV, rv)
	}
	return w.acked, len(failures), maxRV
}

// configMapWatch is an informer on the ConfigMaps of default, as a
// controller has, with the errors its watch ended on.
type configMapWatch struct {
	informer cache.SharedIndexInformer
	mu       sync.Mutex
	errs     []error
}

func watchConfigMaps(t *testing.T, client kubernetes.Interface) *configMapWatch {
	t.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace("default"))
	w := &configMapWatch{informer: factory.Core().V1().ConfigMaps().Informer()}
	if err := w.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		w.mu.Lock()
		w.errs = append(w.errs, err)
		w.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		t.Fatal("the ConfigMap informer did not sync")
	}
	return w
}

// waitFor waits until the informer holds the ConfigMap name, and wants
// it then to hold what kube-apiserver serves (names, a resourceVersion
// above oldRV): its watch, too old for the recovered etcd, relisted.
func (w *configMapWatch) waitFor(t *testing.T, client kubernetes.Interface, name string, oldRV int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, ok, _ := w.informer.GetStore().GetByKey("default/" + name); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the informer does not see %s a minute after it was created", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rv, _ := strconv.ParseInt(w.informer.LastSyncResourceVersion(), 10, 64)
	if rv <= oldRV {
		t.Errorf("the informer synced to resourceVersion %d, not above %d", rv, oldRV)
	}
	list, err := client.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var served, cached []string
	for _, cm := range list.Items {
		served = append(served, cm.Name)
	}
	cached = w.informer.GetStore().ListKeys()
	for i := range cached {
		cached[i] = strings.TrimPrefix(cached[i], "default/")
	}
	sort.Strings(served)
	sort.Strings(cached)
	if strings.Join(served, ",") != strings.Join(cached, ",") {
		t.Errorf("the informer holds %d ConfigMaps, kube-apiserver serves %d", len(cached), len(served))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("the informer sees %s, synced at resourceVersion %d, and holds the %d ConfigMaps served; its watch ended on %d errors: %v", name, rv, len(cached), len(w.errs), w.errs)
}

// recoveryFaults kills `recover quorum` on n (SIGKILL) as each of its
// steps shows, and crashes etcd on the recovered copy: every time the
// original data directory is byte for byte as etcd left it when it
// stopped, and the original manifest is back, or the next run puts it
// back or says what to run.
func recoveryFaults(t *testing.T, n *bootNode) {
	t.Helper()
	original, err := os.ReadFile(n.node.EtcdManifest())
	if err != nil {
		t.Fatal(err)
	}
	data := n.node.DataDir()
	args := []string{"recover", "quorum", "--yes", "--timeout", "1m", "--command-timeout", "1s", "--dial-timeout", "1s"}
	// The manifest's etcd, on the original data (the nodes' manifests
	// keep the host's paths inside the container).
	onOriginal := "--data-dir=" + data
	for _, step := range []string{"[1/5 stop]", "[2/5 copy]", "[3/5 force-new-cluster]", "[4/5 restore]", "[5/5 start]"} {
		t.Logf("recover quorum killed (SIGKILL) as it prints %s", step)
		var stopped map[string]string
		runRecovery(t, n, args, func(line string) bool {
			if strings.Contains(line, step) {
				return true
			}
			if strings.Contains(line, "[1/5 stop]") {
				n.node.WaitEtcdExited(time.Minute)
				stopped = etcdtest.FileHashes(t, data)
			}
			return false
		})
		if stopped == nil {
			n.node.WaitEtcdExited(time.Minute)
			stopped = etcdtest.FileHashes(t, data)
		}
		if changed := etcdtest.ChangedFiles(stopped, etcdtest.FileHashes(t, data)); len(changed) > 0 {
			t.Errorf("killed at %s: the original data changed: %s", step, changed)
		}
		if step != "[5/5 start]" {
			if _, err := os.Stat(n.node.EtcdManifest()); err == nil {
				t.Errorf("killed at %s: the manifest is in place; it should be moved aside", step)
			}
			r := n.mustFail(t, args...)
			if !strings.Contains(r.stderr, "an earlier recovery was interrupted with the manifest moved aside: it is back in "+n.node.EtcdManifest()) {
				t.Errorf("the run after a recovery killed at %s does not say it put the manifest back:\n%s", step, r.stderr)
			}
			n.sameManifest(t, original)
			n.node.WaitEtcdArg(onOriginal, time.Minute)
			continue
		}
		t.Log("killed once it wrote the recovered manifest: etcd serves the recovered data alone, and the next run says so and what to run")
		waitVoters(t, n.config(t, n), 1)
		r := n.mustFail(t, args...)
		back := regexp.MustCompile(`first run: cp (\S+) (\S+)`).FindStringSubmatch(r.stderr)
		if !strings.Contains(r.stderr, "already serves alone on the data an earlier recovery made") || !strings.Contains(r.stderr, "on cp-2: sudo kubectl etcd reset --yes && sudo kubectl etcd join --name cp-2") || back == nil || back[2] != n.node.EtcdManifest() {
			t.Fatalf("the run after a recovery killed at %s:\n%s", step, r.stderr)
		}
		t.Logf("as printed: cp %s %s", back[1], back[2])
		kept, err := os.ReadFile(back[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(back[2], kept, 0o600); err != nil {
			t.Fatal(err)
		}
		n.sameManifest(t, original)
		n.node.WaitEtcdArg(onOriginal, time.Minute)
		waitNoQuorum(t, n.config(t, n))
	}

	t.Log("etcd crashes on the recovered copy (its database truncated as it is written): the recovery sees the kubelet restart it, gives up long before --timeout and puts the original back")
	var stopped map[string]string
	restored := regexp.MustCompile(`\[4/5 restore\] Restored into (\S+) `)
	began := time.Now()
	r := runRecovery(t, n, []string{"recover", "quorum", "--yes", "--timeout", "4m", "--kubelet-root-dir", n.node.KubeletRootDir(), "--command-timeout", "1s", "--dial-timeout", "1s"}, func(line string) bool {
		if strings.Contains(line, "[1/5 stop]") {
			n.node.WaitEtcdExited(time.Minute)
			stopped = etcdtest.FileHashes(t, data)
		}
		if m := restored.FindStringSubmatch(line); m != nil {
			if err := os.Truncate(filepath.Join(m[1], "member", "snap", "db"), 1024); err != nil {
				t.Fatal(err)
			}
		}
		return false
	})
	t.Logf("recover quorum with etcd crashing on the copy: exit %d\n%s", r.code, r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "waiting for etcd on the recovered data") || !strings.Contains(r.stderr, "the original manifest is back in place and the data in "+data+" was not changed") {
		t.Fatalf("recover quorum with etcd crashing on the copy: exit %d\n%s", r.code, r.stderr)
	}
	// The kubelet's back-off (10, 20, 40 s) puts the fourth start about
	// 70 s after the first: well inside --timeout.
	if !strings.Contains(r.stderr, "times since") || !strings.Contains(r.stderr, "it is crash-looping") || time.Since(began) > 3*time.Minute {
		t.Fatalf("recover quorum with etcd crashing on the copy took %s and did not say it crash-loops:\n%s", time.Since(began).Round(time.Second), r.stderr)
	}
	// The node's kubelet keeps pod logs under the podLogsDir of its
	// config.yaml, not /var/log/pods: the error quotes etcd's last error from there.
	if !strings.Contains(r.stderr, "its last words ("+n.node.Dir) {
		t.Errorf("the crash-loop error does not quote etcd's log from the kubelet's podLogsDir:\n%s", r.stderr)
	}
	n.sameManifest(t, original)
	if changed := etcdtest.ChangedFiles(stopped, etcdtest.FileHashes(t, data)); len(changed) > 0 {
		t.Errorf("etcd crashing on the copy: the original data changed: %s", changed)
	}
	// The rollback removed the copy it made, as large as the data.
	if m := regexp.MustCompile(`\[2/5 copy\] etcd stopped in \S+; copied \S+ to (\S+) in`).FindStringSubmatch(r.stderr); m == nil {
		t.Errorf("recover quorum does not say where it copied the data:\n%s", r.stderr)
	} else if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy %s is still there after the rollback (%v)", m[1], err)
	}
	n.node.WaitEtcdArg(onOriginal, time.Minute)
	waitNoQuorum(t, n.config(t, n))
}

// runRecovery runs kubectl etcd ARGS on n, hands each line of its stderr
// to onLine as it comes, and kills the command (SIGKILL) when onLine says
// so.
func runRecovery(t *testing.T, n *bootNode, args []string, onLine func(string) bool) result {
	t.Helper()
	r := watchStderr(t, n.node.Kubectl(args...), onLine)
	if r.code == -1 {
		t.Logf("%s: kubectl etcd %s: killed\n%s", n.name, strings.Join(args, " "), r.stderr)
	}
	return r
}

// mustFail runs kubectl etcd ARGS on n and wants exit 1.
func (n *bootNode) mustFail(t *testing.T, args ...string) result {
	t.Helper()
	r, err := n.kubectl(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 1 {
		t.Fatalf("%s: kubectl etcd %s: exit %d, want 1\n%s%s", n.name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// sameManifest wants n's etcd manifest to be want, byte for byte.
func (n *bootNode) sameManifest(t *testing.T, want []byte) {
	t.Helper()
	if got, err := os.ReadFile(n.node.EtcdManifest()); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: the etcd manifest is not the original (%v)", n.name, err)
	}
}

// waitNoQuorum waits until the members of cfg answer no linearizable
// read: etcd runs on the original data again, without quorum.
func waitNoQuorum(t *testing.T, cfg *connect.Config) {
	t.Helper()
	cli := etcdtest.Client(t, cfg)
	defer cli.Close()
	if err := poll.Until(context.Background(), "no quorum", 500*time.Millisecond, 2*time.Minute, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := cli.Get(cctx, "health"); err == nil {
			return errors.New("a linearizable read is served")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitServing waits until the members of cfg serve a linearizable read.
func waitServing(t *testing.T, cfg *connect.Config) {
	t.Helper()
	if err := cluster.WaitServing(context.Background(), cfg, cfg.Endpoints, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
}

// memberHash is the HashKV of the first member of cfg at revision rev, or
// at its current revision when rev is 0, and that revision: the same hash
// at the same revision later means the history up to it was not changed.
func memberHash(t *testing.T, cfg *connect.Config, rev int64) (uint32, int64) {
	t.Helper()
	cli := etcdtest.Client(t, cfg)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := cli.HashKV(ctx, cfg.Endpoints[0], rev)
	if err != nil {
		t.Fatal(err)
	}
	if rev == 0 {
		rev = h.Header.Revision
	}
	return h.Hash, rev
}
