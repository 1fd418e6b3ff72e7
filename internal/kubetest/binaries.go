// Package kubetest runs the real Kubernetes programs the tests check
// kubectl-etcd against: kube-apiserver on a test etcd, kubectl and kubeadm.
// The binaries come from hack/build-kube.sh (built once from the Go module
// proxy and cached outside the repository), so a test that needs them
// builds them rather than skipping. Every process a test starts is stopped
// when the test ends, pass or fail, and dies with the test binary.
package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubectl-etcd/kubectl-etcd/internal/hackscript"
)

// Dir is the directory hack/build-kube.sh fills: kube-apiserver, kubectl,
// kubeadm, kwok and KWOK's stage objects under stages/.
type Dir string

// KubeAPIServer is the path of the kube-apiserver binary.
func (d Dir) KubeAPIServer() string { return filepath.Join(string(d), "kube-apiserver") }

// Kubectl is the path of the kubectl binary.
func (d Dir) Kubectl() string { return filepath.Join(string(d), "kubectl") }

// Kubeadm is the path of the kubeadm binary.
func (d Dir) Kubeadm() string { return filepath.Join(string(d), "kubeadm") }

// Kwok is the path of the kwok binary.
func (d Dir) Kwok() string { return filepath.Join(string(d), "kwok") }

// Stages lists KWOK's stage object files (what its fake nodes and pods go
// through), sorted.
func (d Dir) Stages() []string {
	files, _ := filepath.Glob(filepath.Join(string(d), "stages", "*.yaml"))
	sort.Strings(files)
	return files
}

// Binaries returns the directory of the reference Kubernetes binaries,
// running hack/build-kube.sh the first time in this process: it prints the
// cached directory at once, waits for a build another process runs, or
// builds (about ten minutes on a fresh machine: more than go test's
// default timeout, so hack/test.sh builds first and passes -timeout).
var Binaries = hackscript.Memo(buildBinaries)

func buildBinaries() (Dir, error) {
	script := hackscript.Path("build-kube.sh")
	out, err := hackscript.Output(script)
	if err != nil {
		return "", err
	}
	d := Dir(out)
	for _, bin := range []string{d.KubeAPIServer(), d.Kubectl(), d.Kubeadm(), d.Kwok()} {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s printed %s, which lacks a binary: %v", script, d, err)
		}
	}
	return d, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
