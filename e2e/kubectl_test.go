package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/member"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/maintenance"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// kubectlUser runs the real kubectl, which finds the plugin on PATH, as a
// user with only a kubeconfig: no ETCDCTL_* variables, no etcd manifest.
type kubectlUser struct {
	t          *testing.T
	path, home string
	kubeconfig string
}

func newKubectlUser(t *testing.T, cp *kubetest.EtcdControlPlane, kubeconfig string) *kubectlUser {
	t.Helper()
	bin := t.TempDir()
	for name, target := range map[string]string{"kubectl": cp.API.Binaries.Kubectl(), "kubectl-etcd": pluginBin, "kubectl_complete-etcd": pluginBin} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return &kubectlUser{t: t, path: bin + string(os.PathListSeparator) + "/usr/bin:/bin", home: t.TempDir(), kubeconfig: kubeconfig}
}

func (u *kubectlUser) run(args ...string) result {
	u.t.Helper()
	cmd := exec.Command("kubectl", args...)
	cmd.Path = filepath.Join(strings.Split(u.path, string(os.PathListSeparator))[0], "kubectl")
	cmd.Env = []string{"PATH=" + u.path, "HOME=" + u.home, "KUBECONFIG=" + u.kubeconfig}
	r, err := execute(cmd)
	if err != nil {
		u.t.Fatalf("running kubectl %s: %v", strings.Join(args, " "), err)
	}
	u.t.Logf("kubectl %s -> exit %d", strings.Join(args, " "), r.code)
	return r
}

