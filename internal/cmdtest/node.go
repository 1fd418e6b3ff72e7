package cmdtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/poll"
)

// NodeArgs are the init and join flags that put a test node's files under
// dir and its etcd on ip with free client, peer and metrics ports;
// clientURL is where its member serves.
func NodeArgs(t testing.TB, dir, name, ip string) (args []string, clientURL string) {
	t.Helper()
	p := etcdtest.FreePorts(t, 3)
	return []string{
		"--name", name, "--advertise-address", ip, "--key-algorithm", "ECDSA-P256",
		"--pki-dir", filepath.Join(dir, "pki"), "--manifests-dir", filepath.Join(dir, "manifests"), "--data-dir", filepath.Join(dir, "data"),
		"--client-port", strconv.Itoa(p[0]), "--peer-port", strconv.Itoa(p[1]), "--metrics-port", strconv.Itoa(p[2]),
	}, "https://" + ip + ":" + strconv.Itoa(p[0])
}

// WaitHealthy runs `kubectl etcd health` with the connection flags conn
// until it succeeds, and fails the test when it still fails after a minute.
func WaitHealthy(t testing.TB, conn []string) {
	t.Helper()
	if err := poll.Until(context.Background(), fmt.Sprintf("%v to be healthy", conn), 200*time.Millisecond, time.Minute, func(ctx context.Context) error {
		_, _, _, err := RunContext(t, ctx, append(conn, "health")...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// CopyCA copies the etcd CA (pki/etcd/ca.crt and ca.key) of the test node
// under dir from to the node under dir to, as an operator does before a
// join.
func CopyCA(t testing.TB, from, to string) {
	t.Helper()
	for _, f := range []string{"ca.crt", "ca.key"} {
		data := etcdtest.ReadFile(t, filepath.Join(from, "pki", "etcd", f))
		if err := os.MkdirAll(filepath.Join(to, "pki", "etcd"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, "pki", "etcd", f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
