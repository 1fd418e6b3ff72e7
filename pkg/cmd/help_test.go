package cmd_test

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/client-go/util/homedir"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/golden"
)

// TestHelpGolden prints the --help of every command of the real tree,
// hidden ones included, and compares it with testdata/help/<command>.golden:
// a change to a flag, a usage line or an example shows in review as a
// change to these files (go test ./pkg/cmd -run TestHelpGolden -update
// rewrites them).
func TestHelpGolden(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue // cobra's own
			}
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(cmdtest.Root(), nil)
	if len(paths) < 40 {
		t.Fatalf("walked %d commands; the tree has more", len(paths))
	}
	for _, path := range paths {
		name := strings.Join(append([]string{"kubectl-etcd"}, path...), "_")
		t.Run(name, func(t *testing.T) {
			out, errOut, code, err := cmdtest.Run(t, append(append([]string{}, path...), "--help")...)
			if code != 0 || err != nil || errOut != "" {
				t.Fatalf("%s --help: exit %d, %v, stderr %q", name, code, err, errOut)
			}
			if !strings.Contains(out, "Usage:\n  kubectl etcd") {
				t.Errorf("%s --help does not show the usage as kubectl etcd:\n%s", name, out)
			}
			// cli-runtime's --cache-dir defaults under the home directory.
			out = strings.ReplaceAll(out, homedir.HomeDir(), "$HOME")
			golden.Assert(t, "help/"+name+".golden", out)
		})
	}
}
