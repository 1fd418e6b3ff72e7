package manifests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/kubetest"
)

// appNamespace is where the namespace-less StatefulSet file goes, as its
// header says (kubectl create namespace etcd; kubectl -n etcd apply ...).
const appNamespace = "etcd"

// manifestFiles lists the YAML files of this directory.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	return files
}

// namespaced reports whether any document of file names its namespace; a
// file whose objects carry none is applied with -n, as a user would.
func namespaced(docs []doc, file string) bool {
	for _, d := range docs {
		if m, err := metaOf(d.obj); err == nil && d.file == file && m.GetNamespace() != "" {
			return true
		}
	}
	return false
}

// TestManifestsAgainstRealAPIServer sends every manifest to a real
// kube-apiserver 1.37 through the real kubectl with server-side dry run:
// the server's own validation and defaulting judge them, which no
// client-side check can stand in for, and admission (priority classes, pod
// security) judges the pods they would create.
// One server serves every subtest.
func TestManifestsAgainstRealAPIServer(t *testing.T) {
	etcd := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	s := kubetest.StartAPIServer(t, etcd.State.Endpoints(), kubetest.EtcdTLSOf(etcd.State))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The application etcd runs as non-root with nothing from the host, so
	// its namespace can enforce the restricted Pod Security Standard.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", appNamespace, err)
	}
	docs := loadAll(t)
	// dryRun applies path, the manifest file (or a copy of it).
	dryRun := func(file, path string) (string, error) {
		args := []string{"apply", "--dry-run=server", "--validate=strict", "-f", path}
		if !namespaced(docs, file) {
			args = append(args, "-n", appNamespace)
		}
		return s.Kubectl(ctx, args...)
	}

	t.Run("server-side dry run accepts every manifest", func(t *testing.T) {
		for _, file := range manifestFiles(t) {
			out, err := dryRun(file, file)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			t.Logf("%s:\n%s", file, strings.TrimSpace(out))
			var objects int
			for _, d := range docs {
				if d.file == file {
					objects++
				}
			}
			if got := strings.Count(out, "(server dry run)"); got != objects {
				t.Errorf("%s: the server accepted %d objects, the file has %d", file, got, objects)
			}
		}
	})

	t.Run("server-side dry run refuses a broken manifest", func(t *testing.T) {
		data, err := os.ReadFile("backup-cronjob.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, from, to, want string }{
			// Strict decoding in manifests_test.go catches this one too.
			{"unknown field", "hostNetwork: true", "hostNetwrok: true", `unknown field "spec.jobTemplate.spec.template.spec.hostNetwrok"`},
			// Only the server knows these.
			{"bad schedule", `schedule: "17 */6 * * *"`, `schedule: "every six hours"`, "spec.schedule"},
			{"unknown time zone", "timeZone: Etc/UTC", "timeZone: Mars/Olympus_Mons", "spec.timeZone"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !bytes.Contains(data, []byte(tc.from)) {
					t.Fatalf("backup-cronjob.yaml has no %q to break", tc.from)
				}
				broken := filepath.Join(t.TempDir(), "backup-cronjob.yaml")
				if err := os.WriteFile(broken, bytes.Replace(data, []byte(tc.from), []byte(tc.to), 1), 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := dryRun("backup-cronjob.yaml", broken)
				switch {
				case err == nil:
					t.Errorf("the server accepted a CronJob with %q", tc.to)
				case !strings.Contains(err.Error(), tc.want):
					t.Errorf("refused, but not for %q: %v", tc.want, err)
				default:
					t.Logf("refused as it should be: %v", err)
				}
			})
		}
	})

	t.Run("the pods the CronJob and the StatefulSet would create pass admission", func(t *testing.T) {
		// Admission (priority classes, pod security) sees pods, not the
		// templates inside a CronJob or StatefulSet: build the pods as
		// the Job and StatefulSet controllers would, and dry-run them.
		cj := only[*batchv1.CronJob](t, docs, "backup-cronjob.yaml")
		sts := only[*appsv1.StatefulSet](t, docs, "etcd-statefulset.yaml")
		jobPod := &corev1.Pod{
			ObjectMeta: *cj.Spec.JobTemplate.Spec.Template.ObjectMeta.DeepCopy(),
			Spec:       *cj.Spec.JobTemplate.Spec.Template.Spec.DeepCopy(),
		}
		jobPod.Name, jobPod.Namespace = cj.Name+"-manual-x7k2p", cj.Namespace
		stsPod := &corev1.Pod{
			ObjectMeta: *sts.Spec.Template.ObjectMeta.DeepCopy(),
			Spec:       *sts.Spec.Template.Spec.DeepCopy(),
		}
		stsPod.Name, stsPod.Namespace = sts.Name+"-0", appNamespace
		stsPod.Spec.Hostname, stsPod.Spec.Subdomain = stsPod.Name, sts.Spec.ServiceName
		for _, claim := range sts.Spec.VolumeClaimTemplates {
			stsPod.Spec.Volumes = append(stsPod.Spec.Volumes, corev1.Volume{
				Name: claim.Name,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
					ClaimName: claim.Name + "-" + stsPod.Name,
				}},
			})
		}
		for _, pod := range []*corev1.Pod{jobPod, stsPod} {
			created, err := s.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				t.Errorf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
				continue
			}
			if pod.Spec.PriorityClassName != "" && created.Spec.Priority == nil {
				t.Errorf("pod %s/%s: priority class %s resolved to no priority", pod.Namespace, pod.Name, pod.Spec.PriorityClassName)
			}
			t.Logf("pod %s/%s admitted (priority class %q)", pod.Namespace, pod.Name, pod.Spec.PriorityClassName)
		}

		t.Log("the namespace's restricted policy is enforced: the same pod on the host network is refused")
		hostPod := stsPod.DeepCopy()
		hostPod.Spec.HostNetwork = true
		if _, err := s.Client.CoreV1().Pods(hostPod.Namespace).Create(ctx, hostPod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "restricted") {
			t.Errorf("a host-network pod in namespace %s: %v, want refused by the restricted policy", appNamespace, err)
		}

		t.Log("and a pod whose priority class does not exist is refused")
		jobPod.Spec.PriorityClassName = "no-such-class"
		if _, err := s.Client.CoreV1().Pods(jobPod.Namespace).Create(ctx, jobPod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "no-such-class") {
			t.Errorf("a pod with priority class no-such-class: %v, want refused", err)
		}
	})

	t.Run("rbac.yaml grants the etcd-admins group what the plugin needs, and no more", func(t *testing.T) {
		if _, err := s.Kubectl(ctx, "apply", "-f", "rbac.yaml"); err != nil {
			t.Fatal(err)
		}
		admin := s.KubeconfigFor("alice", "etcd-admins")
		outsider := s.KubeconfigFor("bob")
		for _, tc := range []struct {
			verb, resource, ns string
			admin              bool
		}{
			{"list", "pods", "kube-system", true},
			{"watch", "pods", "kube-system", true},
			{"create", "pods/portforward", "kube-system", true},
			{"create", "pods/exec", "kube-system", true},
			{"list", "nodes", "", true},
			{"get", "secrets", "kube-system", false},
			{"get", "secrets:etcd-client", "kube-system", true},
			{"list", "secrets:etcd-client", "kube-system", false},
			{"get", "secrets:etcd-client", "default", false},
			{"delete", "pods", "kube-system", false},
			{"create", "pods/exec", "default", false},
			{"update", "nodes", "", false},
		} {
			// can-i reads pods/exec as the pod named exec: the
			// subresource has its own flag.
			// secrets:NAME asks about the one object NAME.
			resource, sub, _ := strings.Cut(tc.resource, "/")
			if kind, name, ok := strings.Cut(resource, ":"); ok {
				resource = kind + "/" + name
			}
			args := []string{"auth", "can-i", tc.verb, resource, "--subresource=" + sub}
			if tc.ns != "" {
				args = append(args, "-n", tc.ns)
			}
			for _, who := range []struct {
				name, kubeconfig string
				want             bool
			}{{"alice (etcd-admins)", admin, tc.admin}, {"bob (no group)", outsider, false}} {
				// can-i exits 1 for "no", so its answer is on stdout either way.
				out, _ := s.KubectlAs(ctx, who.kubeconfig, args...)
				if got := strings.TrimSpace(out) == "yes"; got != who.want {
					t.Errorf("%s: can-i %s %s -n %q = %q, want %v", who.name, tc.verb, tc.resource, tc.ns, strings.TrimSpace(out), who.want)
				}
			}
		}
	})
}
