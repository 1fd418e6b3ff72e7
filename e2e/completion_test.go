package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubectlCompletionHelper runs kubectl_complete-etcd the way kubectl
// does for `kubectl etcd st<TAB>`: both the shipped script (which calls
// kubectl-etcd on PATH) and a link named after the helper complete to the
// plugin's commands.
func TestKubectlCompletionHelper(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "kubectl_complete-etcd")
	if err := os.Symlink(pluginBin, link); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../hack/kubectl_complete-etcd")
	if err != nil {
		t.Fatal(err)
	}
	for name, helper := range map[string]string{"link": link, "script": script} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(helper, "st")
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(pluginBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s st: %v\n%s", helper, err, out)
			}
			if !strings.Contains(string(out), "status") {
				t.Errorf("completing 'st' gave\n%s\nwant the status command", out)
			}
		})
	}
}
