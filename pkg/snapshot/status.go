package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/storage/schema"
)

// Hash check results in FileStatus.HashCheck.
const (
	HashOK        = "ok"
	HashNoTrailer = "no trailer"
)

// FileStatus describes a snapshot file.
type FileStatus struct {
	Path string `json:"path"`
	// Compression is gzip, zstd or empty.
	Compression string `json:"compression,omitempty"`
	// FileSize is the size on disk; SHA256 the hash of the file as stored,
	// which `sha256sum` prints too.
	FileSize int64  `json:"fileSize"`
	SHA256   string `json:"sha256"`
	// HashCheck is "ok" when the sha256 trailer etcd appended matches, "no
	// trailer" for a database copied out of a data directory.
	HashCheck string `json:"hashCheck"`
	// Hash, Revision, TotalKeys, TotalSize and StorageVersion are what
	// `etcdutl snapshot status` reports: Hash is its CRC-32C of every
	// bucket (left out by a quick check after a save), TotalSize the
	// database size, StorageVersion empty for snapshots of etcd before 3.6.
	Hash           uint32 `json:"hash,omitempty"`
	Revision       int64  `json:"revision"`
	TotalKeys      int    `json:"totalKeys"`
	TotalSize      int64  `json:"totalSize"`
	StorageVersion string `json:"storageVersion,omitempty"`
	// Members are the cluster's members as its v3 members bucket held
	// them when the snapshot was taken: the nodes a restore of the whole
	// cluster brings back.
	Members []Member `json:"members,omitempty"`
}

// Member is one member of the cluster a snapshot was taken of.
type Member struct {
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	PeerURLs []string `json:"peerURLs,omitempty"`
}

// Status checks a snapshot file and reads what it holds: the sha256
// trailer, the bbolt structure, the revision and the number of live keys.
// Compressed files are decompressed into a temporary file under tmpDir
// (os.TempDir when empty), removed before returning. A file that cannot be
// trusted gives a *CorruptError.
func Status(path, tmpDir string) (*FileStatus, error) {
	raw, st, cleanup, err := prepare(path, tmpDir, false)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if err := inspect(raw, path, st); err != nil {
		return nil, err
	}
	return st, nil
}

// prepare hashes path (sha256 of the stored file, trailer of the database),
// decompressing it into a temporary file when it is compressed, and returns
// the path of the plain database with a function that removes what it made.
// With lazy, a plain file is not read at all: HashCheck is left empty for
// the caller to have the trailer checked on its own pass over the file.
func prepare(path, tmpDir string, lazy bool) (raw string, st *FileStatus, cleanup func(), err error) {
	cleanup = func() {}
	f, br, compression, err := openSniffed(path)
	if err != nil {
		return "", nil, cleanup, fmt.Errorf("opening snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, cleanup, err
	}
	if fi.IsDir() {
		return "", nil, cleanup, fmt.Errorf("%s is a directory, not a snapshot file", path)
	}
	st = &FileStatus{Path: path, Compression: compression, FileSize: fi.Size()}
	if lazy && compression == None {
		return path, st, cleanup, nil
	}
	fileHash := sha256.New()
	dec, err := decompressor(compression, io.TeeReader(br, fileHash))
	if err != nil {
		return "", nil, cleanup, &CorruptError{Path: path, Reason: fmt.Sprintf("reading %s data: %v", compression, err)}
	}
	defer dec.Close()
	th := newTrailerHash()
	raw = path
	var sink io.Writer = th
	if compression != None {
		tmp, err := os.CreateTemp(tmpDir, "kubectl-etcd-snapshot-*.db")
		if err != nil {
			return "", nil, cleanup, fmt.Errorf("decompressing %s: %w", path, err)
		}
		raw = tmp.Name()
		cleanup = func() { os.Remove(tmp.Name()) }
		defer tmp.Close()
		sink = io.MultiWriter(th, tmp)
	}
	if _, err := io.Copy(sink, dec); err != nil {
		cleanup()
		var pe *os.PathError
		if compression != None && !errors.As(err, &pe) {
			return "", nil, func() {}, &CorruptError{Path: path, Reason: fmt.Sprintf("%s data: %v", compression, err)}
		}
		return "", nil, func() {}, fmt.Errorf("reading %s: %w", path, err)
	}
	st.SHA256 = hex.EncodeToString(fileHash.Sum(nil))
	switch err := th.check(); {
	case err == nil:
		st.HashCheck = HashOK
	case errors.Is(err, errNoTrailer):
		st.HashCheck = HashNoTrailer
	default:
		cleanup()
		return "", nil, func() {}, &CorruptError{Path: path, Reason: err.Error()}
	}
	return raw, st, cleanup, nil
}

// inspect reads the database at raw into st. path names the file for
// errors.
func inspect(raw, path string, st *FileStatus) (err error) {
	if err := checkFileSize(raw, path, func(int64) bool { return st.HashCheck == HashOK }); err != nil {
		return err
	}
	// A damaged page can make the bbolt reader panic; it is still just a
	// corrupt file.
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: path, Reason: fmt.Sprint(r)}
		}
	}()
	ds, err := readDBStatus(raw)
	if err != nil {
		return &CorruptError{Path: path, Reason: err.Error()}
	}
	st.Hash = ds.Hash
	st.Revision = ds.Revision
	st.TotalKeys = ds.TotalKeys
	st.TotalSize = ds.TotalSize
	st.StorageVersion = ds.Version
	st.Members = ds.Members
	return nil
}

