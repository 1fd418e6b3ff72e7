// Package stats counts keys and bytes of a key space per resource (and
// namespace), with the largest values, from a live cluster or a backend
// file.
package stats

import (
	"context"
	"sort"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// Stats summarises a key space per resource (and namespace).
type Stats struct {
	Revision int64     `json:"revision"`
	Groups   []Group   `json:"groups"`
	Largest  []KeySize `json:"largest,omitempty"`
	Keys     int64     `json:"keys"`
	Bytes    int64     `json:"bytes"`
	// OldBytes is only known for snapshot files.
	OldBytes int64 `json:"oldBytes,omitempty"`
}

// Group is one resource (and namespace with ByNamespace).
type Group struct {
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Count     int64  `json:"count"`
	Bytes     int64  `json:"bytes"`
	OldBytes  int64  `json:"oldBytes,omitempty"`
}

// KeySize is one key and the size of its value.
type KeySize struct {
	Key   string `json:"key"`
	Bytes int64  `json:"bytes"`
}

// Options shape Collect.
type Options struct {
	// Prefix is the storage prefix, for grouping keys by resource.
	Prefix      string
	ByNamespace bool
	// Top keeps the N largest values.
	Top int
	// OldBytes, when set, gives the bytes held by old revisions per key.
	OldBytes map[string]int64
}

// groupsByKey finds or makes the Group a key counts in.
type groupsByKey struct {
	prefix      string
	byNamespace bool
	m           map[[2]string]*Group
}

// of returns the group of key: its resource (keys outside the storage
// prefix under their first path segment) and, by namespace, its namespace.
func (gs groupsByKey) of(key string) *Group {
	resource, ns := "(other)", ""
	if k, ok := storage.ParseKey(gs.prefix, key); ok {
		resource, ns = k.Resource(), k.Namespace
	} else if k.Path != "" {
		resource = k.Path
	}
	if !gs.byNamespace {
		ns = ""
	}
	g := gs.m[[2]string{resource, ns}]
	if g == nil {
		g = &Group{Resource: resource, Namespace: ns}
		gs.m[[2]string{resource, ns}] = g
	}
	return g
}

// Collect reads [start, end) at rev and groups it. Keys outside the
// storage prefix group under their first path segment.
func Collect(ctx context.Context, src source.Source, start, end string, rev int64, o Options) (*Stats, error) {
	groups := groupsByKey{prefix: o.Prefix, byNamespace: o.ByNamespace, m: map[[2]string]*Group{}}
	st := &Stats{}
	r, err := src.Range(ctx, start, end, rev, 0, func(kv storage.KV) error {
		g := groups.of(kv.Key)
		size := int64(len(kv.Value))
		g.Count++
		g.Bytes += size
		st.Keys++
		st.Bytes += size
		if o.Top > 0 {
			st.Largest = insertLargest(st.Largest, KeySize{kv.Key, size}, o.Top)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.Revision = r
	for key, n := range o.OldBytes {
		if key < start || end != "" && key >= end {
			continue
		}
		// A group first made here has every version of its keys deleted.
		g := groups.of(key)
		g.OldBytes += n
		st.OldBytes += n
	}
	for _, g := range groups.m {
		st.Groups = append(st.Groups, *g)
	}
	sort.Slice(st.Groups, func(i, j int) bool {
		a, b := st.Groups[i], st.Groups[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return a.Namespace < b.Namespace
	})
	return st, nil
}

// insertLargest keeps the n largest, largest first, ties by key.
func insertLargest(top []KeySize, k KeySize, n int) []KeySize {
	i := sort.Search(len(top), func(i int) bool {
		return top[i].Bytes < k.Bytes || top[i].Bytes == k.Bytes && top[i].Key > k.Key
	})
	if i >= n {
		return top
	}
	top = append(top, KeySize{})
	copy(top[i+1:], top[i:])
	top[i] = k
	if len(top) > n {
		top = top[:n]
	}
	return top
}
