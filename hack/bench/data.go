package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/internal/benchdata"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
)

const (
	smallPrefix = "/bench/small"
	churnPrefix = "/bench/churn"
	loadPrefix  = "/bench/load"
	// putsPerTxn is for pods (about 440 KiB a transaction), smallPerTxn
	// for small keys: the cluster allows 1000 operations per transaction
	// (startCluster) so that loading a million keys is quick.
	putsPerTxn  = 100
	smallPerTxn = 1000
)

// putAll writes n keys, key(i) = value(i), in transactions of up to
// perTxn puts from several goroutines.
func putAll(ctx context.Context, cli *clientv3.Client, n, perTxn, workers int, kv func(i int) (string, []byte, error)) (int64, error) {
	var next, written atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(perTxn))) - perTxn
				if from >= n || ctx.Err() != nil {
					return
				}
				to := min(from+perTxn, n)
				ops := make([]clientv3.Op, 0, to-from)
				for i := from; i < to; i++ {
					k, v, err := kv(i)
					if err != nil {
						errs <- err
						return
					}
					written.Add(int64(len(v)))
					ops = append(ops, clientv3.OpPut(k, string(v)))
				}
				// A loaded machine makes etcd time requests out; the puts
				// are idempotent, so try again a few times.
				var err error
				for attempt := range 5 {
					if attempt > 0 {
						time.Sleep(time.Duration(attempt) * time.Second)
					}
					rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					_, err = cli.Txn(rctx).Then(ops...).Commit()
					cancel()
					if err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("writing keys %d to %d: %w", from, to, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return written.Load(), <-errs
}

// loadPods writes n pods under prefix + "/pods/" (storage.DefaultPrefix:
// /registry/pods), each encoded by the project's own encoder as
// kube-apiserver would store it.
func loadPods(ctx context.Context, cli *clientv3.Client, prefix string, n int) (int64, error) {
	return putAll(ctx, cli, n, putsPerTxn, 4, func(i int) (string, []byte, error) {
		v, err := benchdata.PodValue(i)
		return benchdata.PodKey(prefix, i), v, err
	})
}

// listPrefix is where the listing rows of n pods read: /registry for the
// main set, /bench/pods-N for the smaller ones.
func listPrefix(o options, n int) string {
	if n == o.pods {
		return storage.DefaultPrefix
	}
	return fmt.Sprintf("/bench/pods-%d", n)
}

func loadSmall(ctx context.Context, cli *clientv3.Client, n int) (int64, error) {
	return putAll(ctx, cli, n, smallPerTxn, 4, func(i int) (string, []byte, error) {
		return benchdata.SmallKey(smallPrefix, i), benchdata.SmallValue(i), nil
	})
}

// churnValueSize is the size of the values rewritten to fragment the
// database: large enough that the churn is quick, small enough for etcd's
// request size limit at 16 per transaction.
const churnValueSize = 64 << 10

// fragment rewrites 256 keys with fresh values until the largest member
// database is at least target bytes and a quarter of that has been
// rewritten (or, with target 0, until bytes have been written), then
// compacts: the old revisions' pages become free space inside the file,
// which only a defragmentation returns.
func fragment(ctx context.Context, c *cluster, target, bytes int64, progress io.Writer) (int64, error) {
	const keys, perTxn = 256, 8
	var written int64
	round := 0
	for {
		if bytes > 0 && written >= bytes {
			break
		}
		if bytes == 0 {
			sts, err := c.status(ctx)
			if err != nil {
				return written, err
			}
			var largest int64
			for _, st := range sts {
				largest = max(largest, st.DbSize)
			}
			if largest >= target && written >= target/4 {
				break
			}
			fmt.Fprintf(progress, "    database %d MiB of %d MiB\n", largest>>20, target>>20)
		}
		// A quarter of the goal per round, at most 64 MiB, four writers.
		puts := int(max(target, bytes) / churnValueSize / 4)
		puts = min(max(puts, perTxn), 1024)
		n, err := putAll(ctx, c.cli, puts, perTxn, 4, func(i int) (string, []byte, error) {
			value := make([]byte, churnValueSize)
			copy(value, fmt.Sprintf("round %d value %d", round, i))
			return fmt.Sprintf("%s/key-%04d", churnPrefix, i%keys), value, nil
		})
		written += n
		if err != nil {
			return written, err
		}
		round++
	}
	resp, err := c.cli.Get(ctx, "/bench/started")
	if err != nil {
		return written, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := c.cli.Compact(rctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return written, fmt.Errorf("compacting: %w", err)
	}
	return written, c.settle(ctx)
}

// settle waits until every member's database size in use stays the same
// for two seconds (at most a minute): the pages a compaction frees are
// counted free a little after it returns.
func (c *cluster) settle(ctx context.Context) error {
	var last []int64
	stable := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && stable < 2; {
		time.Sleep(time.Second)
		sts, err := c.status(ctx)
		if err != nil {
			return err
		}
		var now []int64
		for _, st := range sts {
			now = append(now, st.DbSizeInUse)
		}
		if fmt.Sprint(now) == fmt.Sprint(last) {
			stable++
		} else {
			stable = 0
		}
		last = now
	}
	return nil
}

// registryPrefix is the storage prefix of the main set of pods.
const registryPrefix = storage.DefaultPrefix
