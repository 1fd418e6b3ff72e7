package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/objectstore"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// StoreSaver streams a snapshot of one member into a backup location as it
// arrives: compressed, then encrypted when asked, straight into an upload,
// with no copy on the local disk (--verify full keeps a temporary one to
// check every page). The object is committed, and so becomes visible,
// only after the sha256 trailer and the database's structure check out;
// on any failure, an interrupted context included, the upload is aborted
// and nothing appears. The metadata object NAME.json goes beside it.
type StoreSaver struct {
	// Saver gives the member, compression, verification, progress and log
	// settings; its Path, Dir, Retain and Overwrite are not used.
	Saver
	Store objectstore.Store
	// Encrypt, when set, wraps the stored stream (after compression);
	// closing what it returns finishes the encryption. Encryption names
	// it in the metadata ("age"), Recipients are who can read it.
	Encrypt    func(io.Writer) (io.WriteCloser, error)
	Encryption string
	Recipients []string
	// TempDir holds the temporary copy --verify full checks (os.TempDir
	// when empty).
	TempDir string
	// Name, when set, is the object's name instead of ObjectName's.
	Name string
}

// EncryptedExtension ends the name of an age-encrypted snapshot.
const EncryptedExtension = ".age"

// ObjectName names a snapshot in a store by the UTC time it was taken and
// the member it came from: the revision is only known once it has
// streamed, after the upload has its name.
func ObjectName(taken time.Time, memberID, compression string, encrypted bool) string {
	name := fmt.Sprintf("etcd-snapshot-%s-%s.db%s", taken.UTC().Format(timeLayout), memberID, Extension(compression))
	if encrypted {
		name += EncryptedExtension
	}
	return name
}

// MetadataSuffix ends the name of the metadata object of a snapshot.
const MetadataSuffix = ".json"

// Save streams, checks and commits the snapshot and writes its metadata.
func (s *StoreSaver) Save(ctx context.Context) (res *Result, err error) {
	taken, err := s.begin()
	if err != nil {
		return nil, err
	}
	src, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	s.logf("saving a snapshot of %s (%s), database %s, to %s", src.name, src.endpoint, output.Bytes(src.dbSize), s.Store)
	cli, err := s.Config.ClientFor(src.endpoint)
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	name := s.Name
	if name == "" {
		name = ObjectName(taken, src.id, s.Compression, s.Encrypt != nil)
	}
	// S3 replaces an object of the same name without a word: refuse, as
	// a save to a file does without --overwrite.
	if objs, err := s.Store.List(ctx); err != nil {
		return nil, err
	} else if !s.Overwrite {
		for _, o := range objs {
			if o.Name == name {
				return nil, fmt.Errorf("%s already exists: another save of this member ran in the same second", s.Store.URL(name))
			}
		}
	}
	res = &Result{Member: src.name, MemberID: src.id, Endpoint: src.endpoint, Taken: taken, Verified: s.verify(),
		Encryption: s.Encryption, Recipients: s.Recipients}
	// The upload starts once the member streams, so a member that fails
	// first leaves nothing to abort.
	var up objectstore.Upload
	committed := false
	defer func() {
		if up != nil && !committed {
			up.Abort()
		}
	}()
	create := func() (io.Writer, error) {
		var err error
		up, err = s.Store.Create(ctx, name)
		return up, err
	}
	st, err := s.stream(ctx, cli, src, create, res)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot of %s interrupted (%v); nothing was saved", src.name, context.Cause(ctx))
	}
	if err := up.Commit(ctx); err != nil {
		return nil, fmt.Errorf("%w; nothing was saved", err)
	}
	committed = true
	st.Path = s.Store.URL(name)
	res.FileStatus = *st
	if !s.NoMetadata {
		data, _ := json.MarshalIndent(res, "", "  ")
		res.MetadataFile = s.Store.URL(name + MetadataSuffix)
		if err := s.Store.Put(ctx, name+MetadataSuffix, append(data, '\n')); err != nil {
			return res, fmt.Errorf("the snapshot %s is saved, but its metadata object is not: %w", st.Path, err)
		}
	}
	return res, nil
}

