package etcdtest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/upgrade"
)

// UpgradeVersions lists the older etcd releases only the upgrade tests run
// (hack/etcd-upgrade-versions.txt), oldest first.
func UpgradeVersions(t testing.TB) []string {
	t.Helper()
	return readVersions(t, "etcd-upgrade-versions.txt")
}

func readVersions(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(RepoRoot(), "hack", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v := strings.TrimSpace(sc.Text()); v != "" && !strings.HasPrefix(v, "#") {
			out = append(out, v)
		}
	}
	return out
}

// Image is the kubeadm-style image of a reference release, the one a
// kubelet started with StartImageKubelet runs that release's binary for.
func Image(version string) string {
	return "registry.k8s.io/etcd:" + version + "-0"
}

// StartImageKubelet is StartKubelet for a node whose etcd version follows
// the manifest's image, as on a real node: the image's tag picks the
// reference binary, so changing the image upgrades or downgrades the
// member. An image whose tag names no reference release (of
// hack/etcd-versions.txt or hack/etcd-upgrade-versions.txt) fails to start
// and is retried after the back-off, as an image the kubelet cannot pull
// or that crash-loops.
func StartImageKubelet(t testing.TB, manifestPath string) *Kubelet {
	t.Helper()
	known := append(UpgradeVersions(t), Versions(t)...)
	bins := map[string]string{}
	for _, v := range known {
		bins[v] = filepath.Join(EtcdBinaries(t, v), "etcd")
	}
	binaryFor := func(image string) (string, error) {
		img, err := upgrade.ParseImage(image)
		if err != nil {
			return "", err
		}
		if b, ok := bins[img.Version.String()]; ok {
			return b, nil
		}
		return "", fmt.Errorf("image %s: no reference etcd %s (have %s)", image, img.Version, strings.Join(known, ", "))
	}
	return startKubelet(t, "", manifestPath, binaryFor)
}
