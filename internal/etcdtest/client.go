package etcdtest

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// Client returns a client of cfg, failing the test when cfg makes none.
// The caller closes it.
func Client(t testing.TB, cfg *connect.Config) *clientv3.Client {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cli
}
