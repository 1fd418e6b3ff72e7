package manifests

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// node plays a control-plane node for the backup CronJob: its host paths
// live under root, and the job's container paths map onto them through the
// CronJob's own hostPath volumes.
type node struct {
	root   string
	mounts map[string]string // container path -> host path
}

func newNode(t *testing.T, pod corev1.PodSpec, c corev1.Container) *node {
	n := &node{root: t.TempDir(), mounts: map[string]string{}}
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.HostPath != nil {
				n.mounts[m.MountPath] = v.HostPath.Path
				// The kubelet creates DirectoryOrCreate; kubeadm made the others.
				if err := os.MkdirAll(n.host(v.HostPath.Path), 0o700); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return n
}

// host returns where the node's path p is in the test.
func (n *node) host(p string) string { return filepath.Join(n.root, p) }

// inContainer returns where the container's path p is in the test, and
// whether a hostPath volume holds it.
func (n *node) inContainer(p string) (string, bool) {
	best := ""
	for mp := range n.mounts {
		mp = strings.TrimSuffix(mp, "/")
		if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", false
	}
	hp := n.host(n.mounts[best] + strings.TrimPrefix(p, best))
	if strings.HasSuffix(p, "/") {
		hp += "/"
	}
	return hp, true
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

// TestBackupCronJobRuns runs the CronJob's command line, as written, on a
// simulated kubeadm node against a real etcd, and checks that scheduled
// runs keep the newest --retain snapshots.
func TestBackupCronJobRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	for _, env := range []string{connect.EnvEndpoints, connect.EnvCACert, connect.EnvCert, connect.EnvKey} {
		t.Setenv(env, "")
	}
	cj := only[*batchv1.CronJob](t, loadAll(t), "backup-cronjob.yaml")
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	argv := append(slices.Clone(c.Command), c.Args...)

	t.Log("a one-member etcd with kubeadm's files on the node: the static pod manifest and the etcd PKI")
	etcd := etcdtest.StartEmbedded(t, etcdtest.WithClusterSize(1))
	n := newNode(t, pod, c)
	pki := "/etc/kubernetes/pki/etcd"
	copyFile(t, etcd.State.CACert, n.host(pki+"/ca.crt"), 0o644)
	copyFile(t, etcd.State.ClientCert, n.host(pki+"/healthcheck-client.crt"), 0o644)
	copyFile(t, etcd.State.ClientKey, n.host(pki+"/healthcheck-client.key"), 0o600)
	caInContainer, ok := n.inContainer(pki + "/ca.crt")
	if !ok {
		t.Fatalf("%s is not mounted", pki)
	}
	manifest, err := yaml.Marshal(corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "etcd", Namespace: "kube-system"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "etcd",
			Command: []string{"etcd",
				"--listen-client-urls=" + etcd.State.Members[0].ClientURL,
				"--advertise-client-urls=" + etcd.State.Members[0].ClientURL,
				// The path the container sees, remapped into the test.
				"--trusted-ca-file=" + caInContainer,
			},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.host("/etc/kubernetes/manifests/etcd.yaml"), manifest, 0o600); err != nil {
		t.Fatal(err)
	}

	// The job's arguments, with container paths mapped onto the node.
	var args []string
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "/") {
			hp, ok := n.inContainer(a)
			if !ok {
				t.Fatalf("argument %s is not on a hostPath volume", a)
			}
			a = hp
		}
		args = append(args, a)
	}
	root := cmd.NewRootCommand(genericiooptions.NewTestIOStreamsDiscard())
	def := root.PersistentFlags().Lookup("etcd-manifest").DefValue
	hostManifest, ok := n.inContainer(def)
	if !ok {
		t.Fatalf("the default manifest %s is not mounted", def)
	}
	args = append(args, "--etcd-manifest="+hostManifest)

	retain := 0
	for _, a := range args {
		fmt.Sscanf(a, "--retain=%d", &retain)
	}
	if retain == 0 {
		t.Fatalf("no --retain=N in %q", args)
	}
	cli := etcd.Client()
	t.Logf("%d scheduled runs of kubectl-etcd %s", retain+2, strings.Join(args, " "))
	for i := range retain + 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("/registry/configmaps/default/run-%d", i), "x")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if out, errOut, _, err := cmdtest.Run(t, args...); err != nil {
			t.Fatalf("run %d: %v\n%s%s", i+1, err, out, errOut)
		}
	}

	t.Logf("the node's /var/backups/etcd holds the newest %d snapshots, each with its metadata", retain)
	dir, _ := n.inContainer(strings.TrimSuffix(lastAbsPath(argv), "/"))
	var snaps []string
	for _, name := range etcdtest.DirNames(t, dir) {
		if strings.HasPrefix(name, "etcd-snapshot-") && !strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".part") {
			snaps = append(snaps, name)
		}
	}
	if len(snaps) != retain {
		t.Fatalf("%d snapshots in %s, want %d: %q", len(snaps), dir, retain, snaps)
	}
	for _, s := range snaps {
		if _, err := os.Stat(filepath.Join(dir, s+".json")); err != nil {
			t.Errorf("no metadata beside %s: %v", s, err)
		}
	}
	slices.Sort(snaps)
	if _, errOut, _, err := cmdtest.Run(t, "snapshot", "status", filepath.Join(dir, snaps[len(snaps)-1])); err != nil {
		t.Fatalf("the newest snapshot does not check out: %v\n%s", err, errOut)
	}
}

// lastAbsPath returns the last absolute path among args: the destination.
func lastAbsPath(args []string) string {
	last := ""
	for _, a := range args {
		if path.IsAbs(a) {
			last = a
		}
	}
	return last
}
