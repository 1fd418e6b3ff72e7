package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/snapshot"
)

// Entry is one snapshot in a location, described by its metadata object.
type Entry struct {
	// Name is the object's name, URL where it is.
	Name string `json:"name"`
	URL  string `json:"url"`
	// Size is the stored size (compressed, encrypted).
	Size int64 `json:"size"`
	// Metadata is what the save recorded, nil when the metadata object is
	// missing or unreadable (MetadataError says why): the snapshot is then
	// listed by its name alone.
	Metadata      *snapshot.Result `json:"metadata,omitempty"`
	MetadataError string           `json:"metadataError,omitempty"`
	// Taken is when it was saved: from the metadata, else from the name.
	Taken time.Time `json:"taken"`
}

// snapshotNameRE matches the names saves give: into a directory
// (etcd-snapshot-TIME-revN.db) or a store (etcd-snapshot-TIME-MEMBERID.db),
// compressed or not, encrypted or not. Any other object is left alone.
var snapshotNameRE = regexp.MustCompile(`^etcd-snapshot-(\d{8}T\d{6}Z)-([0-9a-z]+)\.db(\.gz|\.zst)?(\.age)?$`)

// IsSnapshotName reports whether name is one a save gives.
func IsSnapshotName(name string) bool { return snapshotNameRE.MatchString(name) }

// List reads the catalog of a location: every snapshot with its
// metadata, newest first.
func List(ctx context.Context, st objectstore.Store) ([]Entry, error) {
	objs, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Name] = true
	}
	var out []Entry
	for _, o := range objs {
		m := snapshotNameRE.FindStringSubmatch(o.Name)
		if m == nil {
			continue
		}
		e := Entry{Name: o.Name, URL: st.URL(o.Name), Size: o.Size}
		e.Taken, _ = time.Parse("20060102T150405Z", m[1])
		if have[o.Name+snapshot.MetadataSuffix] {
			md, err := readMetadata(ctx, st, o.Name)
			if err != nil {
				e.MetadataError = err.Error()
			} else {
				e.Metadata = md
				if !md.Taken.IsZero() {
					e.Taken = md.Taken
				}
			}
		} else {
			e.MetadataError = "no metadata object"
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Taken.Equal(out[j].Taken) {
			return out[i].Taken.After(out[j].Taken)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

func readMetadata(ctx context.Context, st objectstore.Store, name string) (*snapshot.Result, error) {
	r, err := st.Open(ctx, name+snapshot.MetadataSuffix)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", st.URL(name+snapshot.MetadataSuffix), err)
	}
	md := &snapshot.Result{}
	if err := json.Unmarshal(data, md); err != nil {
		return nil, fmt.Errorf("%s is not a metadata file: %v", st.URL(name+snapshot.MetadataSuffix), err)
	}
	return md, nil
}

// Policy says which snapshots prune removes: beyond the newest Retain,
// or taken more than OlderThan before Now. The newest snapshot is never
// removed by age: a location whose saves stopped keeps its last one.
type Policy struct {
	Retain    int
	OlderThan time.Duration
	Now       time.Time
}

// StalePartAge is how old an unfinished upload or partial file must be
// for Prune to remove it: far longer than any save takes.
const StalePartAge = 24 * time.Hour

// PruneResult lists what a prune removed (or would remove, dry run), and
// the stale partial uploads it aborted.
type PruneResult struct {
	Removed []Entry  `json:"removed"`
	Kept    []Entry  `json:"kept"`
	Aborted []string `json:"aborted,omitempty"`
	DryRun  bool     `json:"dryRun,omitempty"`
}

// Plan decides what a prune removes, without touching anything.
func Plan(entries []Entry, p Policy) (kept, removed []Entry) {
	for i, e := range entries {
		switch {
		case p.Retain > 0 && i >= p.Retain:
			removed = append(removed, e)
		case p.OlderThan > 0 && i > 0 && p.Now.Sub(e.Taken) > p.OlderThan:
			removed = append(removed, e)
		default:
			kept = append(kept, e)
		}
	}
	return kept, removed
}

// Prune removes the snapshots the policy names, each with its metadata
// object, oldest first, and aborts stale unfinished uploads. With dryRun
// it only says what it would remove.
func Prune(ctx context.Context, st objectstore.Store, p Policy, dryRun bool) (*PruneResult, error) {
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	entries, err := List(ctx, st)
	if err != nil {
		return nil, err
	}
	kept, removed := Plan(entries, p)
	res := &PruneResult{Kept: kept, Removed: removed, DryRun: dryRun}
	if dryRun {
		return res, nil
	}
	for i := len(removed) - 1; i >= 0; i-- {
		if err := Delete(ctx, st, removed[i].Name); err != nil {
			return res, err
		}
	}
	aborted, err := st.AbortStale(ctx, p.Now.Add(-StalePartAge))
	res.Aborted = aborted
	return res, err
}

// Delete removes one snapshot and its metadata object. The snapshot goes
// first: a metadata object without its snapshot lists nothing, a
// snapshot without metadata still lists.
func Delete(ctx context.Context, st objectstore.Store, name string) error {
	if !IsSnapshotName(name) {
		return fmt.Errorf("%s is not named as a snapshot kubectl-etcd saved (etcd-snapshot-TIME-....db...): not deleting it", st.URL(name))
	}
	if err := st.Delete(ctx, name); err != nil {
		return err
	}
	return st.Delete(ctx, name+snapshot.MetadataSuffix)
}

// Find returns the catalog entry of one object, or an error naming the
// location's snapshots when there is none.
func Find(ctx context.Context, st objectstore.Store, name string) (*Entry, error) {
	entries, err := List(ctx, st)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		if entries[i].Name == name {
			return &entries[i], nil
		}
	}
	hint := "it holds no snapshots"
	if len(entries) > 0 {
		var names []string
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name)
		}
		hint = "the newest are " + strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("%s: no such snapshot in %s (%s)", name, st, hint)
}
