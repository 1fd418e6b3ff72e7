// Package bundle writes a support bundle: a tar.gz of what someone helping
// with a broken etcd needs to see (reports, manifests, members, metrics,
// which keys exist and how big they are) and nothing a cluster keeps
// secret. Values of keys never enter it: the key listing is built from
// lengths alone, so there is no code path by which a Secret's data could.
package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/storage/source"
)

// Bundle collects files in memory, in the order added.
type Bundle struct {
	// Now stamps the files' modification times.
	Now     time.Time
	entries []entry
}

type entry struct {
	name string
	data []byte
}

// Add puts a file in the bundle.
func (b *Bundle) Add(name string, data []byte) {
	b.entries = append(b.entries, entry{name, data})
}

// AddJSON puts v as indented JSON.
func (b *Bundle) AddJSON(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bundle file %s: %w", name, err)
	}
	b.Add(name, append(data, '\n'))
	return nil
}

// Names lists the files added.
func (b *Bundle) Names() []string {
	var names []string
	for _, e := range b.entries {
		names = append(names, e.name)
	}
	return names
}

// WriteFile writes the bundle to path as a gzipped tar, mode 0600 (it
// names the cluster's objects), atomically so a failed write leaves no half
// bundle.
func (b *Bundle) WriteFile(path string) error {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dir := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".gz"), ".tar"), ".tgz")
	for _, e := range b.entries {
		hdr := &tar.Header{Name: dir + "/" + e.name, Mode: 0o600, Size: int64(len(e.data)), ModTime: b.Now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing bundle %s: %w", path, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("writing bundle %s: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing bundle %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing bundle %s: %w", path, err)
	}
	if err := fileutil.WriteFileAtomic(path, buf.Bytes(), 0o600, 0o700); err != nil {
		return fmt.Errorf("writing bundle: %w", err)
	}
	return nil
}

// KeySize is one key and the length of its value.
type KeySize struct {
	Key      string `json:"key"`
	Bytes    int64  `json:"bytes"`
	Revision int64  `json:"modRevision"`
}

// Resource is the keys of one resource (or first path segment).
type Resource struct {
	Resource string    `json:"resource"`
	Count    int       `json:"count"`
	Bytes    int64     `json:"bytes"`
	Keys     []KeySize `json:"keys"`
}

// KeySizes lists every key of src at rev with its value's length, grouped
// per resource of the storage prefix. It keeps no byte of any value.
func KeySizes(ctx context.Context, src source.Source, prefix string, rev int64) ([]Resource, error) {
	groups := map[string]*Resource{}
	_, err := src.Range(ctx, "\x00", "\x00", rev, 0, func(kv storage.KV) error {
		resource := "(other)"
		if k, ok := storage.ParseKey(prefix, kv.Key); ok {
			resource = k.Resource()
		} else if k.Path != "" {
			resource = k.Path
		}
		g := groups[resource]
		if g == nil {
			g = &Resource{Resource: resource}
			groups[resource] = g
		}
		g.Count++
		g.Bytes += int64(len(kv.Value))
		g.Keys = append(g.Keys, KeySize{Key: kv.Key, Bytes: int64(len(kv.Value)), Revision: kv.ModRevision})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Resource, 0, len(groups))
	for _, g := range groups {
		sort.Slice(g.Keys, func(i, j int) bool { return g.Keys[i].Key < g.Keys[j].Key })
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out, nil
}

// KeySizesText is the listing as a table per resource, for reading.
func KeySizesText(rs []Resource) []byte {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tKEY\tBYTES\tMOD REVISION")
	for _, r := range rs {
		for _, k := range r.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", r.Resource, k.Key, k.Bytes, k.Revision)
		}
	}
	tw.Flush()
	return []byte(sb.String())
}
