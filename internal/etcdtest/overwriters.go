package etcdtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Writers are Writers running at once, as several clients of one cluster.
type Writers []*Writer

// StartOverwriters starts n Writers through cli, each writing every
// interval: writer w overwrites the keys /writers/<w>/0 to
// /writers/<w>/<keys-1> in turn, so old revisions pile up for a compaction
// and a defragmentation to reclaim. cli stays open. Each write may take
// 20 s: a member that defragments holds the writes it was sent until it
// is done, and only a write that fails counts against the rolling
// defragmentation.
func StartOverwriters(t testing.TB, cli *clientv3.Client, n, keys int, interval time.Duration) Writers {
	var ws Writers
	for w := range n {
		ws = append(ws, startWriter(t, interval, 20*time.Second, func(ctx context.Context, i int) error {
			_, err := cli.Put(ctx, fmt.Sprintf("/writers/%d/%d", w, i%keys), "v")
			return err
		}, func() {}))
	}
	return ws
}

// Finish stops every writer and returns the writes that succeeded and how
// each failed one failed.
func (ws Writers) Finish() (int, []string) {
	ok, failures := 0, []string(nil)
	for _, w := range ws {
		n, f := w.Finish()
		ok += n
		failures = append(failures, f...)
	}
	return ok, failures
}
