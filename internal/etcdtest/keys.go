package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// PutKey writes key=value through a client of cfg, failing the test on
// any error.
func PutKey(t testing.TB, cfg *connect.Config, key, value string) {
	t.Helper()
	withClient(t, cfg, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.Put(ctx, key, value)
		return err
	})
}

// GetKey reads key through a client of cfg: its value, "" when absent.
func GetKey(t testing.TB, cfg *connect.Config, key string) string {
	t.Helper()
	var value string
	withClient(t, cfg, func(ctx context.Context, cli *clientv3.Client) error {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) > 0 {
			value = string(resp.Kvs[0].Value)
		}
		return nil
	})
	return value
}

// withClient runs one request, fn, through a client of cfg opened for it,
// within 10 seconds, and fails the test on any error.
func withClient(t testing.TB, cfg *connect.Config, fn func(ctx context.Context, cli *clientv3.Client) error) {
	t.Helper()
	cli := Client(t, cfg)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fn(ctx, cli); err != nil {
		t.Fatal(err)
	}
}
