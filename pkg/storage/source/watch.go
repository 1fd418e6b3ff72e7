package source

import (
	"context"
	"fmt"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Event types, as kubectl names them.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
)

// Event is one change of a key.
type Event struct {
	Type string
	// storage.KV is the new value; for DELETED the key and the deletion revision,
	// with Value the last value when the server still had it.
	KV storage.KV
}

// Watch calls fn for every change in [start, end) (end "": the key start
// alone) from rev (0: from now) until ctx ends or fn returns an error.
func Watch(ctx context.Context, cli *clientv3.Client, start, end string, rev int64, fn func(Event) error) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrevKV()}
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	for resp := range cli.Watch(ctx, start, opts...) {
		if err := resp.Err(); err != nil {
			if resp.CompactRevision > 0 {
				return fmt.Errorf("watching %s from revision %d: compacted, the oldest revision kept is %d", describeRange(start, end), rev, resp.CompactRevision)
			}
			return fmt.Errorf("watching %s: %w", describeRange(start, end), err)
		}
		for _, ev := range resp.Events {
			e := Event{KV: storage.KV{Key: string(ev.Kv.Key), Value: ev.Kv.Value, CreateRevision: ev.Kv.CreateRevision, ModRevision: ev.Kv.ModRevision, Version: ev.Kv.Version}}
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				e.Type = EventDeleted
				if ev.PrevKv != nil {
					e.KV.Value = ev.PrevKv.Value
				}
			case ev.IsCreate():
				e.Type = EventAdded
			default:
				e.Type = EventModified
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}
