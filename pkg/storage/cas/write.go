// Package cas writes one key only if it is still as it was read
// (compare-and-swap on its mod revision), so a careful write never
// overwrites a change made in between.
package cas

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrConflict reports a key changed between the read and the write.
var ErrConflict = errors.New("the key changed since it was read")

// ReadKey returns the key's current value, nil when it does not exist.
func ReadKey(ctx context.Context, cli *clientv3.Client, key string) (*storage.KV, error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	return &storage.KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}, nil
}

// CompareAndPut writes value at key if the key's mod revision is still
// modRevision (0: the key must not exist), and returns the new revision.
func CompareAndPut(ctx context.Context, cli *clientv3.Client, key string, value []byte, modRevision int64) (int64, error) {
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, conflict(key, modRevision, resp)
	}
	return resp.Header.Revision, nil
}

// CompareAndDelete deletes key if its mod revision is still modRevision.
func CompareAndDelete(ctx context.Context, cli *clientv3.Client, key string, modRevision int64) (int64, error) {
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("deleting %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, conflict(key, modRevision, resp)
	}
	return resp.Header.Revision, nil
}

func conflict(key string, want int64, resp *clientv3.TxnResponse) error {
	now := int64(0)
	if len(resp.Responses) > 0 {
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			now = r.Kvs[0].ModRevision
		}
	}
	return fmt.Errorf("%w: %s is at mod revision %d, expected %d; nothing was written, read it again", ErrConflict, key, now, want)
}
