package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/nodetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/staticpod"
)

// TestRecoverQuorumBehindOnOlderImage is the worst day on real kubelets
// whose etcd image is an older minor than the etcd linked into
// kubectl-etcd (3.6 images, which most clusters run): the recovery must
// not leave data of a newer storage version, which that image refuses.
// The survivor, cp-1, is behind: its etcd was stopped while cp-2 and cp-3
// went on committing; then those two are killed (SIGKILL) and their data
// copied aside, and cp-1 comes back alone without quorum. `recover quorum
// --compare` with the two copies must recover from the most advanced one,
// with every key written there, at a revision above every revision a
// client saw, on the 3.6 image; and the other two nodes join back with
// the steps it prints, all three with the same HashKV.
func TestRecoverQuorumBehindOnOlderImage(t *testing.T) {
	version := etcdtest.Versions(t)[0]
	if minor := snapshot.MinorVersion(version); minor == snapshot.MinorVersion(etcdversion.Version) {
		t.Fatalf("the oldest etcd of hack/etcd-versions.txt, %s, is the minor linked in (%s): this test needs an older one", version, etcdversion.Version)
	}
	nodes := startBootNodes(t, version, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	start := time.Now()
	all := initAndJoin(t, nodes)
	written := map[string]string{}
	var seen int64
	put := func(nodes []*bootNode, prefix string, count int) {
		cli, err := n1.config(t, nodes...).Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		for i := range count {
			k, v := fmt.Sprintf("/registry/%s/k%02d", prefix, i), fmt.Sprintf("%s-%d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := cli.Put(ctx, k, v)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			written[k], seen = v, max(seen, resp.Header.Revision)
		}
	}
	put(nodes, "all", 20)

	t.Log("cp-1's etcd stops (its manifest parked off the node); cp-2 and cp-3 go on committing without it")
	parked := filepath.Join(n1.node.Dir, "etcd.yaml.parked")
	if err := os.Rename(n1.node.EtcdManifest(), parked); err != nil {
		t.Fatal(err)
	}
	n1.node.WaitEtcdExited(time.Minute)
	put([]*bootNode{n2, n3}, "ahead", 30)

	t.Log("kill -9 the etcd of cp-2 and cp-3, their manifests gone; their data is copied aside, as an operator copies it to cp-1")
	var copies []string
	for _, n := range []*bootNode{n2, n3} {
		n.node.KillEtcd()
		if err := os.Remove(n.node.EtcdManifest()); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*bootNode{n2, n3} {
		n.node.WaitEtcdExited(time.Minute)
		dst := filepath.Join(t.TempDir(), n.name+"-etcd")
		if err := os.CopyFS(dst, os.DirFS(n.node.DataDir())); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, dst)
	}

	t.Log("cp-1 comes back alone, behind the others and without quorum")
	if err := os.Rename(parked, n1.node.EtcdManifest()); err != nil {
		t.Fatal(err)
	}
	n1.node.WaitEtcd(true, time.Minute)
	original, err := os.ReadFile(n1.node.EtcdManifest())
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"recover", "quorum", "--compare", strings.Join(copies, ","), "--kubelet-root-dir", n1.node.KubeletRootDir(), "--timeout", "2m", "--command-timeout", "1s", "--dial-timeout", "1s"}

	t.Log("recover quorum killed (SIGKILL) while the image runs on the copy with --force-new-cluster: the original data is as etcd left it, and the next run puts the original manifest back")
	data := n1.node.DataDir()
	var stopped map[string]string
	killed := runRecovery(t, n1, append(args, "--yes"), func(line string) bool {
		if strings.Contains(line, "[2/5 copy]") {
			stopped = etcdtest.FileHashes(t, data) // etcd let go of it before the copy
		}
		return strings.Contains(line, "[3/5 force-new-cluster] Wrote")
	})
	if killed.code != -1 || stopped == nil {
		t.Fatalf("recover quorum was not killed at its force-new-cluster step: exit %d\n%s", killed.code, killed.stderr)
	}
	n1.node.WaitEtcdArg("--force-new-cluster=true", time.Minute)
	if changed := etcdtest.ChangedFiles(stopped, etcdtest.FileHashes(t, data)); len(changed) > 0 {
		t.Errorf("killed while the image ran on the copy: the original data changed: %s", changed)
	}
	if now, _ := os.ReadFile(n1.node.EtcdManifest()); bytes.Equal(now, original) {
		t.Errorf("killed while the image ran on the copy, the manifest in place is the original: want the temporary one")
	}
	undo := n1.mustFail(t, args...)
	if !strings.Contains(undo.stderr, "an earlier recovery was interrupted with the manifest moved aside: it is back in "+n1.node.EtcdManifest()) {
		t.Errorf("the run after a recovery killed at its force-new-cluster step does not say it put the manifest back:\n%s", undo.stderr)
	}
	n1.sameManifest(t, original)
	n1.node.WaitEtcdArg("--data-dir="+data, time.Minute)

	t.Log("--dry-run names the image that makes the one-member cluster and changes nothing")
	r := n1.mustKubectl(t, append(args, "--dry-run")...)
	if !strings.Contains(r.stderr, "[dry-run] 3. make a one-member cluster of the copy with "+nodetest.EtcdImage(version)) {
		t.Errorf("the dry run does not plan the force-new-cluster step with %s:\n%s", nodetest.EtcdImage(version), r.stderr)
	}
	n1.sameManifest(t, original)

	t.Log("recover quorum on cp-1 with the two copies")
	began := time.Now()
	r = n1.mustKubectl(t, append(args, "--yes")...)
	t.Logf("recover quorum took %s:\n%s%s", time.Since(began).Round(time.Millisecond), r.stderr, r.stdout)
	for _, want := range []string{"no quorum", "[1/5 stop]", "[2/5 copy]", "[3/5 force-new-cluster] Wrote", "[3/5 force-new-cluster] Saved", "storage version " + snapshot.MinorVersion(version), "[4/5 restore]", "[5/5 start]", "[done]"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("recover quorum does not say %q", want)
		}
	}
	if !strings.Contains(r.stderr, "("+nodetest.EtcdImage(version)+") with every committed entry applied") {
		t.Errorf("recover quorum did not make the one-member cluster with the image %s", nodetest.EtcdImage(version))
	}
	commits := map[string]uint64{}
	for _, m := range regexp.MustCompile(`\[preflight\] data (\S+): member \S+, term \d+, committed index (\d+)`).FindAllStringSubmatch(r.stderr, -1) {
		commits[m[1]], _ = strconv.ParseUint(m[2], 10, 64)
	}
	source := regexp.MustCompile(`\[preflight\] recovering from (\S+)`).FindStringSubmatch(r.stderr)
	if len(commits) != 3 || source == nil {
		t.Fatalf("the preflight does not compare three data dirs and name the source:\n%s", r.stderr)
	}
	for dir, c := range commits {
		if c > commits[source[1]] {
			t.Errorf("recovered from %s (committed index %d), but %s is ahead (%d)", source[1], commits[source[1]], dir, c)
		}
	}
	if source[1] == n1.node.DataDir() || commits[n1.node.DataDir()] >= commits[source[1]] {
		t.Errorf("recovered from %s; cp-1's own data (committed index %d) is behind the copies", source[1], commits[n1.node.DataDir()])
	}
	if !strings.Contains(r.stderr, "the copy "+source[1]+" (member ") {
		t.Errorf("the preflight does not say the copy %s is the most advanced", source[1])
	}

	t.Log("cp-1 serves alone on the older image: every key written, above every revision seen")
	one := n1.config(t, n1)
	waitVoters(t, one, 1)
	m, err := staticpod.Read(n1.node.EtcdManifest())
	if err != nil {
		t.Fatal(err)
	}
	if image := m.Pod.Spec.Containers[m.Container].Image; image != nodetest.EtcdImage(version) {
		t.Errorf("the recovered manifest runs %s, want %s", image, nodetest.EtcdImage(version))
	}
	cli := etcdtest.Client(t, one)
	defer cli.Close()
	ctx := context.Background()
	st, err := cli.Status(ctx, n1.url())
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != version {
		t.Errorf("the recovered member runs etcd %s, want %s", st.Version, version)
	}
	resp, err := cli.Get(ctx, "/registry/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	// The leader answers a put once a quorum holds it, but a WAL records
	// the commit index only with the next entry or election: the last
	// puts before the SIGKILL are past the committed index in every WAL.
	// The copies of cp-2 and cp-3 are a majority, so the recovery keeps
	// them (the preflight says so); only entries it says it drops may be
	// missing.
	if m := regexp.MustCompile(`\[preflight\] data \S+: entries (\d+) to (\d+), past its committed index, ([^,]+)`).FindStringSubmatch(r.stderr); m != nil {
		t.Logf("the recovery kept entries %s to %s, past the committed index: they %s", m[1], m[2], m[3])
	}
	var tail int
	if m := regexp.MustCompile(`\[preflight\] data ` + regexp.QuoteMeta(source[1]) + `: (\d+) entries past the committed index are not known committed`).FindStringSubmatch(r.stderr); m != nil {
		tail, _ = strconv.Atoi(m[1])
	}
	for k, v := range written {
		if got[k] == v {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(k, "/registry/ahead/k%02d", &i); err == nil && i >= 30-tail {
			t.Logf("%s, among the last %d puts the preflight said may be dropped, is not there", k, tail)
			continue
		}
		t.Errorf("%s after the recovery: %q, want %q", k, got[k], v)
	}
	if resp.Header.Revision <= seen {
		t.Errorf("the recovered member serves revision %d, not above the highest one seen, %d", resp.Header.Revision, seen)
	}

	t.Log("cp-2 and cp-3 join back with the steps recover quorum printed, taken as printed")
	steps := printedJoinSteps.FindAllStringSubmatch(r.stdout, -1)
	if len(steps) != 2 || steps[0][1] != n2.name || steps[1][1] != n3.name {
		t.Fatalf("recover quorum printed steps %q, want one for cp-2 then one for cp-3:\n%s", steps, r.stdout)
	}
	for i, n := range []*bootNode{n2, n3} {
		step := steps[i][2]
		if got := flagValue(step, "image"); got != nodetest.EtcdImage(version) {
			t.Errorf("step for %s joins with image %q, want %s", n.name, got, nodetest.EtcdImage(version))
		}
		t.Logf("on %s, as printed: %s", n.name, step)
		runPrintedStep(t, n, step, n.dirs()...)
	}
	waitVoters(t, all, 3)
	sameData(t, all)
	t.Logf("the recovery on etcd %s took %s after the nodes started", version, time.Since(start).Round(time.Second))
}