// stream copies the snapshot from the member into up and checks it.
func (s *StoreSaver) stream(ctx context.Context, cli *clientv3.Client, src source, create func() (io.Writer, error), res *Result) (_ *FileStatus, err error) {
	resp, err := openStream(ctx, s.Config, cli, &src, res, "; nothing was saved")
	if err != nil {
		return nil, err
	}
	defer resp.Snapshot.Close()
	up, err := create()
	if err != nil {
		return nil, fmt.Errorf("%w; nothing was saved", err)
	}

	// What is stored: compressed, then encrypted; its sha256 is what a
	// download is checked against. Stored as it streams, it is the stream
	// itself, whose hash the trailer check computes anyway (fileSum): one
	// pass over the bytes instead of two, the second on this goroutine.
	var storedHash hash.Hash
	store := &countingWriter{w: up}
	stored := &countingWriter{w: store}
	plain := s.Encrypt == nil && s.Compression == None
	if !plain {
		storedHash = sha256.New()
		stored.w = io.MultiWriter(store, storedHash)
	}
	var sealed io.WriteCloser = nopWriteCloser{stored}
	if s.Encrypt != nil {
		if sealed, err = s.Encrypt(stored); err != nil {
			return nil, fmt.Errorf("encrypting: %w", err)
		}
	}
	comp, err := compressor(s.Compression, sealed)
	if err != nil {
		return nil, err
	}
	th := newTrailerHash()
	hashing := newBackgroundWriter(th)
	defer hashing.Close()
	scan := newBoltScan()
	sinks := []io.Writer{comp, hashing, scan}
	var tmp *os.File
	if s.verify() == VerifyFull {
		if tmp, err = os.CreateTemp(s.TempDir, "kubectl-etcd-verify-*.db"); err != nil {
			return nil, fmt.Errorf("--verify full needs a temporary copy: %w", err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		sinks = append(sinks, tmp)
	}
	sinks, done := s.meter(sinks, src)
	defer func() { done(err == nil) }()
	n, err := io.Copy(io.MultiWriter(sinks...), resp.Snapshot)
	if err != nil {
		if store.err != nil {
			// The store refused a write: say so rather than blame the member.
			return nil, fmt.Errorf("writing the snapshot of %s to %s: %w; nothing was saved", src.name, s.Store, store.err)
		}
		return nil, streamError(ctx, src, err)
	}
	if err := comp.Close(); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	if err := sealed.Close(); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	if err := checkTrailer(hashing, th, src, n); err != nil {
		return nil, err
	}
	sum := th.fileSum()
	if !plain {
		sum = storedHash.Sum(nil)
	}
	st := &FileStatus{Compression: s.Compression, FileSize: stored.n, SHA256: hex.EncodeToString(sum), HashCheck: HashOK, StorageVersion: resp.Version}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return nil, err
		}
		if err := inspect(tmp.Name(), s.Store.URL("(stream)"), st); err != nil {
			return nil, fmt.Errorf("checking the snapshot from %s: %w", src.name, err)
		}
		if resp.Version != "" {
			st.StorageVersion = resp.Version
		}
		return st, nil
	}
	scanned, err := scan.result(n - sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("checking the snapshot from %s: %w; nothing was saved", src.name, err)
	}
	st.Revision, st.TotalSize = scanned.Revision, scanned.Size
	// The member counts the live keys at the snapshot's revision, as a
	// quick check of a file does; after a compaction past it the count
	// is unknown (0).
	keys, err := s.countKeys(ctx, cli, st.Revision)
	switch {
	case err == nil:
		st.TotalKeys = keys
	case errors.Is(err, rpctypes.ErrCompacted):
		s.logf("the keys at revision %d were compacted meanwhile: not counted", st.Revision)
	default:
		return nil, err
	}
	return st, nil
}

// countingWriter counts what reaches w and keeps the first error w gave.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
