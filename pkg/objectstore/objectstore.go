// Package objectstore keeps backup files in a location: a local directory
// or a prefix of an S3 bucket (AWS or any S3-compatible store). Objects are
// written through an Upload that makes them visible only on Commit, so a
// reader never sees half an object, and removed without trace on Abort.
package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Object is one stored file.
type Object struct {
	// Name is the object's name inside the location (no prefix, no
	// directory).
	Name     string
	Size     int64
	Modified time.Time
}

// Store is a location holding backup objects.
type Store interface {
	// String is the location as the user gives it: a directory or
	// s3://BUCKET/PREFIX/.
	String() string
	// URL names one object in the location.
	URL(name string) string
	// Create starts writing an object; it appears only when Commit
	// returns nil.
	Create(ctx context.Context, name string) (Upload, error)
	// Open reads an object. A missing one is an error wrapping
	// ErrNotFound.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Put writes a small object in one request.
	Put(ctx context.Context, name string, data []byte) error
	// List returns the objects of the location, sorted by name.
	List(ctx context.Context) ([]Object, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, name string) error
	// AbortStale removes what writers killed outright left behind, started
	// before the given time: partial files, unfinished multipart uploads.
	// It returns what it removed.
	AbortStale(ctx context.Context, before time.Time) ([]string, error)
}

// Upload is an object being written.
type Upload interface {
	io.Writer
	// Commit makes the object visible under its name, complete.
	Commit(ctx context.Context) error
	// Abort discards what was written; after Commit it does nothing.
	Abort()
}

// ErrNotFound is wrapped by errors for an object that does not exist.
var ErrNotFound = errors.New("not found")

// Location is where backups go, parsed from the command line.
type Location struct {
	// Bucket and Prefix are set for s3:// (Prefix empty or ending in /),
	// Dir for a local directory.
	Bucket, Prefix string
	Dir            string
}

// IsS3 reports whether the location is an S3 bucket.
func (l Location) IsS3() bool { return l.Bucket != "" }

func (l Location) String() string {
	if l.IsS3() {
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return l.Dir
}

// IsURL reports whether s names an object store rather than a local path.
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// ParseLocation reads a location: s3://BUCKET[/PREFIX[/]] or a local
// directory. The prefix always ends in / so the backups of one location
// are not mixed with those of s3://BUCKET/PREFIX-other/.
func ParseLocation(s string) (Location, error) {
	if !strings.Contains(s, "://") {
		if s == "" {
			return Location{}, errors.New("no location given: a directory or s3://BUCKET/PREFIX/")
		}
		return Location{Dir: filepath.Clean(s)}, nil
	}
	if !IsURL(s) {
		scheme, _, _ := strings.Cut(s, "://")
		return Location{}, fmt.Errorf("unsupported location %q: the scheme %s:// is not supported (use a local path or s3://BUCKET/PREFIX/)", s, scheme)
	}
	rest := strings.TrimPrefix(s, "s3://")
	bucket, prefix, _ := strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return Location{}, fmt.Errorf("location %q: %w", s, err)
	}
	prefix = strings.Trim(path.Clean("/"+prefix), "/")
	if prefix != "" {
		prefix += "/"
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

// ParseObject splits the URL or path of one object into its location and
// name: s3://BUCKET/PREFIX/NAME or DIR/NAME.
func ParseObject(s string) (Location, string, error) {
	if !strings.Contains(s, "://") {
		if s == "" || strings.HasSuffix(s, "/") {
			return Location{}, "", fmt.Errorf("%q names a directory, not a file", s)
		}
		return Location{Dir: filepath.Dir(s)}, filepath.Base(s), nil
	}
	if strings.HasSuffix(s, "/") {
		return Location{}, "", fmt.Errorf("%q names a prefix, not an object: give the whole object URL (see 'kubectl etcd snapshot list')", s)
	}
	i := strings.LastIndex(s, "/")
	loc, err := ParseLocation(s[:i+1])
	if err != nil {
		return Location{}, "", err
	}
	name := s[i+1:]
	if loc.Prefix == "" && !strings.Contains(strings.TrimPrefix(s, "s3://"), "/") {
		return Location{}, "", fmt.Errorf("%q names a bucket, not an object", s)
	}
	return loc, name, nil
}

// checkBucket applies the S3 bucket naming rules that catch typing
// mistakes: 3 to 63 lowercase letters, digits, dots and hyphens.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", b)
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q may hold only lowercase letters, digits, dots and hyphens", b)
		}
	}
	return nil
}

// Open returns the store of a location. S3 settings come from the AWS
// SDK's standard chain (environment, shared config and credentials files,
// web identity, instance roles), then opts.
func Open(ctx context.Context, loc Location, opts S3Options) (Store, error) {
	if loc.IsS3() {
		return openS3(ctx, loc, opts)
	}
	return &Dir{Path: loc.Dir}, nil
}
