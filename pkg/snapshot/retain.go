package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// timeLayout is the UTC time in snapshot file names: sortable, no colons.
const timeLayout = "20060102T150405Z"

// FileName names a snapshot saved into a directory by the UTC time it was
// taken and its revision, for example
// etcd-snapshot-20261125T120000Z-rev1234.db.gz.
func FileName(taken time.Time, revision int64, compression string) string {
	return fmt.Sprintf("etcd-snapshot-%s-rev%d.db%s", taken.UTC().Format(timeLayout), revision, Extension(compression))
}

var fileNameRE = regexp.MustCompile(`^etcd-snapshot-(\d{8}T\d{6}Z)-rev(\d+)\.db(\.gz|\.zst)?$`)

// Saved is a snapshot file found in a directory by its name.
type Saved struct {
	Name     string
	Taken    time.Time
	Revision int64
}

// ParseFileName reads the time and revision from a name FileName made; ok
// is false for any other name, so foreign files are never touched.
func ParseFileName(name string) (Saved, bool) {
	m := fileNameRE.FindStringSubmatch(name)
	if m == nil {
		return Saved{}, false
	}
	t, err := time.Parse(timeLayout, m[1])
	if err != nil {
		return Saved{}, false
	}
	rev, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return Saved{}, false
	}
	return Saved{Name: name, Taken: t, Revision: rev}, true
}

// List returns the snapshots FileName named in dir, newest first.
func List(dir string) ([]Saved, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Saved
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if s, ok := ParseFileName(e.Name()); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Taken.Equal(out[j].Taken) {
			return out[i].Taken.After(out[j].Taken)
		}
		if out[i].Revision != out[j].Revision {
			return out[i].Revision > out[j].Revision
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// Prune keeps the newest keep snapshots in dir and removes the older ones
// with their metadata files. It returns the removed snapshot paths, oldest
// first. Files it did not name (other backups, .part files of a save in
// progress) stay.
func Prune(dir string, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	saved, err := List(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i := len(saved) - 1; i >= keep; i-- {
		p := filepath.Join(dir, saved[i].Name)
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("pruning %s: %w", p, err)
		}
		if err := os.Remove(p + ".json"); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("pruning %s.json: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

var partNameRE = regexp.MustCompile(`^etcd-snapshot-(\d{8}T\d{6}Z)-\d+(\.download)?\.part$`)

// StalePartAge is how old a partial file left in a directory must be for
// RemoveStaleParts to remove it: far longer than any save takes.
const StalePartAge = 24 * time.Hour

// RemoveStaleParts removes the partial files that saves into dir left
// behind when they were killed outright (SIGKILL, a node reboot), once they
// are StalePartAge older than now by the time in their name, so a scheduled
// job does not fill its disk with them. A save in progress is never that
// old. It returns the removed paths.
func RemoveStaleParts(dir string, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		m := partNameRE.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		t, err := time.Parse(timeLayout, m[1])
		if err != nil || now.Sub(t) < StalePartAge {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("removing stale %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
