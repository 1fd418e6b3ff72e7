package source

import (
	"context"
	"fmt"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/backend"
	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// History returns every revision of key the cluster still keeps, oldest
// first, deletions included. It replays a watch from the compaction point
// and stops once the server reports the watch caught up with the revision
// of the first read.
func History(ctx context.Context, cli *clientv3.Client, key string) ([]Event, error) {
	resp, err := cli.Get(ctx, key, clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	now := resp.Header.Revision
	w := clientv3.NewWatcher(cli)
	defer w.Close()
	ctx = clientv3.WithRequireLeader(ctx)
	start := int64(1)
	for {
		events, compacted, err := replay(ctx, w, key, start, now)
		if err != nil {
			return nil, err
		}
		if compacted == 0 {
			return events, nil
		}
		start = compacted
	}
}

func replay(ctx context.Context, w clientv3.Watcher, key string, start, until int64) ([]Event, int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := w.Watch(wctx, key, clientv3.WithRev(start), clientv3.WithPrevKV())
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var events []Event
	for {
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-tick.C:
			// Answered only once the watcher has caught up.
			_ = w.RequestProgress(wctx)
		case resp, ok := <-ch:
			if !ok {
				return nil, 0, fmt.Errorf("watching %s: stream closed", key)
			}
			if resp.CompactRevision > 0 {
				return nil, resp.CompactRevision, nil
			}
			if err := resp.Err(); err != nil {
				return nil, 0, fmt.Errorf("watching %s: %w", key, err)
			}
			for _, ev := range resp.Events {
				e := Event{KV: storage.KV{Key: string(ev.Kv.Key), Value: ev.Kv.Value, CreateRevision: ev.Kv.CreateRevision, ModRevision: ev.Kv.ModRevision, Version: ev.Kv.Version}}
				switch {
				case ev.Type == clientv3.EventTypeDelete:
					e.Type = EventDeleted
					e.KV.Value = nil
				case ev.IsCreate():
					e.Type = EventAdded
				default:
					e.Type = EventModified
				}
				events = append(events, e)
			}
			if resp.IsProgressNotify() && resp.Header.Revision >= until || len(resp.Events) > 0 && resp.Header.Revision >= until && lastRev(events) >= until {
				return events, 0, nil
			}
		}
	}
}

func lastRev(events []Event) int64 {
	if len(events) == 0 {
		return 0
	}
	return events[len(events)-1].KV.ModRevision
}

// SnapshotHistory reads every revision of key an etcd backend file keeps,
// oldest first, in one pass.
func SnapshotHistory(path, key string) ([]Event, error) {
	db, err := backend.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var events []Event
	err = db.View(func(tx *bolt.Tx) error {
		b, err := backend.KeyBucket(tx, path)
		if err != nil {
			return err
		}
		// One pass over every revision in the file: let go of the pages
		// read (see ReadSnapshotRange).
		resident := residentLimit{db: db, size: tx.Size(), every: 64 << 20}
		err = backend.ForEach(b, func(k, v []byte, entry backend.Entry) error {
			resident.read(len(k) + len(v))
			kv := entry.KeyValue
			if string(kv.Key) != key {
				return nil
			}
			e := Event{KV: storage.KV{Key: key, Value: append([]byte(nil), kv.Value...), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}}
			switch {
			case entry.Tombstone:
				e.Type = EventDeleted
				e.KV.ModRevision = entry.Revision.Main
			case kv.Version == 1:
				e.Type = EventAdded
			default:
				e.Type = EventModified
			}
			events = append(events, e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	return events, err
}