func (u *kubectlUser) ok(args ...string) string {
	u.t.Helper()
	r := u.run(args...)
	if r.code != 0 {
		u.t.Fatalf("kubectl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestKubectlPluginThroughTheAPI is a cluster admin on a laptop: real
// kubectl runs the plugin from PATH against a real kube-apiserver whose
// etcd members run as real processes, with KWOK as the kubelet of the
// control-plane nodes, so port-forward and exec reach the real members.
func TestKubectlPluginThroughTheAPI(t *testing.T) {
	cp := kubetest.StartEtcdControlPlane(t, "3.7.3")
	s := cp.Etcd.State
	certs := []string{"--cacert=" + s.CACert, "--cert=" + s.ClientCert, "--key=" + s.ClientKey}
	ctx := context.Background()
	if _, err := cp.API.Kubectl(ctx, "create", "configmap", "demo", "-n", "default", "--from-literal=greeting=hello from etcd"); err != nil {
		t.Fatal(err)
	}
	admin := newKubectlUser(t, cp, cp.API.Kubeconfig)

	t.Log("kubectl finds the plugin on PATH")
	if out := admin.ok("plugin", "list"); !strings.Contains(out, "kubectl-etcd") {
		t.Errorf("kubectl plugin list does not show kubectl-etcd:\n%s", out)
	}
	t.Log("kubectl completes the plugin's commands through kubectl_complete-etcd")
	if out := admin.ok("__complete", "etcd", "mem"); !strings.Contains(out, "member") {
		t.Errorf("kubectl __complete etcd mem does not offer member:\n%s", out)
	}

	t.Log("Through port-forward, with the etcd client certificate: status of every member")
	r := admin.run(append([]string{"etcd", "status", "-o", "json", "-v"}, certs...)...)
	var statuses []cluster.MemberStatus
	if err := json.Unmarshal([]byte(r.stdout), &statuses); r.code != 0 || err != nil {
		t.Fatalf("kubectl etcd status: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "tunnelling to each etcd pod with port-forward") || len(statuses) != 3 {
		t.Errorf("status through port-forward: %d members; -v said:\n%s", len(statuses), r.stderr)
	}
	for _, st := range statuses {
		if !st.Healthy() || !strings.HasPrefix(st.Endpoint, "https://127.0.0.1:") {
			t.Errorf("member %s at %s: %v", st.Name, st.Endpoint, st.Errors)
		}
	}

	t.Log("member list -o wide and -o json name each member's node and pod")
	out := admin.ok(append([]string{"etcd", "member", "list", "-o", "wide"}, certs...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "NODE") || !strings.Contains(lines[0], "POD") {
		t.Errorf("member list -o wide:\n%s", out)
	}
	for i, node := range cp.Nodes {
		if !strings.Contains(out, node) || !strings.Contains(out, cp.Pods[i]) {
			t.Errorf("member list -o wide lacks node %s or pod %s:\n%s", node, cp.Pods[i], out)
		}
	}
	checkMemberPods := func(out string) {
		t.Helper()
		var infos []member.MemberInfo
		if err := json.Unmarshal([]byte(out), &infos); err != nil {
			t.Fatalf("member list -o json: %v\n%s", err, out)
		}
		for _, m := range infos {
			want := "etcd-cp-" + strings.TrimPrefix(m.Name, "member-")
			if m.Pod != want || m.Node != strings.TrimPrefix(want, "etcd-") {
				t.Errorf("member %s: node %q, pod %q; want pod %s", m.Name, m.Node, m.Pod, want)
			}
		}
	}
	checkMemberPods(admin.ok(append([]string{"etcd", "member", "list", "-o", "json"}, certs...)...))

	t.Log("get decodes the ConfigMap kube-apiserver stored")
	out = admin.ok(append([]string{"etcd", "get", "configmaps", "demo", "-n", "default", "-o", "json"}, certs...)...)
	if !strings.Contains(out, `"greeting": "hello from etcd"`) || !strings.Contains(out, `"kind": "ConfigMap"`) {
		t.Errorf("get configmaps demo through port-forward:\n%s", out)
	}

	t.Log("snapshot save streams through a tunnel; the file is a verified snapshot")
	file := filepath.Join(t.TempDir(), "backup.db")
	admin.ok(append([]string{"etcd", "snapshot", "save", file}, certs...)...)
	var fs snapshot.FileStatus
	if out := admin.ok("etcd", "snapshot", "status", file, "-o", "json"); json.Unmarshal([]byte(out), &fs) != nil || fs.HashCheck != snapshot.HashOK || fs.TotalKeys == 0 {
		t.Errorf("snapshot status of the saved file:\n%s", out)
	}

	t.Log("defrag through the tunnels, one member at a time")
	r = admin.run(append([]string{"etcd", "defrag", "--all", "--yes", "--wait", "0s", "-o", "json"}, certs...)...)
	var report maintenance.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); r.code != 0 || err != nil {
		t.Fatalf("defrag through port-forward: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	for _, m := range report.Members {
		if m.Action != maintenance.ActionDefragmented {
			t.Errorf("defrag through port-forward: %s %s", m.Name, m.Action)
		}
	}

	t.Log("Without certificates, exec runs etcdctl in the pods: the read commands work")
	r = admin.run("etcd", "status", "-v")
	if r.code != 0 || !strings.Contains(r.stderr, "running etcdctl in the etcd pods with exec") || strings.Count(r.stdout, "member-") != 3 {
		t.Errorf("status through exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkMemberPods(admin.ok("etcd", "member", "list", "-o", "json"))
	if out := admin.ok("etcd", "member", "list", "-o", "wide"); !strings.Contains(out, "etcd-cp-2") {
		t.Errorf("member list -o wide through exec:\n%s", out)
	}
	out = admin.ok("etcd", "get", "configmaps", "demo", "-n", "default", "-o", "json")
	if !strings.Contains(out, `"greeting": "hello from etcd"`) {
		t.Errorf("get configmaps demo through exec:\n%s", out)
	}
	if out := admin.ok("etcd", "get", "configmaps", "-A"); !strings.Contains(out, "demo") {
		t.Errorf("get configmaps -A through exec:\n%s", out)
	}
	r = admin.run("etcd", "defrag", "--all", "--yes", "--wait", "0s", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &report); r.code != 0 || err != nil {
		t.Errorf("defrag through exec: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}

	t.Log("What etcdctl in a pod cannot do asks for a tunnel")
	oneErrorLine(t, admin.run("etcd", "snapshot", "save", filepath.Join(t.TempDir(), "x.db")), "--via port-forward")

	t.Log("The shipped RBAC (manifests/rbac.yaml) is enough for port-forward and exec")
	if _, err := cp.API.Kubectl(ctx, "apply", "-f", "../manifests/rbac.yaml"); err != nil {
		t.Fatal(err)
	}
	operator := newKubectlUser(t, cp, cp.API.KubeconfigFor("carol", "etcd-admins"))
	operator.ok(append([]string{"etcd", "status"}, certs...)...)
	operator.ok("etcd", "member", "list")

	t.Log("A user whose Role lacks pods/portforward is told which verb and resource")
	if _, err := cp.API.Kubectl(ctx, "-n", "kube-system", "create", "role", "etcd-reader", "--verb=get,list", "--resource=pods,pods/exec"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.API.Kubectl(ctx, "-n", "kube-system", "create", "rolebinding", "etcd-reader", "--role=etcd-reader", "--user=dave"); err != nil {
		t.Fatal(err)
	}
	reader := newKubectlUser(t, cp, cp.API.KubeconfigFor("dave"))
	oneErrorLine(t, reader.run(append([]string{"etcd", "status", "--via", "port-forward"}, certs...)...), `RBAC forbids "create" on "pods/portforward" in namespace kube-system`)
}
