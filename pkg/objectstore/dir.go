package objectstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/fileutil"
)

// Dir is a location on the local file system. Objects are written to a
// hidden .NAME.part file, synced, and renamed into place.
type Dir struct {
	Path string
}

func (d *Dir) String() string { return d.Path }

// URL is the path of the named file.
func (d *Dir) URL(name string) string { return filepath.Join(d.Path, name) }

// partPrefix and partSuffix mark a file being written; List skips them.
const (
	partPrefix = "."
	partSuffix = ".part"
)

// Create starts writing the file.
func (d *Dir) Create(_ context.Context, name string) (Upload, error) {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return nil, fmt.Errorf("creating backup directory: %w", err)
	}
	part := filepath.Join(d.Path, partPrefix+name+partSuffix)
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", part, err)
	}
	return &dirUpload{f: f, bw: bufio.NewWriterSize(f, 1<<20), part: part, final: filepath.Join(d.Path, name)}, nil
}

type dirUpload struct {
	f           *os.File
	bw          *bufio.Writer
	part, final string
	done        bool
}

func (u *dirUpload) Write(p []byte) (int, error) { return u.bw.Write(p) }

func (u *dirUpload) Commit(context.Context) error {
	if err := u.bw.Flush(); err != nil {
		u.Abort()
		return fmt.Errorf("writing %s: %w", u.part, err)
	}
	if err := u.f.Sync(); err != nil {
		u.Abort()
		return fmt.Errorf("syncing %s: %w", u.part, err)
	}
	if err := u.f.Close(); err != nil {
		u.Abort()
		return fmt.Errorf("writing %s: %w", u.part, err)
	}
	if err := os.Rename(u.part, u.final); err != nil {
		u.Abort()
		return fmt.Errorf("renaming %s to %s: %w", u.part, u.final, err)
	}
	u.done = true
	return syncDir(filepath.Dir(u.final))
}

func (u *dirUpload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	os.Remove(u.part)
}

// Open opens the named file.
func (d *Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(d.URL(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d.URL(name), ErrNotFound)
	}
	return f, err
}

// Put writes a small file atomically.
func (d *Dir) Put(_ context.Context, name string, data []byte) error {
	return fileutil.WriteFileAtomic(d.URL(name), data, 0o600, 0o700)
}

// List lists the regular files, partial ones left out. A directory that
// does not exist holds nothing.
func (d *Dir) List(context.Context) ([]Object, error) {
	entries, err := fileutil.ReadDirIfExists(d.Path)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Object{Name: e.Name(), Size: fi.Size(), Modified: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes the named file.
func (d *Dir) Delete(_ context.Context, name string) error {
	if err := os.Remove(d.URL(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// AbortStale removes partial files last written before the given time.
func (d *Dir) AbortStale(_ context.Context, before time.Time) ([]string, error) {
	entries, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, nil
	}
	var removed []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), partPrefix) || !strings.HasSuffix(e.Name(), partSuffix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(before) {
			continue
		}
		p := filepath.Join(d.Path, e.Name())
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		}
	}
	return removed, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
