// Package source reads keys from where they are kept: a live cluster
// (paged or streamed ranges, watches, the history of a key replayed from
// the compaction point) or an etcd backend file (a snapshot, a member's db)
// read in one pass. It also learns where a resource is stored from the
// keys themselves (Resolve, Segments).
package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Source is where keys are read from: a live cluster or a snapshot file.
type Source interface {
	// Range calls fn for every key in [start, end) at rev (0: the newest)
	// in key order, at most limit keys (0: all); end "" means the key start
	// alone. It returns the revision read.
	Range(ctx context.Context, start, end string, rev, limit int64, fn func(storage.KV) error) (int64, error)
}

// FirstKey returns the first key starting with prefix at rev, "" when none.
func FirstKey(ctx context.Context, src Source, prefix string, rev int64) (string, error) {
	var first string
	_, err := src.Range(ctx, prefix, storage.PrefixEnd(prefix), rev, 1, func(kv storage.KV) error {
		first = kv.Key
		return nil
	})
	return first, err
}

// Etcd reads a live cluster in pieces, so memory stays flat whatever the
// size of the range, at one revision: a listing is one consistent view.
// From etcd 3.7 a range is one RangeStream request, whose chunks the
// server sizes and sends without counting the rest of the range each time;
// older servers are read page by page with Get, each page at the first
// page's revision.
type Etcd struct {
	Client *clientv3.Client
	// PageSize is the number of keys fetched per Get request (default 500).
	PageSize int64
	// KeysOnly fetches keys without values.
	KeysOnly bool
	// RequestContext bounds one request (default: ctx unchanged).
	RequestContext func(context.Context) (context.Context, context.CancelFunc)
	// ChunkTimeout bounds the wait for each chunk of a stream (default:
	// none); a whole stream may take much longer.
	ChunkTimeout time.Duration
	// NoStream reads with paged Get requests only. It is set by itself when
	// a server does not know RangeStream.
	NoStream bool
}

