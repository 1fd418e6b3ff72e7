package etcdtest

import (
	"context"
	"testing"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// PutKey writes key=value through a client of cfg, failing the test on
// any error.
func PutKey(t testing.TB, cfg *connect.Config, key, value string) {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, value); err != nil {
		t.Fatal(err)
	}
}

// GetKey reads key through a client of cfg: its value, "" when absent.
func GetKey(t testing.TB, cfg *connect.Config, key string) string {
	t.Helper()
	cli, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}