// checkFileSize checks that the file at raw is as long as its database
// header says, less the sha256 trailer when trailer reports one for the
// file's size; a short or padded file is corrupt.
func checkFileSize(raw, path string, trailer func(size int64) bool) error {
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if trailer(size) {
		size -= sha256.Size
	}
	if err := checkBoltSize(f, size); err != nil {
		return &CorruptError{Path: path, Reason: err.Error()}
	}
	return nil
}

// peek reads only the revision, storage version and members of the database at raw
// into st: no structure check, no key count. Restore uses it after the
// sha256 trailer has vouched for the bytes, so it costs no extra pass over
// a large file.
func peek(raw, path string, st *FileStatus) (err error) {
	trailer := func(size int64) bool {
		return st.HashCheck == HashOK || (st.HashCheck == "" && hasTrailer(size))
	}
	if err := checkFileSize(raw, path, trailer); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: path, Reason: fmt.Sprint(r)}
		}
	}()
	db, err := bolt.Open(raw, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return &CorruptError{Path: path, Reason: err.Error()}
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		st.TotalSize = tx.Size()
		if v := schema.ReadStorageVersionFromSnapshot(tx); v != nil {
			st.StorageVersion = v.String()
		}
		members, err := readMembers(tx)
		if err != nil {
			return &CorruptError{Path: path, Reason: err.Error()}
		}
		st.Members = members
		b := tx.Bucket(schema.Key.Name())
		if b == nil {
			return &CorruptError{Path: path, Reason: "it has no key bucket: not an etcd database"}
		}
		// Keys are revisions, big-endian main revision first: the last
		// one is the newest.
		if k, _ := b.Cursor().Last(); len(k) >= 8 {
			st.Revision = int64(binary.BigEndian.Uint64(k[:8]))
		}
		return nil
	})
}

// readMembers reads the members bucket: the cluster's members as they
// were when the database was written, sorted by name (the bucket keeps
// them by ID).
func readMembers(tx *bolt.Tx) ([]Member, error) {
	mb := tx.Bucket(schema.Members.Name())
	if mb == nil {
		return nil, nil
	}
	var out []Member
	err := mb.ForEach(func(k, v []byte) error {
		var m membership.Member
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("member %s in the members bucket: %v", k, err)
		}
		out = append(out, Member{ID: string(k), Name: m.Name, PeerURLs: m.PeerURLs})
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}
