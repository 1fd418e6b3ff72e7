package cmd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

func TestUpgradeAndDowngradeUsageErrors(t *testing.T) {
	dir := manifestsDir(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"upgrade"}, "give --image or --version"},
		{[]string{"upgrade", "--image", "registry.k8s.io/etcd:latest"}, `tag "latest" does not name an etcd release`},
		{[]string{"upgrade", "--image", "registry.k8s.io/etcd"}, "has no tag"},
		{[]string{"upgrade", "--version", "3.7"}, "does not name an etcd release"},
		{[]string{"upgrade", "--version", "3.7.3", "--image", "registry.k8s.io/etcd:3.7.3-0"}, "none of the others can be"},
		{[]string{"upgrade", "--version", "3.7.3", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"upgrade", "--version", "3.7.3", "--manifests-dir", "/nonexistent"}, "no such file"},
		// Standard input is no terminal: without --yes, nothing changes.
		{[]string{"upgrade", "--version", "3.7.3", "--manifests-dir", dir}, "refusing to change etcd on this node from registry.k8s.io/etcd:3.7.0-0 to registry.k8s.io/etcd:3.7.3-0, restarting it without confirmation: pass --yes"},
		{[]string{"downgrade", "enable"}, "accepts 1 arg"},
		{[]string{"downgrade", "validate", "three"}, `"three" is not a version`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, code, err := cmdtest.Run(t, tt.args...)
			if code == 0 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, error %v; want non-zero with %q", code, err, tt.want)
			}
		})
	}
}

func TestDowngradeValidateAgainstEmbeddedCluster(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()
	// etcd decides the cluster version a moment after it starts; until
	// then its downgrade API answers "cluster version not found" (CI saw
	// it once).
	if err := poll.Until(context.Background(), "the cluster version to be decided", 50*time.Millisecond, 30*time.Second, func(context.Context) error {
		if c.Server(0).Server.ClusterVersion() == nil {
			return errors.New("not decided yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, _, code, err := cmdtest.Run(t, append(conn, "downgrade", "validate", "3.6")...)
	if err != nil || code != 0 || !strings.Contains(out, "can be downgraded to 3.6") {
		t.Fatalf("downgrade validate 3.6: exit %d, %v, %q", code, err, out)
	}
	_, _, code, err = cmdtest.Run(t, append(conn, "downgrade", "validate", "3.5")...)
	if err == nil || code == 0 {
		t.Fatalf("downgrade validate 3.5 (two minors down) = exit %d, %v; want refused", code, err)
	}
	_, _, code, err = cmdtest.Run(t, append(conn, "downgrade", "enable", "3.6")...)
	if err == nil || code == 0 || !strings.Contains(err.Error(), "pass --yes") {
		t.Fatalf("downgrade enable without --yes = exit %d, %v; want a refusal asking for --yes", code, err)
	}
}
