package etcdtest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// FillToNoSpace overwrites one key with 100 KiB values through cli until
// etcd refuses writes with NOSPACE: a cluster started with a small
// WithQuotaBackendBytes raises the alarm within a few dozen writes. It
// fails the test on any other error, or when 1000 writes raised no alarm.
func FillToNoSpace(t testing.TB, cli *clientv3.Client) {
	t.Helper()
	val := strings.Repeat("v", 100<<10)
	for i := 0; i < 1000; i++ {
		_, err := cli.Put(context.Background(), "/fill", val)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			return
		}
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	t.Fatal("no NOSPACE after 1000 puts")
}