// Range implements Source.
func (e *Etcd) Range(ctx context.Context, start, end string, rev, limit int64, fn func(storage.KV) error) (int64, error) {
	page := e.PageSize
	if page <= 0 {
		page = 500
	}
	// A few keys (a lookup of the first key under a prefix) take one Get.
	if end != "" && !e.NoStream && (limit == 0 || limit > page) {
		r, err := e.rangeStream(ctx, start, end, rev, limit, fn)
		if !errors.Is(err, errNoRangeStream) {
			return r, err
		}
		e.NoStream = true
	}
	var n int64
	for {
		size := page
		if limit > 0 && limit-n < size {
			size = limit - n
		}
		opts := []clientv3.OpOption{clientv3.WithLimit(size)}
		if end != "" {
			opts = append(opts, clientv3.WithRange(end))
		}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		if e.KeysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if e.RequestContext != nil {
			rctx, cancel = e.RequestContext(ctx)
		}
		resp, err := e.Client.Get(rctx, start, opts...)
		cancel()
		if err != nil {
			return rev, fmt.Errorf("reading %s: %w", describeRange(start, end), err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := fn(storage.KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}); err != nil {
				return rev, err
			}
			n++
		}
		if !resp.More || end == "" || len(resp.Kvs) == 0 || limit > 0 && n >= limit {
			return rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// errNoRangeStream: the server predates RangeStream (etcd 3.7).
var errNoRangeStream = errors.New("the server does not know RangeStream")

// rangeStream reads [start, end) with one RangeStream request. It returns
// errNoRangeStream, before calling fn, when the server does not know it.
func (e *Etcd) rangeStream(ctx context.Context, start, end string, rev, limit int64, fn func(storage.KV) error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRange(end)}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	if e.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	// Each chunk must come within ChunkTimeout: a stalled member fails the
	// listing instead of hanging it.
	var stalled atomic.Bool
	reset := func() {}
	if e.ChunkTimeout > 0 {
		watchdog := time.AfterFunc(e.ChunkTimeout, func() { stalled.Store(true); cancel() })
		defer watchdog.Stop()
		reset = func() { watchdog.Reset(e.ChunkTimeout) }
	}
	fail := func(err error) error {
		if stalled.Load() {
			return fmt.Errorf("reading %s: no answer within %s", describeRange(start, end), e.ChunkTimeout)
		}
		if status.Code(err) == codes.Unimplemented {
			return errNoRangeStream
		}
		return fmt.Errorf("reading %s: %w", describeRange(start, end), err)
	}
	stream, err := e.Client.GetStream(ctx, start, opts...)
	if err != nil {
		return rev, fail(err)
	}
	// On an early return the stream is cancelled and drained, so its
	// reader goroutine ends.
	defer func() {
		cancel()
		for range stream {
		}
	}()
	for resp := range stream {
		reset()
		if err := resp.Err(); err != nil {
			return rev, fail(err)
		}
		for _, kv := range resp.Kvs {
			if err := fn(storage.KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}); err != nil {
				return rev, err
			}
		}
		if resp.Header != nil && rev == 0 {
			rev = resp.Header.Revision
		}
	}
	if err := ctx.Err(); err != nil {
		return rev, fail(err)
	}
	return rev, nil
}

func describeRange(start, end string) string {
	switch {
	case end == "":
		return start
	case end == storage.PrefixEnd(start):
		return start + "*"
	}
	return fmt.Sprintf("[%s, %s)", start, end)
}

// SnapshotSource reads a snapshot loaded by ReadSnapshot.
type SnapshotSource struct{ Snapshot *Snapshot }

// Range implements Source. rev must be 0 or the snapshot's revision: the
// file was read at one revision.
func (s *SnapshotSource) Range(_ context.Context, start, end string, rev, limit int64, fn func(storage.KV) error) (int64, error) {
	if rev != 0 && rev != s.Snapshot.Revision {
		return 0, fmt.Errorf("the snapshot was read at revision %d, not %d", s.Snapshot.Revision, rev)
	}
	for i, kv := range s.Snapshot.Range(start, end) {
		if limit > 0 && int64(i) >= limit {
			break
		}
		if r := s.Snapshot.resident; r != nil {
			// The values point into the file's map: let go of the pages
			// read so far every so often (they read back from the page
			// cache if a value is still being printed).
			r.read(len(kv.Value))
		}
		if err := fn(kv); err != nil {
			return s.Snapshot.Revision, err
		}
	}
	return s.Snapshot.Revision, nil
}

// Segments lists the distinct path segments directly under dir (which ends
// with "/") at rev, one request per segment: it jumps over each segment's
// keys instead of reading them.
func Segments(ctx context.Context, src Source, dir string, rev int64) ([]string, error) {
	var out []string
	start := dir
	for {
		var key string
		_, err := src.Range(ctx, start, storage.PrefixEnd(dir), rev, 1, func(kv storage.KV) error {
			key = kv.Key
			return nil
		})
		if err != nil || key == "" {
			return out, err
		}
		rest := key[len(dir):]
		seg, _, nested := strings.Cut(rest, "/")
		if len(out) == 0 || out[len(out)-1] != seg {
			out = append(out, seg)
		}
		if nested {
			start = storage.PrefixEnd(dir + seg + "/")
		} else {
			start = key + "\x00"
		}
	}
}

// Resolved is where a resource's objects are stored.
type Resolved struct {
	// Resource is the canonical plural[.group].
	Resource string
	// Path is the key path under the storage prefix ("services/specs").
	Path string
	// Namespaced is learned from the first key's depth.
	Namespaced bool
	// Found is false when no key is stored for the resource.
	Found bool
}

// Resolve finds where resource (plural, singular, short name, with or
// without .group) is stored under prefix, by looking at the keys.
func Resolve(ctx context.Context, src Source, prefix, resource string, rev int64) (Resolved, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	canonical := storage.CanonicalResource(resource)
	r := Resolved{Resource: canonical}
	candidates := storage.CandidatePaths(canonical)
	plural, group, _ := strings.Cut(canonical, ".")
	if group != "" && !storage.IsBuiltin(canonical) {
		candidates = []string{group + "/" + plural}
	}
	if group == "" && !storage.IsBuiltin(canonical) {
		// A custom resource named by its plural: find the group among the
		// stored group directories.
		segs, err := Segments(ctx, src, prefix+"/", rev)
		if err != nil {
			return r, err
		}
		for _, s := range segs {
			if strings.Contains(s, ".") {
				candidates = append(candidates, s+"/"+plural)
			}
		}
	}
	for _, p := range candidates {
		first, err := FirstKey(ctx, src, prefix+"/"+p+"/", rev)
		if err != nil {
			return r, err
		}
		if first == "" {
			continue
		}
		r.Path, r.Found = p, true
		r.Namespaced = strings.Count(first[len(prefix)+len(p)+2:], "/") >= 1
		if k, ok := storage.ParseKey(prefix, first); ok && strings.Contains(p, ".") {
			r.Resource = k.Resource()
		}
		return r, nil
	}
	r.Path = candidates[0]
	return r, nil
}
